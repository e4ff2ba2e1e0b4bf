"""The escalation store against a real Redis."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from bot.escalations import Escalation, EscalationStore, TransitionError, connect
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


async def test_one_open_escalation_per_conversation(store: EscalationStore) -> None:
    first = await store.open(escalation("c3", 100.0))
    again = await store.open(escalation("c3", 200.0))
    assert again.id == first.id and len(await store.queue()) == 1


async def test_claim_gives_one_owner_and_only_admins_reassign(store: EscalationStore) -> None:
    opened = await store.open(escalation("c4", 100.0))
    assert (await store.claim(opened.id, "anna")).owner == "anna"
    with pytest.raises(TransitionError, match="already claimed by anna"):
        await store.claim(opened.id, "bartek")
    assert (await store.claim(opened.id, "bartek", reassign=True)).owner == "bartek"
    with pytest.raises(TransitionError) as refused:
        await store.close(opened.id, "resolved", "anna", admin=False)
    assert refused.value.status == 403
    closed = await store.close(opened.id, "resolved", "bartek", admin=False)
    assert closed.status == "resolved" and closed.closed_by == "bartek"
    with pytest.raises(TransitionError, match="is resolved"):
        await store.claim(opened.id, "anna")


async def test_concurrent_claims_have_exactly_one_winner(store: EscalationStore) -> None:
    opened = await store.open(escalation("c5", 100.0))
    agents = [f"agent{i}" for i in range(8)]
    results = await asyncio.gather(*(store.claim(opened.id, a) for a in agents), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, TransitionError) for r in results if isinstance(r, Exception))
    assert (await store.get(opened.id)).owner == winners[0].owner


async def test_every_change_is_announced_on_the_event_stream(store: EscalationStore) -> None:
    opened = await store.open(escalation("c6", 100.0))
    await store.claim(opened.id, "anna")
    await store.add_note(opened.id, "anna", "called the courier")
    await store.close(opened.id, "returned_to_bot", "anna")
    records = await store.redis.xrange(store.stream)
    assert [r.get("change") or r["kind"] for _, r in records] == ["opened", "assigned", "note", "returned_to_bot"]
