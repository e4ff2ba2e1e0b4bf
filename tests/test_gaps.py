"""Questions the knowledge base did not answer: kept in the real Redis, grouped by meaning across languages."""

from __future__ import annotations

import csv
import secrets
import shutil
from pathlib import Path

import pytest

from bot.embeddings.encoder import get_encoder
from bot.escalations import connect
from bot.kb.gap_report import build_report, format_report, write_csv
from bot.kb.gaps import GapRecord, GapStore, questions_before_handoff
from bot.kb.live import LiveKnowledgeBase
from bot.settings import Settings


@pytest.fixture()
async def store():
    redis = connect(Settings.from_env().redis_url)
    prefix = "test" + secrets.token_hex(4)
    yield GapStore(redis, prefix)
    async for key in redis.scan_iter(f"{prefix}:*"):
        await redis.delete(key)
    await redis.close()


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings.from_env()
    cache = tmp_path_factory.mktemp("cache")
    shutil.copytree(settings.cache_dir / "kb-index", cache / "kb-index")
    live = LiveKnowledgeBase(settings.articles_dir, get_encoder(settings), cache)
    yield live
    live.close()


async def test_a_question_is_kept_redacted_and_once_per_conversation(store: GapStore) -> None:
    text = "Do you buy back old phones? Call me on +48 601 234 567 or mail ola@example.pl"
    assert await store.record("no_match", "webchat:abc", text, "en")
    assert not await store.record("escalated", "webchat:abc", text, "en")  # the same question, same conversation
    assert await store.record("no_match", "whatsapp:48601234567", text, "en")
    records = await store.records()
    assert [r.kind for r in records] == ["no_match", "no_match"]
    assert records[0].text == "Do you buy back old phones? Call me on [phone] or mail [email]"
    assert "abc" not in records[0].conversation and "48601234567" not in records[1].conversation
    assert records[0].conversation != records[1].conversation
    assert await store.records(since=records[1].at + 1) == []


def test_only_the_questions_since_the_last_handoff_count() -> None:
    def user(text: str, intent: str = "ask_question") -> dict:
        return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}, "language": {"code": "en"}}}

    events = [
        user("where is my order"),
        {"event": "pause"},
        {"event": "resume"},
        user("hello", "greet"),
        user("how do I return a kettle"),
        {"event": "bot", "data": {"custom": {"kb_article": "returns-how-to"}}},
        user("/feedback_unhelpful"),
        user("I want a person", "request_human"),
    ]
    assert questions_before_handoff(events) == [("how do I return a kettle", "en", "returns-how-to")]


def records(*rows: tuple[str, str, str]) -> list[GapRecord]:
    return [GapRecord("no_match", text, language, article, f"c{i}", 1_790_000_000.0 + i)
            for i, (text, language, article) in enumerate(rows)]  # fmt: skip


def test_the_same_missing_topic_in_four_languages_is_one_suggestion(knowledge: LiveKnowledgeBase) -> None:
    asked = records(
        ("Do you sell refurbished iPhones?", "en", ""),
        ("Czy sprzedajecie odnowione iPhone'y?", "pl", ""),
        ("Vindeți iPhone-uri recondiționate?", "ro", ""),
        ("Продаёте ли вы восстановленные айфоны?", "ru", ""),
        ("Can I pay with bitcoin?", "en", ""),
        ("Czy mogę zapłacić bitcoinem?", "pl", ""),
        ("My dog chewed the cable of my new vacuum, is that covered?", "en", "warranty-complaints"),
    )
    report = build_report(asked, knowledge.centred)
    phones = next(g for g in report.groups if "iPhone" in g.representative or "айфоны" in g.representative)
    assert {r.language for r in phones.records} == {"en", "pl", "ro", "ru"}
    assert report.groups[0] is phones  # the largest group first
    bitcoin = next(g for g in report.groups if any("bitcoin" in r.text for r in g.records))
    assert bitcoin is not phones and bitcoin.size == 2
    text = format_report(report)
    assert text.index("iPhone") < text.index("bitcoin")


def test_articles_that_attract_the_wrong_questions_and_the_csv(knowledge: LiveKnowledgeBase, tmp_path: Path) -> None:
    asked = [
        GapRecord("unhelpful", "=cmd|' /C calc'!A0 my parcel never came", "en", "delivery-times", "c1", 1.0),
        GapRecord("escalated", "paczka nie przyszła", "pl", "delivery-times", "c2", 2.0),
        GapRecord("no_match", "where is the nearest shop", "en", "", "c3", 3.0),
    ]
    report = build_report(asked, knowledge.centred)
    assert [w.article_id for w in report.wrong_articles] == ["delivery-times"]
    assert report.wrong_articles[0].kinds == {"unhelpful": 1, "escalated": 1}
    path = tmp_path / "gaps.csv"
    write_csv(report, path)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert {r["report"] for r in rows} == {"new_article", "wrong_article"}
    cells = [value for row in rows for value in row.values()]
    assert not any(value.startswith("=") for value in cells)  # customers' text never runs as a formula
    wrong = next(r for r in rows if r["report"] == "wrong_article")
    assert wrong["articles"] == "delivery-times" and wrong["size"] == "2"
