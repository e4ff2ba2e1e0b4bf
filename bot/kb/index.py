"""The search index: one vector per article title and sample question, and one per body.

Scoring, measured on the articles' own sample questions (5-fold, 1,064 texts):
- an article's question score is the mean of two cosine similarities: with its
  centroid (the mean of its title and question vectors in every language) and
  with its nearest title or question. Right first: 80.5% (seed 0) and 79.3% (seed 1),
  against 76.3% for the centroid alone and 76.7% for the nearest text alone.
  The centroid says what the article is about; the nearest text catches a
  question phrased like one of its samples but far from the average. (A logistic
  regression over the vectors added 1.5-2.4 points more, at the price of training
  a model whenever an article changes; not taken.)
- its score is 0.7 x that + 0.3 x the cosine with its nearest body (any language),
  the body embedded as a passage (e5's `passage: `). It finds articles whose sample
  questions miss a phrasing that the answer covers. Right first (5-fold, seeds 0/1/2,
  a one-off script): 80.4/80.7/79.1% without bodies, 82.5/82.3/81.0% with them;
  weight 0.2: 82.0/81.6%, 0.4: 81.2/82.1/81.4%, 0.5: 81.2/81.5/81.5%. Bodies embedded
  as queries, or split into paragraphs, did no better.
- before that, every vector is centred on the mean vector of its language and kind
  (the query on its detected language's question mean). Multilingual embeddings carry
  a strong "which language" component: uncentred, a Romanian question about gift cards
  finds Romanian questions about delivery before the English gift-card article.
  Centring removes it (76% right first) and spreads the scores out.
Vectors are cached on disk keyed by the articles' content and the model.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.diacritics import restore_diacritics
from bot.embeddings.encoder import Encoder
from bot.kb.articles import Article, article_files, content_hash, load_articles

EMBED_BATCH = 64
BODY_WEIGHT = 0.3  # the body's share of an article's score (module docstring)
KEEP_INDEX_FILES = 8  # per model: older index files only serve as a source of unchanged vectors


@dataclass(frozen=True)
class Candidate:
    article_id: str
    score: float
    matched: str  # the title or sample question closest to the query

    def as_dict(self) -> dict[str, object]:
        return {"article_id": self.article_id, "score": round(self.score, 4), "matched": self.matched}


def _normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit length; a zero vector (a language's only body, centred) stays zero: it matches nothing."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _centred_by_language(vectors: np.ndarray, languages: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    means = {lang: vectors[languages == lang].mean(axis=0) for lang in sorted(set(languages.tolist()))}
    if not len(vectors):
        return vectors, means
    return _normalise(vectors - np.stack([means[lang] for lang in languages])), means


class KnowledgeIndex:
    """Rows are titles and sample questions, plus bodies where `passages` says so (see `entries`)."""

    def __init__(
        self,
        vectors: np.ndarray,
        article_ids: list[str],
        languages: list[str],
        texts: list[str],
        passages: list[bool] | None = None,
    ) -> None:
        body = np.zeros(len(texts), dtype=bool) if passages is None else np.asarray(passages, dtype=bool)
        all_ids, language_of = np.asarray(article_ids), np.asarray(languages)
        self.texts = [text for text, is_body in zip(texts, body, strict=True) if not is_body]
        self.article_ids = all_ids[~body]
        self.vectors, self.language_means = _centred_by_language(vectors[~body], language_of[~body])
        self.overall_mean = np.mean(list(self.language_means.values()), axis=0)
        self.ids = sorted(set(self.article_ids.tolist()))
        self._rows = {aid: np.flatnonzero(self.article_ids == aid) for aid in self.ids}
        self.centroids = _normalise(np.stack([self.vectors[self._rows[aid]].mean(axis=0) for aid in self.ids]))
        # Rows grouped by article (ids sort as `self.ids`), for each article's nearest text in one reduceat.
        self._by_article = np.argsort(self.article_ids, kind="stable")
        self._group_starts = np.searchsorted(self.article_ids[self._by_article], self.ids)
        # Bodies: centred on their own language means (a passage's differs from a question's).
        unknown = set(all_ids[body].tolist()) - set(self.ids)
        if unknown:
            raise ValueError(f"bodies without a title or question: {sorted(unknown)}")
        self.body_vectors, _ = _centred_by_language(vectors[body], language_of[body])
        self._body_article = np.searchsorted(self.ids, all_ids[body])
        self._has_body = np.isin(np.arange(len(self.ids)), self._body_article)

    @staticmethod
    def entries(articles: list[Article]) -> tuple[list[str], list[str], list[str], list[bool]]:
        """Article ids, languages, texts and whether each is a body (a passage) rather than a title or question."""
        ids, languages, texts, passages = [], [], [], []
        for article in articles:
            rows = [(text, False) for text in (article.title, *article.questions)]
            rows += [(article.body, True)] if article.body.strip() else []
            for text, is_body in rows:
                ids.append(article.id)
                languages.append(article.language)
                texts.append(text)
                passages.append(is_body)
        return ids, languages, texts, passages

    def centred(self, query: np.ndarray, language: str | None = None) -> np.ndarray:
        """The query vector centred on `language`'s mean (unknown: all languages' mean), normalised."""
        centre = self.language_means.get(language or "", self.overall_mean)
        return _normalise(query.astype(np.float32) - centre)

    def scores(self, query: np.ndarray, language: str | None = None) -> np.ndarray:
        """Every article's score (in `self.ids` order) for a query vector in `language`."""
        query = self.centred(query, language)
        return self._scores(query, self.vectors @ query)

    def _scores(self, centred_query: np.ndarray, similarities: np.ndarray) -> np.ndarray:
        """From the centred query and its cosine with every row."""
        nearest = np.maximum.reduceat(similarities[self._by_article], self._group_starts)
        questions = 0.5 * (self.centroids @ centred_query) + 0.5 * nearest
        if not self._has_body.any():
            return questions
        body = np.full(len(self.ids), -np.inf, dtype=np.float32)
        np.maximum.at(body, self._body_article, self.body_vectors @ centred_query)
        body = np.where(self._has_body, body, questions)  # an article without a body: its questions alone
        return (1 - BODY_WEIGHT) * questions + BODY_WEIGHT * body

    def search(self, query: np.ndarray, language: str | None = None, k: int = 5) -> list[Candidate]:
        """Best `k` articles for a query vector in `language` (unknown: all languages' mean)."""
        query = self.centred(query, language)
        similarities = self.vectors @ query
        scores = self._scores(query, similarities)
        found = []
        for position in np.argsort(-scores)[:k]:
            article_id = self.ids[position]
            rows = self._rows[article_id]
            best_row = rows[int(np.argmax(similarities[rows]))]
            found.append(Candidate(article_id, float(scores[position]), self.texts[best_row]))
        return found


def as_embedded(texts: list[str], languages: list[str], passages: list[bool]) -> list[str]:
    """What is embedded for each entry: a title or question as a customer's message would be
    (diacritics put back, bot/diacritics.py), a body as written. Index files store these texts."""
    return [text if is_body else restore_diacritics(text, language)
            for text, language, is_body in zip(texts, languages, passages, strict=True)]  # fmt: skip


def index_cache_path(cache_dir: Path, articles_dir: Path, encoder: Encoder) -> Path:
    key = content_hash(article_files(articles_dir), articles_dir)
    return cache_dir / "kb-index" / f"{encoder.key}-{key}.npz"


Known = dict[tuple[str, bool], np.ndarray]  # vectors by (text, embedded as a passage)


def known_vectors(cache_dir: Path, encoder: Encoder) -> Known:
    """Vectors from this model's newest index file: an edit re-embeds only the texts it changed."""
    for path in _newest_first((cache_dir / "kb-index").glob(f"{encoder.key}-*.npz")):
        try:
            cached = np.load(path, allow_pickle=False)
            keys = zip((str(t) for t in cached["texts"]), (bool(p) for p in cached["passages"]), strict=True)
            return dict(zip(keys, cached["vectors"], strict=True))
        except (OSError, ValueError, KeyError):  # removed or replaced meanwhile, or an older format: try the next
            continue
    return {}


def missing(texts: list[str], passages: list[bool], known: Known) -> list[tuple[str, bool]]:
    """The (text, is a passage) entries that `known` has no vector for, each once, in order."""
    return list(dict.fromkeys(key for key in zip(texts, passages, strict=True) if key not in known))


def embed_texts(
    texts: list[str],
    passages: list[bool],
    encoder: Encoder,
    known: Known,
    progress: Callable[[int], object] | None = None,
) -> np.ndarray:
    """One vector per text (a passage or a query), embedding only those not in `known` (which gains them);
    `progress(n)` after each batch."""
    todo = missing(texts, passages, known)
    for is_passage, encode in ((False, encoder.encode), (True, encoder.encode_passages)):
        kind = [text for text, p in todo if p == is_passage]
        for start in range(0, len(kind), EMBED_BATCH):
            batch = kind[start : start + EMBED_BATCH]
            known.update(zip(((t, is_passage) for t in batch), encode(batch), strict=True))
            if progress:
                progress(len(batch))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([known[key] for key in zip(texts, passages, strict=True)]).astype(np.float32)


@dataclass(frozen=True)
class IndexEntries:
    """An index's rows for a set of articles, and how each is embedded: the one recipe that the
    assistant, `kb index` and the live knowledge base all build from."""

    ids: list[str]
    languages: list[str]
    texts: list[str]  # as the editors wrote them (what search shows)
    passages: list[bool]  # a body, embedded as a passage
    embedded: list[str]  # what is embedded for each row (`as_embedded`); index files store these

    @classmethod
    def of(cls, articles: list[Article]) -> IndexEntries:
        ids, languages, texts, passages = KnowledgeIndex.entries(articles)
        return cls(ids, languages, texts, passages, as_embedded(texts, languages, passages))

    @property
    def keys(self) -> list[tuple[str, bool]]:
        """Each row's key in a `Known` map of vectors."""
        return list(zip(self.embedded, self.passages, strict=True))

    def missing(self, known: Known) -> int:
        """How many texts `vectors` would embed (those `known` lacks)."""
        return len(missing(self.embedded, self.passages, known))

    def vectors(self, encoder: Encoder, known: Known, progress: Callable[[int], object] | None = None) -> np.ndarray:
        """One raw vector per row, embedding only what `known` lacks (which gains it)."""
        return embed_texts(self.embedded, self.passages, encoder, known, progress)

    def stored(self, cached: np.lib.npyio.NpzFile) -> bool:
        """Whether an index file holds exactly these rows, embedded this way."""
        return (
            "passages" in cached.files
            and list(cached["texts"]) == self.embedded
            and list(cached["passages"]) == self.passages
        )

    def save(self, path: Path, vectors: np.ndarray) -> None:
        """Write atomically (a reader never sees a half-written index) and keep the newest few of this model's files."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as out:
            texts, passages = np.asarray(self.embedded), np.asarray(self.passages, dtype=bool)
            np.savez(out, vectors=vectors, texts=texts, passages=passages)
        os.replace(tmp, path)
        model_key = path.name.split("-", 1)[0]
        for older in _newest_first(path.parent.glob(f"{model_key}-*.npz"))[KEEP_INDEX_FILES:]:
            older.unlink(missing_ok=True)

    def index(self, vectors: np.ndarray) -> KnowledgeIndex:
        return KnowledgeIndex(vectors, self.ids, self.languages, self.texts, self.passages)


def _newest_first(paths: Iterable[Path]) -> list[Path]:
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile
            return 0.0

    return sorted(paths, key=mtime, reverse=True)


Entries = tuple[np.ndarray, list[str], list[str], list[str], list[bool]]  # KnowledgeIndex's arguments


def load_or_build_entries(articles_dir: Path, encoder: Encoder, cache_dir: Path) -> Entries:
    """The raw vectors, article ids, languages, texts and passage flags of every index entry (cached on disk)."""
    entries = IndexEntries.of(load_articles(articles_dir))
    path = index_cache_path(cache_dir, articles_dir, encoder)
    vectors = None
    if path.exists():
        cached = np.load(path, allow_pickle=False)
        vectors = cached["vectors"] if entries.stored(cached) else None
    if vectors is None:
        vectors = entries.vectors(encoder, known_vectors(cache_dir, encoder))
        entries.save(path, vectors)
    return vectors, entries.ids, entries.languages, entries.texts, entries.passages


def load_or_build_index(articles_dir: Path, encoder: Encoder, cache_dir: Path) -> KnowledgeIndex:
    """Load the cached index for these articles and model, or build and cache it."""
    return KnowledgeIndex(*load_or_build_entries(articles_dir, encoder, cache_dir))
