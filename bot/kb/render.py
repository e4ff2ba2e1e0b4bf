"""How an article reads in a chat message, the same on every channel."""

from __future__ import annotations

import re

from bot.kb.articles import Article

KB_LINK = re.compile(r"\[([^\]]+)\]\(kb:([a-z0-9-]+)\)")
LANGUAGE_NAMES = {"en": "English", "pl": "polski", "ro": "română", "ru": "русский"}


def answer_text(article: Article) -> str:
    """Title and body; links to other articles become their titles (chats can't follow kb: links)."""
    body = KB_LINK.sub(r"\1", article.body)
    return f"{article.title}\n\n{body}"


def linked_ids(article: Article) -> list[str]:
    return [match.group(2) for match in KB_LINK.finditer(article.body)]
