"""Messages kept while the bot was down, and their replay, against a real Redis."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from bot import offline
from bot.escalations import connect
from bot.settings import Settings


@pytest.fixture()
async def redis():
    client = connect(Settings.from_env().redis_url)
    prefix = "test" + secrets.token_hex(4)
    client.test_prefix = prefix  # type: ignore[attr-defined]
    yield client
    async for key in client.scan_iter(f"{prefix}:*"):
        await client.delete(key)
    await client.close()


async def parse(text: str) -> dict[str, Any]:
    return {"text": text, "intent": {"name": "damaged_parcel", "confidence": 0.9}}


async def test_kept_messages_replay_in_order_with_their_answers_then_a_pause(redis) -> None:
    prefix = redis.test_prefix
    await offline.keep(redis, prefix, "s1", "Paczka uszkodzona", "pl", "Przepraszam, problem techniczny.")
    await offline.keep(redis, prefix, "s1", "Halo?", "pl", "Przepraszam, problem techniczny.")
    assert [m["text"] for m in await offline.pending(redis, prefix, "s1")] == ["Paczka uszkodzona", "Halo?"]
    applied: list[list[dict]] = []

    async def apply(events: list[dict]) -> None:
        applied.append(events)

    assert await offline.replay(redis, prefix, "s1", parse, apply) == 2
    events = applied[0]
    assert [(e["event"], e.get("text")) for e in events] == [
        ("user", "Paczka uszkodzona"),
        ("bot", "Przepraszam, problem techniczny."),
        ("user", "Halo?"),
        ("bot", "Przepraszam, problem techniczny."),
        ("pause", None),
    ]
    assert events[0]["parse_data"]["intent"]["name"] == "damaged_parcel"
    assert events[0]["parse_data"]["language"] == {"code": "pl"}
    assert await offline.pending(redis, prefix, "s1") == []
    assert await offline.replay(redis, prefix, "s1", parse, apply) == 0  # nothing twice
    assert len(applied) == 1


async def test_a_failed_replay_keeps_the_messages(redis) -> None:
    prefix = redis.test_prefix
    await offline.keep(redis, prefix, "s2", "Gdzie moja paczka?", "pl", "…")

    async def apply(events: list[dict]) -> None:
        raise ConnectionError("Rasa is still starting")

    with pytest.raises(ConnectionError):
        await offline.replay(redis, prefix, "s2", parse, apply)
    assert [m["text"] for m in await offline.pending(redis, prefix, "s2")] == ["Gdzie moja paczka?"]


async def test_two_replays_at_once_apply_each_message_once_and_keep_what_arrives_meanwhile(redis) -> None:
    prefix = redis.test_prefix
    await offline.keep(redis, prefix, "s3", "pierwsza", "pl", "…")
    applied: list[str] = []

    async def slow_apply(events: list[dict]) -> None:
        await offline.keep(redis, prefix, "s3", "druga", "pl", "…")  # arrives while the first replay runs
        await asyncio.sleep(0.2)
        applied.extend(e["text"] for e in events if e["event"] == "user")

    await asyncio.gather(
        offline.replay(redis, prefix, "s3", parse, slow_apply), offline.replay(redis, prefix, "s3", parse, slow_apply)
    )
    assert applied[0] == "pierwsza" and applied.count("pierwsza") == 1
    assert "druga" in applied  # the second replay took what came in meanwhile
