"""Support analytics: recorded from real events in Redis, and through the running assistant."""

from __future__ import annotations

import secrets
import time

import aiohttp
import pytest

from bot.analytics import record_answer_feedback, record_event, record_rating, report
from bot.escalations import Escalation, EscalationStore, connect
from bot.settings import Settings
from bot.stack import Stack
from tests.agent_client import AgentClient, ensure_account

NOW = 1_790_000_000.0  # a fixed "now" (2026-09-21), so days and weeks are known
DAY = 86400.0


@pytest.fixture()
async def redis_prefix():
    redis = connect(Settings.from_env().redis_url)
    prefix = "test" + secrets.token_hex(4)
    yield redis, prefix
    async for key in redis.scan_iter(f"{prefix}:*"):
        await redis.delete(key)
    await redis.close()


def user(cid: str, ts: float, intent: str = "ask_question", channel: str = "webchat", language: str = "pl") -> dict:
    return {
        "event": "user",
        "sender_id": cid,
        "timestamp": ts,
        "input_channel": channel,
        "parse_data": {"intent": {"name": intent}, "language": {"code": language}},
    }


def answer(cid: str, ts: float, article: str) -> dict:
    return {"event": "bot", "sender_id": cid, "timestamp": ts, "data": {"custom": {"kb_article": article}}}


async def test_report_counts_each_conversation_once_and_defines_each_metric(redis_prefix) -> None:
    redis, prefix = redis_prefix
    store = EscalationStore(redis, prefix)
    async with redis.pipeline(transaction=False) as pipe:
        for cid, ts, channel, language in [
            ("a", NOW - 1 * DAY, "webchat", "pl"),  # bot alone
            ("b", NOW - 2 * DAY, "rest", "en"),  # escalated twice: counted once
            ("c", NOW - 9 * DAY, "webchat", "ro"),  # escalated, still open
            ("old", NOW - 60 * DAY, "webchat", "ru"),  # outside the 30-day window
        ]:
            record_event(pipe, prefix, user(cid, ts, channel=channel, language=language))
            record_event(pipe, prefix, user(cid, ts + 5, channel=channel, language=language))
        record_event(pipe, prefix, user("b", NOW - 2 * DAY + 9, intent="complain", channel="rest", language="en"))
        record_event(pipe, prefix, answer("a", NOW - DAY, "returns-how-to"))
        record_event(pipe, prefix, answer("b", NOW - 2 * DAY, "returns-how-to"))
        record_event(pipe, prefix, answer("c", NOW - 9 * DAY, "gift-cards"))
        await pipe.execute()

    def escalation(cid: str, ts: float, reason: str, channel: str, language: str) -> Escalation:
        return Escalation(cid, reason, language, channel, [], [], created_at=ts)

    first = await store.open(escalation("b", NOW - 2 * DAY + 10, "frustration", "rest", "en"))
    await store.close(first.id, "returned_to_bot", "anna")
    second = await store.open(escalation("b", NOW - 2 * DAY + 60, "customer_request", "rest", "en"))
    await store.claim(second.id, "anna")
    await store.close(second.id, "resolved", "anna")
    await store.open(escalation("c", NOW - 9 * DAY + 10, "low_confidence", "webchat", "ro"))
    await record_answer_feedback(redis, prefix, "a", "returns-how-to", helpful=True)
    await record_answer_feedback(redis, prefix, "c", "gift-cards", helpful=False)
    assert await redis.hget(f"{prefix}:stats:conversation:c", "feedback:gift-cards") == "unhelpful"
    await record_rating(redis, prefix, "a", 5)
    await record_rating(redis, prefix, "b", 2)
    with pytest.raises(ValueError):
        await record_rating(redis, prefix, "b", 6)

    result = await report(redis, prefix, days=30, now=NOW)
    assert result["conversations"] == 3
    assert (result["contained"], result["involved_a_person"]) == (1, 2)
    assert result["containment_rate"] + result["handoff_rate"] == pytest.approx(1.0)
    assert result["handoff_by_reason"] == {"frustration": 1, "low_confidence": 1}  # first escalation only
    assert result["outcomes"] == {"resolved": 1, "open": 1}  # latest escalation only
    assert result["conversations_by_channel"] == {"webchat": 2, "rest": 1}
    assert result["conversations_by_language"] == {"pl": 1, "en": 1, "ro": 1}
    assert sum(day["total"] for day in result["escalations_per_day"].values()) == 2
    assert result["most_used_articles"][0] == {
        "article_id": "returns-how-to",
        "answers": 2,
        "helpful": 1,
        "unhelpful": 0,
        "helpful_rate": 1.0,
    }
    assert result["least_helpful_articles"][0]["article_id"] == "gift-cards"
    assert sum(result["complaints_per_week"].values()) == 1
    assert result["satisfaction"] == {
        "ratings": 2,
        "average": 3.5,
        "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1},
    }
    assert set(result["definitions"]) >= {"containment_rate", "handoff_rate", "satisfaction", "complaints_per_week"}


async def test_customers_rate_answers_and_conversations_and_the_admin_sees_it(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    sender = "rate-" + secrets.token_hex(6)
    url = f"{stack.settings.rasa_url}/webhooks/rest/webhook"

    async def say(text: str) -> list[dict]:
        async with http.post(url, json={"sender": sender, "message": text}) as response:
            return await response.json()

    answer = (await say("Jak mogę zwrócić produkt?"))[-1]
    assert [b["title"] for b in answer["buttons"]] == ["👍 Pomocne", "👎 Niepomocne"]
    unhelpful = await say(answer["buttons"][1]["payload"])
    assert unhelpful[0]["text"].startswith("Przykro mi") and unhelpful[0]["buttons"][0]["payload"] == "/request_human"
    goodbye = await say("Do widzenia")
    rating = goodbye[-1]
    assert len(rating["buttons"]) == 5 and "oceniasz" in rating["text"]
    assert rating["buttons"][3]["payload"] == '/rate_conversation{"rating": "4"}'  # domain.yml's {{ }} unescaped
    assert (await say(rating["buttons"][3]["payload"]))[0]["text"] == "Dziękujemy za ocenę!"
    assert "interpolator" not in (stack.log_dir / "rasa.log").read_text(errors="replace")  # no error per rating

    await ensure_account(stack.settings, "boss", "admin", "Boss")
    admin = await AgentClient(http, stack.settings).login("boss")
    started = time.monotonic()
    status, result = await admin.get("/api/analytics?days=1")
    assert status == 200 and time.monotonic() - started < 5
    article = next(a for a in result["most_used_articles"] if a["article_id"] == "returns-how-to")
    assert article["answers"] >= 1 and article["unhelpful"] >= 1
    assert result["satisfaction"]["distribution"]["4"] >= 1
    assert result["conversations"] >= 1
    await ensure_account(stack.settings, "anna", "agent", "Anna")
    agent = await AgentClient(http, stack.settings).login("anna")
    assert (await agent.get("/api/analytics"))[0] == 403  # admins only
    assert (await admin.get("/api/analytics?days=0"))[0] == 400
