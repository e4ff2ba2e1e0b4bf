"""An editor's day against the running assistant: edits take effect, gaps are kept for the report."""

from __future__ import annotations

import asyncio
import csv
import os
import secrets
import shutil
from pathlib import Path

import aiohttp
import pytest

from bot.kb.editor import main as kb
from bot.kb.gaps import GapStore, conversation_hash
from bot.stack import Stack
from tests.rest_client import say, say_until

pytestmark = pytest.mark.e2e

BIKES = {
    "en": ("Bike assembly service", ["Do you assemble bicycles?", "Can you put my new bike together for me?",
                                      "Is bike assembly included?", "Will the bicycle arrive assembled?"],
           "Every bicycle we sell is assembled before it ships: it arrives ready to ride."),
    "pl": ("Montaż rowerów", ["Czy składacie rowery?", "Czy rower przyjdzie złożony?",
                              "Czy montaż roweru jest w cenie?", "Czy możecie złożyć mój nowy rower?"],
           "Każdy rower składamy przed wysyłką: przyjeżdża gotowy do jazdy."),
}  # fmt: skip


def article_text(article_id: str, language: str, title: str, questions: list[str], body: str) -> str:
    listed = "".join(f"  - {q}\n" for q in questions)
    return (
        f"---\nid: {article_id}\ntitle: {title}\nlanguage: {language}\ntags: [services]\nupdated: 2026-11-20\n"
        f"owner: customer-care\nreview_by: 2027-05-20\nquestions:\n{listed}---\n{body}\n"
    )


def save(path: Path, text: str) -> None:
    """As a careful editor's tool saves: write aside, then rename over the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.swp")
    aside.write_text(text, encoding="utf-8")
    os.replace(aside, path)


def article_of(answer: dict) -> str | None:
    return answer.get("custom", {}).get("kb_article")


def kb_answer(messages: list[dict]) -> dict:
    return next((m for m in messages if "kb_article" in m.get("custom", {})), {})


async def answer_until(http, stack, question: str, wanted, seconds: float = 20.0) -> tuple[dict, float]:
    """Ask (a new conversation each time) until `wanted(answer)` ({} if no article); the answer and the time taken."""
    messages, took = await say_until(http, stack, question, lambda ms: wanted(kb_answer(ms)), seconds, "editor-")
    return kb_answer(messages), took


async def test_an_edited_article_changes_the_running_bots_answer(
    stack: Stack, http: aiohttp.ClientSession, articles_dir: Path
) -> None:
    question = "Jak długo ważna jest karta podarunkowa?"
    before, _ = await answer_until(http, stack, question, lambda a: article_of(a) == "gift-cards")
    path = articles_dir / "gift-cards" / "pl.md"
    original = path.read_text(encoding="utf-8")
    head, body = original.rsplit("---\n", 1)
    news = "Od grudnia karty podarunkowe są ważne 5 lat."
    assert news not in before["text"]
    try:
        save(path, f"{head}---\n{news}\n\n{body}")
        after, seconds = await answer_until(http, stack, question, lambda a: news in a.get("text", ""))
        assert after["custom"]["kb_article"] == "gift-cards"
        assert seconds < 15
    finally:
        save(path, original)


async def test_a_new_article_is_found_and_a_removed_one_is_gone(
    stack: Stack, http: aiohttp.ClientSession, articles_dir: Path
) -> None:
    folder = articles_dir / "bike-assembly"
    try:
        for language, (title, questions, body) in BIKES.items():
            save(folder / f"{language}.md", article_text("bike-assembly", language, title, questions, body))
        answer, _ = await answer_until(
            http, stack, "czy dostanę rower już złożony?", lambda a: article_of(a) == "bike-assembly"
        )
        assert answer["text"].startswith("**Montaż rowerów**") or "Każdy rower składamy" in answer["text"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    await answer_until(http, stack, "czy dostanę rower już złożony?", lambda a: article_of(a) != "bike-assembly")


async def test_unanswered_and_escalated_questions_are_kept_redacted_for_the_gaps_report(
    stack: Stack, http: aiohttp.ClientSession, redis_client, tmp_path: Path, capsys
) -> None:
    sender = "gaps-" + secrets.token_hex(4)
    answered = await say(http, stack, sender, "Jak mogę zwrócić produkt?")
    assert any(m.get("custom", {}).get("kb_article") == "returns-how-to" for m in answered)
    handoff = await say(http, stack, sender, "chcę rozmawiać z konsultantem")
    assert any("handoff" in m.get("custom", {}) for m in handoff)

    store = GapStore(None, stack.settings.redis_prefix)  # only for the key name
    records = [fields for _, fields in redis_client.xrange(store.stream)]
    kept = [r for r in records if r["conversation"] == conversation_hash(f"rest:{sender}")]
    assert len(kept) == 1  # the request for a person is not a question
    assert kept[0]["text"] == "Jak mogę zwrócić produkt?"
    assert kept[0]["kind"] == "escalated"
    assert kept[0]["article"] == "returns-how-to"
    assert kept[0]["language"] == "pl"

    report = tmp_path / "gaps.csv"
    assert await asyncio.to_thread(kb, ["gaps", "--csv", str(report)], stack.settings) == 0  # a command of its own
    out = capsys.readouterr().out
    assert "Articles that attract the wrong questions" in out
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    wrong = [r for r in rows if r["report"] == "wrong_article" and r["articles"] == "returns-how-to"]
    assert wrong and "Jak mogę zwrócić produkt?" in (wrong[0]["representative"], *wrong[0]["examples"].split(" | "))
    assert any(r["report"] == "new_article" for r in rows)
