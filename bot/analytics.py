"""Support analytics: what is recorded per conversation and article, and the report built from it.

Definitions (the report repeats them):
- conversation: one customer's chat (one Rasa sender id) with at least one customer
  message, counted once, on the day of its first message;
- involved a person: the conversation was escalated at least once (it joined the agents' queue);
- contained: the conversation never involved a person: the bot handled it alone.
  Containment rate = contained / conversations; handoff rate = involved / conversations;
  the two add up to exactly 100% because every conversation is one or the other;
- resolved by an agent / returned to the bot / still open: the outcome of the conversation's
  latest escalation, for the conversations that involved a person;
- handoff reason: the reason of the conversation's first escalation (one per conversation);
- article use: knowledge-base answers given with the article; helpfulness: the customers'
  👍/👎 on those answers;
- complaint: a customer message understood as a complaint (intent `complain`), by ISO week;
- satisfaction: the 1-5 rating asked at the end of a conversation (the latest one counts).

Keys (each starts with "<prefix>:stats:"):
  conversations              sorted set: conversation id -> time of its first message
  conversation:<cid>         hash: first_at, channel, language, messages, rating,
                             feedback:<article id> -> helpful|unhelpful
  articles                   hash: <article id>:<answers|helpful|unhelpful> -> count
  complaints                 sorted set: "<cid>:<timestamp>" -> timestamp
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from typing import Any

from redis.asyncio import Redis

from bot.escalations import Escalation, EscalationStore

DEFINITIONS = {
    "conversations": "Chats with at least one customer message, counted once, on the day of the first message.",
    "containment_rate": "Share of conversations the bot handled alone: never escalated to the agents' queue.",
    "handoff_rate": "Share of conversations escalated at least once. Containment + handoff = 100%.",
    "outcomes": "For escalated conversations, the outcome of the latest escalation: resolved by an agent, "
    "returned to the bot, or still open.",
    "handoff_by_reason": "Escalated conversations by the reason of their first escalation (one per conversation).",
    "escalations_per_day": "Escalated conversations by the day of their first escalation, per channel and language.",
    "articles": "Knowledge-base answers per article, and the customers' helpful / not helpful votes on them.",
    "complaints_per_week": "Customer messages understood as complaints, per ISO week.",
    "satisfaction": "The 1-5 rating customers give at the end of a conversation (latest per conversation).",
}


def _key(prefix: str, *parts: str) -> str:
    return ":".join((prefix, "stats", *parts))


def record_event(pipe: Any, prefix: str, event: dict[str, Any]) -> None:
    """Add one Rasa tracker event to the statistics (queued on a Redis pipeline)."""
    cid = str(event.get("sender_id"))
    ts = float(event.get("timestamp") or time.time())
    if event.get("event") == "user":
        parse = event.get("parse_data") or {}
        key = _key(prefix, "conversation", cid)
        pipe.zadd(_key(prefix, "conversations"), {cid: ts}, nx=True)
        pipe.hsetnx(key, "first_at", ts)
        pipe.hsetnx(key, "channel", event.get("input_channel") or "unknown")
        language = (parse.get("language") or {}).get("code")
        if language:
            pipe.hset(key, "language", language)
        pipe.hincrby(key, "messages", 1)
        if (parse.get("intent") or {}).get("name") == "complain":
            pipe.zadd(_key(prefix, "complaints"), {f"{cid}:{ts}": ts})
    elif event.get("event") == "bot":
        article = ((event.get("data") or {}).get("custom") or {}).get("kb_article")
        if article:
            pipe.hincrby(_key(prefix, "articles"), f"{article}:answers", 1)


async def record_answer_feedback(
    redis: Redis, prefix: str, conversation_id: str, article_id: str, helpful: bool
) -> None:
    """A 👍/👎 on an answer: counted per article, and kept on the conversation (its latest vote per article)."""
    vote = "helpful" if helpful else "unhelpful"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(_key(prefix, "articles"), f"{article_id}:{vote}", 1)
        pipe.hset(_key(prefix, "conversation", conversation_id), f"feedback:{article_id}", vote)
        await pipe.execute()


async def record_rating(redis: Redis, prefix: str, conversation_id: str, rating: int) -> None:
    if not 1 <= rating <= 5:
        raise ValueError(f"a rating is 1-5, got {rating}")
    await redis.hset(_key(prefix, "conversation", conversation_id), "rating", rating)


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date().isoformat()


def _week(ts: float) -> str:
    year, week, _ = dt.datetime.fromtimestamp(ts, dt.timezone.utc).isocalendar()
    return f"{year}-W{week:02d}"


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def report(redis: Redis, prefix: str, days: int = 30, now: float | None = None) -> dict[str, Any]:
    """The analytics of the conversations that started in the last `days` days."""
    now = time.time() if now is None else now
    since = now - days * 86400
    store = EscalationStore(redis, prefix)
    ids = await redis.zrangebyscore(_key(prefix, "conversations"), since, now)
    involved = 0
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    by_channel: Counter[str] = Counter()
    by_language: Counter[str] = Counter()
    ratings: Counter[int] = Counter()
    for cid in ids:
        stats = await redis.hgetall(_key(prefix, "conversation", cid))
        by_channel[stats.get("channel", "unknown")] += 1
        by_language[stats.get("language", "unknown")] += 1
        if stats.get("rating"):
            ratings[int(stats["rating"])] += 1
        history: list[Escalation] = await store.history(cid)  # newest first
        if not history:
            continue
        involved += 1
        first, latest = history[-1], history[0]
        reasons[first.reason] += 1
        outcomes[latest.status if not latest.is_open else "open"] += 1
        day = _day(first.created_at)
        per_day[day]["total"] += 1
        per_day[day][f"channel:{first.channel}"] += 1
        per_day[day][f"language:{first.language}"] += 1

    articles: dict[str, dict[str, int]] = defaultdict(lambda: {"answers": 0, "helpful": 0, "unhelpful": 0})
    for field, count in (await redis.hgetall(_key(prefix, "articles"))).items():
        article_id, _, kind = field.rpartition(":")
        articles[article_id][kind] = int(count)
    article_rows = [
        {"article_id": a, **c, "helpful_rate": _rate(c["helpful"], c["helpful"] + c["unhelpful"])}
        for a, c in articles.items()
    ]
    complaints: Counter[str] = Counter(
        _week(score) for _, score in await redis.zrangebyscore(_key(prefix, "complaints"), since, now, withscores=True)
    )
    total = len(ids)
    rated = sum(ratings.values())
    return {
        "window": {"days": days, "from": _day(since), "to": _day(now)},
        "definitions": DEFINITIONS,
        "conversations": total,
        "contained": total - involved,
        "involved_a_person": involved,
        "containment_rate": _rate(total - involved, total),
        "handoff_rate": _rate(involved, total),
        "outcomes": dict(outcomes),
        "handoff_by_reason": dict(reasons),
        "conversations_by_channel": dict(by_channel),
        "conversations_by_language": dict(by_language),
        "escalations_per_day": {day: dict(counts) for day, counts in sorted(per_day.items())},
        "most_used_articles": sorted(article_rows, key=lambda r: -r["answers"])[:10],
        "least_helpful_articles": sorted(
            (r for r in article_rows if r["helpful"] + r["unhelpful"] > 0),
            key=lambda r: (r["helpful_rate"], -r["unhelpful"]),
        )[:10],
        "complaints_per_week": dict(sorted(complaints.items())),
        "satisfaction": {
            "ratings": rated,
            "average": round(sum(k * v for k, v in ratings.items()) / rated, 2) if rated else None,
            "distribution": {str(k): ratings.get(k, 0) for k in range(1, 6)},
        },
    }
