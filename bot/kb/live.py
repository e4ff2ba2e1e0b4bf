"""The knowledge base as the running assistant sees it: it follows the article files.

The Rasa server (its retriever searches the index) and the action server (it renders
the articles) each hold one `LiveKnowledgeBase`. A thread looks at the files every
second; an edited, added or removed article takes effect within a few seconds, with
no restart:

- only texts (titles, sample questions) that are new are embedded; the rest keep their
  vectors, so one edit costs a few hundred milliseconds, not a full re-embedding;
- a file is read only after it has not changed for `settle` seconds (an editor still
  writing it is not read half-way), and a removal counts once the file has been gone
  as long (an editor that saves by delete-and-create does not remove the article);
- a file that does not parse or validate never serves: the last good version of that
  file keeps serving (a new file: nothing), and the error is logged once, with the path;
- readers take one `Snapshot` (library and index built together) that is replaced as a
  whole, so a message never sees the new index with the old texts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from bot.embeddings.encoder import Encoder
from bot.kb.articles import Article, ArticleError, ArticleLibrary, article_files, read_article
from bot.kb.index import IndexEntries, KnowledgeIndex, Known, as_embedded, embed_texts, index_cache_path, known_vectors
from bot.settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
SETTLE_SECONDS = 0.5


@dataclass(frozen=True)
class Snapshot:
    """One consistent version of the knowledge base."""

    articles: tuple[Article, ...]
    library: ArticleLibrary
    index: KnowledgeIndex | None  # None where only the texts are needed (action server)
    loaded_at: float


@dataclass
class _FileState:
    signature: tuple[int, int, int]  # mtime_ns, size, inode: what we last looked at
    article: Article | None  # the last good version of the file (None: never valid)
    missing_since: float | None = None
    error: str | None = field(default=None)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class LiveKnowledgeBase:
    def __init__(
        self,
        articles_dir: Path,
        encoder: Encoder | None = None,
        cache_dir: Path | None = None,
        *,
        settle: float = SETTLE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Load the articles (and, with an encoder, their index); ArticleError if not one article is usable."""
        self.articles_dir = articles_dir
        self.encoder = encoder
        self.cache_dir = cache_dir
        self.settle = settle
        self.clock = clock
        self._files: dict[Path, _FileState] = {}
        self._vectors: Known = known_vectors(cache_dir, encoder) if encoder and cache_dir else {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._snapshot: Snapshot | None = None
        self.refresh(settle=False)
        if self._snapshot is None:
            raise ArticleError(f"no usable articles in {articles_dir} (expected <id>/<lang>.md files)")

    @property
    def snapshot(self) -> Snapshot:
        assert self._snapshot is not None
        return self._snapshot

    @property
    def library(self) -> ArticleLibrary:
        return self.snapshot.library

    @property
    def index(self) -> KnowledgeIndex:
        index = self.snapshot.index
        if index is None:
            raise RuntimeError("this knowledge base was loaded without an encoder, so it has no index")
        return index

    def embed(self, texts: list[str], languages: list[str]) -> np.ndarray:
        """Raw vectors for customers' texts, reusing those of the index (its titles and sample questions)."""
        if self.encoder is None:
            raise RuntimeError("this knowledge base was loaded without an encoder")
        queries = [False] * len(texts)
        with self._lock:
            return embed_texts(as_embedded(texts, languages, queries), queries, self.encoder, dict(self._vectors))

    def centred(self, texts: list[str], languages: list[str]) -> np.ndarray:
        """Vectors centred on each text's language mean and normalised, as the index compares them."""
        index = self.index
        vectors = self.embed(texts, languages)
        return np.stack([index.centred(v, lang or None) for v, lang in zip(vectors, languages, strict=True)])

    def errors(self) -> dict[Path, str]:
        """Files that currently do not load (their last good version, if any, is serving)."""
        return {path: state.error for path, state in self._files.items() if state.error}

    # --- following the files -------------------------------------------------

    def refresh(self, settle: bool = True) -> bool:
        """Look at the files once; True if a new snapshot now serves."""
        with self._lock:
            if not self._read_changes(settle) and self._snapshot is not None:
                return False
            return self._install()

    def _read_changes(self, settle: bool) -> bool:
        now = self.clock()
        wait = self.settle if settle else 0.0
        changed = False
        present = {path: _signature(path) for path in article_files(self.articles_dir)}
        for path, state in list(self._files.items()):
            if present.get(path) is not None:
                state.missing_since = None
                continue
            state.missing_since = state.missing_since or now
            if now - state.missing_since >= wait:
                del self._files[path]
                changed |= state.article is not None
                log.info("knowledge base: %s removed", path)
        for path, signature in present.items():
            state = self._files.get(path)
            if signature is None or (state and state.signature == signature):
                continue
            if 0 <= now - signature[0] / 1e9 < wait:
                continue  # written moments ago, maybe still being written: read it on a later look
            previous = state.article if state else None
            try:
                article = read_article(path)
            except (ArticleError, OSError) as exc:
                message = str(exc) if isinstance(exc, ArticleError) else f"{path}: cannot be read ({exc})"
                serving = "still serving its last good version" if previous else "not served"
                log.error("knowledge base: %s; %s", message, serving)
                self._files[path] = _FileState(signature, previous, error=message)
                continue
            if _signature(path) != signature:
                continue  # changed while we read it: read it again on a later look
            self._files[path] = _FileState(signature, article)
            changed |= article != previous
            if previous is None:
                log.info("knowledge base: %s added", path)
            elif article != previous:
                log.info("knowledge base: %s updated", path)
        return changed

    def _install(self) -> bool:
        articles = tuple(state.article for _, state in sorted(self._files.items()) if state.article)
        if not articles:
            log.error("knowledge base: no usable articles in %s; keeping the last good version", self.articles_dir)
            return False
        index = None
        if self.encoder is not None:
            entries = IndexEntries.of(list(articles))
            new = entries.missing(self._vectors)
            vectors = entries.vectors(self.encoder, self._vectors)
            self._vectors = {key: self._vectors[key] for key in entries.keys}  # forget what no article says any more
            index = entries.index(vectors)
            if new and self.cache_dir and not self.errors():  # a restart then starts from this version
                entries.save(index_cache_path(self.cache_dir, self.articles_dir, self.encoder), vectors)
            log.info(
                "knowledge base: %d article files, %d index entries (%d embedded)", len(articles), len(entries.ids), new
            )
        self._snapshot = Snapshot(articles, ArticleLibrary(list(articles)), index, self.clock())
        return True

    def watch(self, interval: float = POLL_SECONDS) -> LiveKnowledgeBase:
        """Follow the files from a background thread until `close()`."""
        threading.Thread(target=self._watch, args=(interval,), name="kb-watch", daemon=True).start()
        return self

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # keep following the files; the last good snapshot keeps serving
                log.exception("knowledge base: refreshing from %s failed", self.articles_dir)

    def close(self) -> None:
        self._stop.set()


@lru_cache(maxsize=4)
def _shared(articles_dir: Path, cache_dir: Path, with_index: bool, embedding_model: str) -> LiveKnowledgeBase:
    settings = Settings(articles_dir=articles_dir, cache_dir=cache_dir, embedding_model=embedding_model)
    encoder = None
    if with_index:
        from bot.embeddings.encoder import get_encoder

        encoder = get_encoder(settings)
    return LiveKnowledgeBase(articles_dir, encoder, cache_dir).watch()


def shared_knowledge_base(settings: Settings, with_index: bool) -> LiveKnowledgeBase:
    """The process's one knowledge base for these settings, following the files (with the index: Rasa server)."""
    return _shared(settings.articles_dir, settings.cache_dir, with_index, settings.embedding_model)
