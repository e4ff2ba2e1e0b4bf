"""Knowledge-base articles: Markdown files with YAML front matter.

Layout: kb_articles/<id>/<lang>.md, one file per article and language.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.settings import LANGUAGES

REQUIRED_FIELDS = ("id", "title", "language", "tags", "updated", "owner", "review_by", "questions")


class ArticleError(ValueError):
    """An article file that cannot be used; the message names the file and the fix."""


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


def _as_date(value: object, name: str, path: Path) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ArticleError(f"{path}: '{name}' must be a date like 2026-10-15, got {value!r}") from None


def parse_article(text: str, path: Path) -> Article:
    if not text.startswith("---"):
        raise ArticleError(f"{path}: must start with a '---' front matter block")
    try:
        _, front, body = text.split("---", 2)
        meta = yaml.safe_load(front) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise ArticleError(f"{path}: front matter is not valid YAML ({exc})") from None
    missing = [name for name in REQUIRED_FIELDS if name not in meta]
    if missing:
        raise ArticleError(f"{path}: front matter lacks {', '.join(missing)}")
    if meta["language"] not in LANGUAGES:
        raise ArticleError(f"{path}: language must be one of {', '.join(LANGUAGES)}, got {meta['language']!r}")
    questions = meta["questions"]
    if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
        raise ArticleError(f"{path}: 'questions' must be a list of non-empty strings")
    if not body.strip():
        raise ArticleError(f"{path}: the article has no body")
    return Article(
        id=str(meta["id"]),
        language=str(meta["language"]),
        title=str(meta["title"]).strip(),
        body=body.strip(),
        tags=tuple(str(t) for t in meta["tags"] or ()),
        questions=tuple(q.strip() for q in questions),
        updated=_as_date(meta["updated"], "updated", path),
        review_by=_as_date(meta["review_by"], "review_by", path),
        owner=str(meta["owner"]),
        path=path,
    )


def article_files(articles_dir: Path) -> list[Path]:
    return sorted(articles_dir.glob("*/*.md"))


def load_articles(articles_dir: Path) -> list[Article]:
    """Parse every article; the id and language must match the file's place."""
    articles = []
    for path in article_files(articles_dir):
        article = parse_article(path.read_text(encoding="utf-8"), path)
        if article.id != path.parent.name or article.language != path.stem:
            raise ArticleError(
                f"{path}: id/language in front matter ({article.id}/{article.language}) "
                f"must match the path {path.parent.name}/{path.stem}.md"
            )
        articles.append(article)
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
