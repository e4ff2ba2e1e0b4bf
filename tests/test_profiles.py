"""Customer profiles across channels, against a real Redis."""

from __future__ import annotations

import secrets

import pytest

from bot.escalations import connect
from bot.profiles import Profiles, mask_contact
from bot.settings import Settings


@pytest.fixture()
async def profiles():
    redis = connect(Settings.from_env().redis_url)
    prefix = "test" + secrets.token_hex(4)
    yield Profiles(redis, prefix)
    async for key in redis.scan_iter(f"{prefix}:*"):
        await redis.delete(key)
    await redis.close()


async def test_the_same_contact_on_two_channels_links_the_conversations(profiles: Profiles) -> None:
    web = await profiles.add_contact("a1b2c3d4e5f6", "+48600100200")
    assert web.conversations == ["a1b2c3d4e5f6"]
    await profiles.observe("whatsapp:48600100200")  # a WhatsApp number is a phone contact
    linked = await profiles.profile_of("whatsapp:48600100200")
    assert linked.id == web.id and set(linked.conversations) == {"a1b2c3d4e5f6", "whatsapp:48600100200"}
    await profiles.add_contact("messenger:777", "jan@example.com")
    merged = await profiles.add_contact("messenger:777", "+48600100200")  # Messenger customer gives the phone
    assert set(merged.conversations) == {"a1b2c3d4e5f6", "whatsapp:48600100200", "messenger:777"}
    assert set(merged.contacts) == {"+48600100200", "jan@example.com"}
    assert (await profiles.profile_of("a1b2c3d4e5f6")).id == merged.id


async def test_agents_link_and_unlink_by_hand(profiles: Profiles) -> None:
    profile = await profiles.link("rest:one", "rest:two")
    assert set(profile.conversations) == {"rest:one", "rest:two"}
    await profiles.unlink("rest:two")
    assert await profiles.profile_of("rest:two") is None
    assert (await profiles.profile_of("rest:one")).conversations == ["rest:one"]
    await profiles.unlink("rest:one")
    assert await profiles.profile_of("rest:one") is None


async def test_forgetting_removes_the_profile_and_names_every_conversation(profiles: Profiles) -> None:
    await profiles.add_contact("web1", "ola@example.com")
    await profiles.add_contact("messenger:9", "ola@example.com")
    assert await profiles.forget("messenger:9") == ["messenger:9", "web1"]
    assert await profiles.profile_of("web1") is None
    assert await profiles.add_contact("web2", "ola@example.com") is not None  # the contact is free again
    assert (await profiles.profile_of("web2")).conversations == ["web2"]


def test_contacts_are_masked_in_what_the_bot_says() -> None:
    assert mask_contact("jan.kowalski@example.com") == "j***@example.com"
    assert mask_contact("+48600100200") == "+48***00"


async def test_erasing_conversations_leaves_nothing_that_names_them(profiles: Profiles) -> None:
    from bot.conversations import tracker_key
    from bot.escalations import EscalationStore
    from bot.forget import erase_conversations
    from bot.kb.gaps import GapStore

    redis, prefix = profiles.redis, profiles.prefix
    gone, kept = "whatsapp:48600100200", "rest:someone-else"
    store = EscalationStore(redis, prefix)
    gaps = GapStore(redis, prefix)
    for cid in (gone, kept):
        await redis.set(tracker_key(prefix, cid), "[]")
        await redis.rpush(store.key("whatsapp", "pending", cid), "an agent's reply")
        await redis.xadd(store.stream, {"conversation_id": cid, "type": "message"})
        await gaps.record("no_match", cid, f"a question from {cid[:4]}", "en")
    await redis.hset(store.key("whatsapp", "message", "wamid.1"), mapping={"conversation_id": gone})
    await redis.hset(store.key("whatsapp", "message", "wamid.2"), mapping={"conversation_id": kept})

    await erase_conversations(redis, prefix, [gone])

    assert not await redis.exists(tracker_key(prefix, gone), store.key("whatsapp", "pending", gone))
    assert not await redis.exists(store.key("whatsapp", "message", "wamid.1"))
    assert [r["conversation_id"] for _, r in await redis.xrange(store.stream)] == [kept]
    assert [r.text for r in await gaps.records()] == ["a question from rest"]
    assert await redis.exists(tracker_key(prefix, kept), store.key("whatsapp", "message", "wamid.2")) == 2
