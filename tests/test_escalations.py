"""The escalation store against a real Redis."""

from __future__ import annotations

import secrets

import pytest

from bot.escalations import Escalation, EscalationStore, connect
from bot.settings import Settings


@pytest.fixture()
async def store():
    settings = Settings.from_env()
    redis = connect(settings.redis_url)
    prefix = "test" + secrets.token_hex(4)
    yield EscalationStore(redis, prefix)
    async for key in redis.scan_iter(f"{prefix}:*"):
        await redis.delete(key)
    await redis.close()


def escalation(conversation_id: str, created_at: float) -> Escalation:
    return Escalation(
        conversation_id=conversation_id,
        reason="customer_request",
        status="waiting",
        language="pl",
        channel="webchat",
        turns=[{"text": "konsultant", "intent": "request_human"}],
        articles_offered=[],
        created_at=created_at,
    )


async def test_queue_lists_longest_waiting_first(store: EscalationStore) -> None:
    await store.open(escalation("later", 200.0))
    await store.open(escalation("earlier", 100.0))
    assert [e.conversation_id for e in await store.waiting()] == ["earlier", "later"]


async def test_closing_takes_it_out_of_the_queue_and_off_the_conversation(store: EscalationStore) -> None:
    opened = await store.open(escalation("c1", 100.0))
    assert (await store.current_for("c1")).id == opened.id
    closed = await store.close(opened.id, "returned_to_bot")
    assert closed.status == "returned_to_bot"
    assert await store.waiting() == []
    assert await store.current_for("c1") is None
    assert (await store.get(opened.id)).status == "returned_to_bot"


async def test_contact_is_recorded(store: EscalationStore) -> None:
    opened = await store.open(escalation("c2", 100.0))
    await store.set_contact(opened.id, "+48600100200")
    assert (await store.get(opened.id)).contact == "+48600100200"
