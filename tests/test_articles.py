from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.kb.articles import ArticleError, ArticleLibrary, load_articles, parse_article
from bot.kb.render import answer_text, linked_ids
from bot.settings import Settings

VALID = """---
id: returns-how-to
title: How to return a product
language: en
tags: [returns]
updated: 2026-10-15
owner: returns-team
review_by: 2027-04-15
questions:
  - How do I return an item?
---
Go to [Refunds](kb:refunds-timing) and follow the steps.
"""


def test_parses_front_matter_and_body() -> None:
    article = parse_article(VALID, Path("returns-how-to/en.md"))
    assert article.id == "returns-how-to"
    assert article.updated == dt.date(2026, 10, 15)
    assert article.questions == ("How do I return an item?",)
    assert linked_ids(article) == ["refunds-timing"]
    assert answer_text(article) == "How to return a product\n\nGo to Refunds and follow the steps."


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (VALID.replace("owner: returns-team\n", ""), "lacks owner"),
        (VALID.replace("language: en", "language: de"), "language must be one of"),
        (VALID.replace("updated: 2026-10-15", "updated: soon"), "'updated' must be a date"),
        (VALID.replace("---\nid", "id"), "must start with"),
        (VALID.replace("  - How do I return an item?\n", "  - ''\n"), "'questions'"),
    ],
)
def test_rejects_broken_articles_with_a_clear_message(broken: str, message: str) -> None:
    with pytest.raises(ArticleError, match=message):
        parse_article(broken, Path("returns-how-to/en.md"))


def test_the_shop_knowledge_base_is_complete() -> None:
    articles = load_articles(Settings().articles_dir)
    library = ArticleLibrary(articles)
    assert len(library.ids) >= 40
    assert all({"en", "pl"} <= set(library.languages(i)) for i in library.ids)
    assert sum({"ro", "ru"} <= set(library.languages(i)) for i in library.ids) >= 20
    for article in articles:
        assert 4 <= len(article.questions) <= 10, article.path
        for target in linked_ids(article):
            assert target in library.ids, f"{article.path} links to unknown article {target}"


def test_missing_translation_falls_back_to_the_nearest_language() -> None:
    articles = load_articles(Settings().articles_dir)
    # gift-cards without its Romanian and Russian versions, and returns-how-to in Polish only
    kept = [a for a in articles if (a.id, a.language) not in {("gift-cards", "ro"), ("gift-cards", "ru")}]
    kept = [a for a in kept if a.id != "returns-how-to" or a.language == "pl"]
    library = ArticleLibrary(kept)
    assert library.languages("gift-cards") == ["en", "pl"]
    assert library.get("gift-cards", "ro").language == "en"
    assert library.get("gift-cards", "ru").language == "en"
    assert library.get("gift-cards", "pl").language == "pl"
    assert library.get("returns-how-to", "ro").language == "pl"
    assert library.get("returns-how-to", "en").language == "pl"
    assert library.get("no-such-article", "en") is None
