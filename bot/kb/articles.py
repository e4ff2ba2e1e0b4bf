"""Knowledge-base articles: Markdown files with YAML front matter.

Layout: kb_articles/<id>/<lang>.md, one file per article and language.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.settings import LANGUAGES

ARTICLE_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")  # kb: links rely on it (render.KB_LINK)
REQUIRED_FIELDS = ("id", "title", "language", "tags", "updated", "owner", "review_by", "questions")


class ArticleError(ValueError):
    """An article file that cannot be used; the message names the file and the fix."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]  # each problem on its own, without the path


@dataclass(frozen=True)
class Article:
    id: str
    language: str
    title: str
    body: str
    tags: tuple[str, ...]
    questions: tuple[str, ...]
    updated: dt.date
    review_by: dt.date
    owner: str
    path: Path


def _as_date(value: object) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def front_matter_problems(meta: object) -> list[str]:
    """Everything wrong with an article's front matter (empty: usable), each a sentence saying what to fix."""
    if not isinstance(meta, dict):
        return ["front matter must be a YAML mapping of fields (id: ..., title: ...)"]
    problems = []
    missing = [name for name in REQUIRED_FIELDS if name not in meta]
    if missing:
        problems.append(f"front matter lacks {', '.join(missing)}")
    for name in ("id", "title", "owner"):
        if name in meta and not (isinstance(meta[name], str) and meta[name].strip()):
            problems.append(f"'{name}' must be a non-empty text, got {meta[name]!r}")
    if "id" in meta and isinstance(meta["id"], str) and not ARTICLE_ID.fullmatch(meta["id"]):
        problems.append(f"'id' must be lower-case letters, digits and dashes (like gift-cards), got {meta['id']!r}")
    if "language" in meta and meta["language"] not in LANGUAGES:
        problems.append(f"language must be one of {', '.join(LANGUAGES)}, got {meta['language']!r}")
    if "tags" in meta and not (
        meta["tags"] is None or isinstance(meta["tags"], list) and all(isinstance(t, str) for t in meta["tags"])
    ):
        problems.append(f"'tags' must be a list of words like [returns, refunds], got {meta['tags']!r}")
    for name in ("updated", "review_by"):
        if name in meta and _as_date(meta[name]) is None:
            problems.append(f"'{name}' must be a date like 2026-10-15, got {meta[name]!r}")
    questions = meta.get("questions")
    if "questions" in meta and not (
        isinstance(questions, list) and questions and all(isinstance(q, str) and q.strip() for q in questions)
    ):
        problems.append("'questions' must be a list of non-empty strings")
    return problems


def split_front_matter(text: str, path: Path) -> tuple[object, str]:
    """The parsed YAML front matter and the body."""
    if not text.startswith("---"):
        raise ArticleError(
            f"{path}: must start with a '---' front matter block", ["must start with a '---' front matter block"]
        )
    try:
        _, front, body = text.split("---", 2)
        return yaml.safe_load(front) or {}, body
    except (ValueError, yaml.YAMLError) as exc:
        problem = f"front matter is not valid YAML ({exc})"
        raise ArticleError(f"{path}: {problem}", [problem]) from None


def parse_article(text: str, path: Path) -> Article:
    meta, body = split_front_matter(text, path)
    problems = front_matter_problems(meta)
    if not body.strip():
        problems.append("the article has no body")
    if problems:
        raise ArticleError(f"{path}: {'; '.join(problems)}", problems)
    assert isinstance(meta, dict)
    return Article(
        id=str(meta["id"]),
        language=str(meta["language"]),
        title=str(meta["title"]).strip(),
        body=body.strip(),
        tags=tuple(str(t) for t in meta["tags"] or ()),
        questions=tuple(q.strip() for q in meta["questions"]),
        updated=_as_date(meta["updated"]),
        review_by=_as_date(meta["review_by"]),
        owner=str(meta["owner"]).strip(),
        path=path,
    )


def read_article(path: Path) -> Article:
    """Parse one article file; its id and language must match its place (<id>/<lang>.md)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleError(f"{path}: not UTF-8 text ({exc})", [f"not UTF-8 text ({exc})"]) from None
    article = parse_article(text, path)
    if article.id != path.parent.name or article.language != path.stem:
        problem = (
            f"id/language in front matter ({article.id}/{article.language}) "
            f"must match the path {path.parent.name}/{path.stem}.md"
        )
        raise ArticleError(f"{path}: {problem}", [problem])
    return article


def article_files(articles_dir: Path) -> list[Path]:
    return sorted(articles_dir.glob("*/*.md"))


def load_articles(articles_dir: Path) -> list[Article]:
    """Parse every article; the id and language must match the file's place."""
    articles = [read_article(path) for path in article_files(articles_dir)]
    if not articles:
        raise ArticleError(f"no articles found in {articles_dir} (expected <id>/<lang>.md files)")
    return articles


def content_hash(paths: Iterable[Path], root: Path) -> str:
    """A key that changes when any file's name or content changes."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class ArticleLibrary:
    """Articles by id and language, with the fallback order for missing translations."""

    # Which language to show when an article is missing in the customer's own.
    FALLBACK = {"en": ("pl",), "pl": ("en",), "ro": ("en", "pl"), "ru": ("en", "pl")}

    def __init__(self, articles: list[Article]) -> None:
        self.by_key = {(a.id, a.language): a for a in articles}
        self.ids = sorted({a.id for a in articles})

    def get(self, article_id: str, language: str) -> Article | None:
        """The article in `language`, else in the nearest available language."""
        for lang in (language, *self.FALLBACK.get(language, ("en",)), *LANGUAGES):
            article = self.by_key.get((article_id, lang))
            if article:
                return article
        return None

    def languages(self, article_id: str) -> list[str]:
        return [lang for lang in LANGUAGES if (article_id, lang) in self.by_key]
