"""The search index: one vector per article title and sample question.

Scoring, measured on the articles' own sample questions (5-fold, 1,064 texts):
- an article's score is the mean of two cosine similarities: with its centroid
  (the mean of its title and question vectors in every language) and with its
  nearest title or question. Right first: 80.5% (seed 0) and 79.3% (seed 1),
  against 76.3% for the centroid alone and 76.7% for the nearest text alone.
  The centroid says what the article is about; the nearest text catches a
  question phrased like one of its samples but far from the average. (A logistic
  regression over the vectors added 1.5-2.4 points more, at the price of training
  a model whenever an article changes; not taken.)
- before that, every vector is centred on the mean vector of its language (the
  query on its detected language's). Multilingual embeddings carry a strong
  "which language" component: uncentred, a Romanian question about gift cards
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

from bot.embeddings.encoder import Encoder
from bot.kb.articles import Article, article_files, content_hash, load_articles

EMBED_BATCH = 64
KEEP_INDEX_FILES = 8  # per model: older index files only serve as a source of unchanged vectors


@dataclass(frozen=True)
class Candidate:
    article_id: str
    score: float
    matched: str  # the title or sample question closest to the query

    def as_dict(self) -> dict[str, object]:
        return {"article_id": self.article_id, "score": round(self.score, 4), "matched": self.matched}


def _normalise(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


class KnowledgeIndex:
    def __init__(self, vectors: np.ndarray, article_ids: list[str], languages: list[str], texts: list[str]) -> None:
        self.texts = texts
        self.article_ids = np.asarray(article_ids)
        language_of = np.asarray(languages)
        self.language_means = {lang: vectors[language_of == lang].mean(axis=0) for lang in sorted(set(languages))}
        self.overall_mean = np.mean(list(self.language_means.values()), axis=0)
        self.vectors = _normalise(vectors - np.stack([self.language_means[lang] for lang in languages]))
        self.ids = sorted(set(article_ids))
        self._rows = {aid: np.flatnonzero(self.article_ids == aid) for aid in self.ids}
        self.centroids = _normalise(np.stack([self.vectors[self._rows[aid]].mean(axis=0) for aid in self.ids]))
        # Rows grouped by article (ids sort as `self.ids`), for each article's nearest text in one reduceat.
        self._by_article = np.argsort(self.article_ids, kind="stable")
        self._group_starts = np.searchsorted(self.article_ids[self._by_article], self.ids)

    @staticmethod
    def entries(articles: list[Article]) -> tuple[list[str], list[str], list[str]]:
        ids, languages, texts = [], [], []
        for article in articles:
            for text in (article.title, *article.questions):
                ids.append(article.id)
                languages.append(article.language)
                texts.append(text)
        return ids, languages, texts

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
        return 0.5 * (self.centroids @ centred_query) + 0.5 * nearest

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


def index_cache_path(cache_dir: Path, articles_dir: Path, encoder: Encoder) -> Path:
    key = content_hash(article_files(articles_dir), articles_dir)
    return cache_dir / "kb-index" / f"{encoder.key}-{key}.npz"


def known_vectors(cache_dir: Path, encoder: Encoder) -> dict[str, np.ndarray]:
    """Vectors by text from this model's newest index file: an edit re-embeds only the texts it changed."""
    for path in _newest_first((cache_dir / "kb-index").glob(f"{encoder.key}-*.npz")):
        try:
            cached = np.load(path, allow_pickle=False)
            return dict(zip((str(t) for t in cached["texts"]), cached["vectors"], strict=True))
        except (OSError, ValueError, KeyError):  # removed or replaced meanwhile: try the next one
            continue
    return {}


def embed_texts(
    texts: list[str], encoder: Encoder, known: dict[str, np.ndarray], progress: Callable[[int], object] | None = None
) -> np.ndarray:
    """One vector per text, embedding only those not in `known` (which gains them); `progress(n)` after each batch."""
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    for start in range(0, len(missing), EMBED_BATCH):
        batch = missing[start : start + EMBED_BATCH]
        known.update(zip(batch, encoder.encode(batch), strict=True))
        if progress:
            progress(len(batch))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([known[t] for t in texts]).astype(np.float32)


def save_index_file(path: Path, vectors: np.ndarray, texts: list[str]) -> None:
    """Write atomically (a reader never sees a half-written index) and keep the newest few of this model's files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as out:
        np.savez(out, vectors=vectors, texts=np.asarray(texts))
    os.replace(tmp, path)
    model_key = path.name.split("-", 1)[0]
    for older in _newest_first(path.parent.glob(f"{model_key}-*.npz"))[KEEP_INDEX_FILES:]:
        older.unlink(missing_ok=True)


def _newest_first(paths: Iterable[Path]) -> list[Path]:
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed meanwhile
            return 0.0

    return sorted(paths, key=mtime, reverse=True)


def load_or_build_entries(
    articles_dir: Path, encoder: Encoder, cache_dir: Path
) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """The raw vectors, article ids, languages and texts of every index entry (cached on disk)."""
    articles = load_articles(articles_dir)
    ids, languages, texts = KnowledgeIndex.entries(articles)
    path = index_cache_path(cache_dir, articles_dir, encoder)
    if path.exists():
        cached = np.load(path, allow_pickle=False)
        if list(cached["texts"]) == texts:
            return cached["vectors"], ids, languages, texts
    vectors = embed_texts(texts, encoder, known_vectors(cache_dir, encoder))
    save_index_file(path, vectors, texts)
    return vectors, ids, languages, texts


def load_or_build_index(articles_dir: Path, encoder: Encoder, cache_dir: Path) -> KnowledgeIndex:
    """Load the cached index for these articles and model, or build and cache it."""
    return KnowledgeIndex(*load_or_build_entries(articles_dir, encoder, cache_dir))
