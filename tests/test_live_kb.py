"""The knowledge base follows the article files while the assistant runs (bot/kb/live.py)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from bot.embeddings.encoder import get_encoder
from bot.kb.live import LiveKnowledgeBase
from bot.settings import Settings

NEW_ARTICLE = """---
id: bike-assembly
title: Bike assembly service
language: en
tags: [services]
updated: 2026-11-20
owner: customer-care
review_by: 2027-05-20
questions:
  - Do you assemble bicycles?
  - Can you put my new bike together for me?
  - Is bike assembly included?
  - Will the bicycle arrive assembled?
---
We assemble every bicycle before it ships: it arrives ready to ride, pedals in the box.
"""


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(Settings.from_env())


def copies(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the articles and of the index cache (its vectors spare re-embedding every text)."""
    settings = Settings.from_env()
    articles = tmp_path / "kb_articles"
    shutil.copytree(settings.articles_dir, articles)
    cache = tmp_path / "cache"
    shutil.copytree(settings.cache_dir / "kb-index", cache / "kb-index")
    return articles, cache


@pytest.fixture()
def knowledge(tmp_path: Path, encoder):
    articles, cache = copies(tmp_path)
    live = LiveKnowledgeBase(articles, encoder, cache, settle=0.3)
    yield live
    live.close()


def best(knowledge: LiveKnowledgeBase, encoder, question: str, language: str = "en") -> str:
    return knowledge.index.search(encoder.encode([question])[0], language, 1)[0].article_id


def settled(path: Path) -> None:
    """Pretend the file was written a while ago (the settle time has passed)."""
    past = time.time() - 5
    os.utime(path, (past, past))


def test_a_new_article_serves_once_its_file_has_settled(knowledge, encoder) -> None:
    path = knowledge.articles_dir / "bike-assembly" / "en.md"
    path.parent.mkdir()
    path.write_text(NEW_ARTICLE, encoding="utf-8")
    assert not knowledge.refresh()  # written moments ago: maybe still being written
    assert knowledge.library.get("bike-assembly", "en") is None
    settled(path)
    assert knowledge.refresh()
    assert best(knowledge, encoder, "will my new bicycle come assembled?") == "bike-assembly"
    assert knowledge.library.get("bike-assembly", "pl").language == "en"  # nearest language


def test_an_edited_answer_replaces_the_old_one(knowledge) -> None:
    path = knowledge.articles_dir / "gift-cards" / "en.md"
    text = path.read_text(encoding="utf-8")
    head, body = text.rsplit("---\n", 1)
    path.write_text(f"{head}---\nGift cards are now valid for five years.\n\n{body}", encoding="utf-8")
    settled(path)
    assert knowledge.refresh()
    assert knowledge.library.get("gift-cards", "en").body.startswith("Gift cards are now valid for five years.")


def test_a_broken_edit_never_serves_and_the_last_good_version_stays(knowledge, encoder) -> None:
    path = knowledge.articles_dir / "password-reset" / "en.md"
    good = knowledge.library.get("password-reset", "en")
    original = path.read_text(encoding="utf-8")
    path.write_text("---\nid: password-reset\ntitle: [unfinished\n", encoding="utf-8")  # half-written
    settled(path)
    knowledge.refresh()
    assert knowledge.library.get("password-reset", "en") == good
    assert best(knowledge, encoder, "I forgot my password") == "password-reset"
    assert "password-reset/en.md" in str(next(iter(knowledge.errors())))
    path.write_text(original, encoding="utf-8")
    settled(path)
    knowledge.refresh()
    assert not knowledge.errors()


def test_a_removed_article_stops_serving(knowledge) -> None:
    folder = knowledge.articles_dir / "newsletter"
    shutil.rmtree(folder)
    knowledge.refresh()  # gone for less than the settle time: an editor may be saving by delete-and-create
    assert knowledge.library.get("newsletter", "en") is not None
    time.sleep(0.35)
    assert knowledge.refresh()
    assert knowledge.library.get("newsletter", "en") is None
    assert "newsletter" not in knowledge.index.ids


def test_the_watcher_picks_up_changes_by_itself(tmp_path: Path, encoder) -> None:
    articles, cache = copies(tmp_path)
    live = LiveKnowledgeBase(articles, encoder, cache, settle=0.2).watch(interval=0.1)
    try:
        path = articles / "bike-assembly" / "en.md"
        path.parent.mkdir()
        path.write_text(NEW_ARTICLE, encoding="utf-8")
        deadline = time.monotonic() + 10
        while live.library.get("bike-assembly", "en") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live.library.get("bike-assembly", "en") is not None
    finally:
        live.close()
