"""One customer across conversations, with the real processes: linking, not asking twice, forgetting."""

from __future__ import annotations

import asyncio
import secrets

import aiohttp
import pytest

from bot.stack import Stack
from tests.agent_client import AgentClient, ensure_account
from tests.conftest import ALWAYS_CLOSED
from tests.meta_client import (
    messenger_delivery,
    messenger_text,
    new_psid,
    new_wa_id,
    post_webhook,
    whatsapp_delivery,
    whatsapp_text,
)
from tests.rest_client import say
from tests.webchat_client import WebChatCustomer

pytestmark = pytest.mark.e2e


async def test_a_returning_customer_is_recognised_across_channels_and_can_be_forgotten(
    stack: Stack, http: aiohttp.ClientSession, business_hours
) -> None:
    business_hours.write_text(ALWAYS_CLOSED)
    email = f"jan.{secrets.token_hex(3)}@example.com"
    await ensure_account(stack.settings, "anna", "agent", "Anna")
    anna = await AgentClient(http, stack.settings).login("anna")

    # Yesterday, on the REST channel: after hours, the customer leaves an email.
    rest = "jan-" + secrets.token_hex(4)
    assert "e-mail" in (await say(http, stack, rest, "Chcę rozmawiać z konsultantem"))[-1]["text"]
    await say(http, stack, rest, email)
    assert (await anna.post(f"/api/conversations/rest:{rest}/resolve"))[0] == 200

    # Today, on the web chat: the same email links the two conversations.
    customer = await WebChatCustomer(stack.settings).connect()
    try:
        await customer.say("Chcę rozmawiać z konsultantem")
        assert (await customer.next())["custom"]["handoff"]["status"] == "offline"
        assert "e-mail" in (await customer.next())["text"]
        await customer.say(email.upper())
        await customer.next()
        status, view = await anna.get(f"/api/conversations/{customer.session_id}")
        assert view["customer"]["linked_conversations"] == [f"rest:{rest}"]
        assert view["customer"]["contacts"] == [email]
        assert [e["conversation_id"] for e in view["earlier"]] == [f"rest:{rest}"]
        assert (await anna.post(f"/api/conversations/{customer.session_id}/resolve"))[0] == 200
        await customer.next()  # "the agent closed this conversation"
        await customer.next()  # the satisfaction question

        # Asking again: the bot knows how to reach them and does not ask.
        await customer.say("Chcę rozmawiać z konsultantem")
        assert (await customer.next())["custom"]["handoff"]["status"] == "offline"
        known = await customer.next()
        assert "j***@example.com" in known["text"] and email not in known["text"]
        assert await customer.nothing_within(2)  # no contact question
        status, view = await anna.get(f"/api/conversations/{customer.session_id}")
        assert view["escalation"]["contact"] == email

        # Agents can also link by hand, and undo it.
        other = "other-" + secrets.token_hex(4)
        await say(http, stack, other, "Dzień dobry")
        status, linked = await anna.post(f"/api/conversations/rest:{other}/link", {"with": customer.session_id})
        assert status == 200 and f"rest:{rest}" in linked["linked_conversations"]
        assert (await anna.post(f"/api/conversations/rest:{other}/unlink"))[0] == 200
        assert (await anna.post(f"/api/conversations/rest:{other}/link", {"with": "nobody-here"}))[0] == 404

        # "Forget me": confirmed, then everything about both conversations is gone.
        assert (await anna.post(f"/api/conversations/{customer.session_id}/resolve"))[0] == 200
        await customer.next()
        await customer.next()
        await customer.say("Usuńcie moje dane")
        confirm = await customer.next()
        assert [b["payload"] for b in confirm["buttons"]] == ["/affirm", "/deny"]
        await customer.say("/affirm")
        assert (await customer.next())["text"].startswith("Gotowe: usunąłem Twoje rozmowy")
    finally:
        await customer.disconnect()

    async def leftovers() -> list[str]:
        return [k async for k in _keys(stack, customer.session_id)] + [k async for k in _keys(stack, rest)]

    for _ in range(40):  # the erasure runs right after the turn is saved
        if not await leftovers():
            break
        await asyncio.sleep(0.25)
    assert await leftovers() == []  # transcripts, escalations, statistics, profile: nothing of theirs is left
    assert (await anna.get(f"/api/conversations/rest:{rest}"))[0] == 404
    assert (await anna.get(f"/api/conversations/{customer.session_id}"))[0] == 404
    assert await leftovers() == []  # and asking about them creates nothing


async def _keys(stack: Stack, fragment: str):
    from bot.escalations import connect

    redis = connect(stack.settings.redis_url)
    try:
        async for key in redis.scan_iter(f"{stack.settings.redis_prefix}:*{fragment}*"):
            yield key
    finally:
        await redis.close()


async def test_a_whatsapp_number_given_on_another_channel_links_them_and_agents_relink_by_contact(
    stack: Stack, http: aiohttp.ClientSession, business_hours
) -> None:
    business_hours.write_text(ALWAYS_CLOSED)
    await ensure_account(stack.settings, "anna", "agent", "Anna")
    anna = await AgentClient(http, stack.settings).login("anna")
    wa_id = new_wa_id()
    whatsapp = f"whatsapp:{wa_id}"

    # On WhatsApp the number is known: asking for a person after hours, nobody asks for a contact.
    status, _ = await post_webhook(
        http, stack, "whatsapp", whatsapp_delivery([whatsapp_text(wa_id, "Chcę rozmawiać z konsultantem")])
    )
    assert status == 200
    for _ in range(100):
        status, view = await anna.get(f"/api/conversations/{whatsapp}")
        if status == 200 and view["escalation"]:
            break
        await asyncio.sleep(0.2)
    assert view["escalation"]["contact"] == f"+{wa_id}"
    assert view["customer"]["contacts"] == [f"+{wa_id}"]

    # On the REST channel the customer leaves the same number, written their way: the two are one customer.
    rest = "rest:kasia-" + secrets.token_hex(4)
    assert "e-mail" in (await say(http, stack, rest, "Chcę rozmawiać z konsultantem"))[-1]["text"]
    local = f"{wa_id[2:5]} {wa_id[5:8]} {wa_id[8:]}"  # "600 123 456": a Polish number without +48
    await say(http, stack, rest, local)
    status, view = await anna.get(f"/api/conversations/{rest}")
    assert view["customer"]["linked"] == [{"conversation_id": whatsapp, "channel": "whatsapp"}]
    assert [e["conversation_id"] for e in view["earlier"]] == [whatsapp]  # the agent sees the other conversation
    status, view = await anna.get(f"/api/conversations/{whatsapp}")
    assert view["customer"]["linked"] == [{"conversation_id": rest, "channel": "rest"}]

    # A Messenger conversation of the same person: the agent links it by the phone number alone.
    psid = new_psid()
    messenger = f"messenger:{psid}"
    await post_webhook(http, stack, "messenger", messenger_delivery([messenger_text(psid, "Dzień dobry")]))
    for _ in range(100):
        if (await anna.get(f"/api/conversations/{messenger}"))[0] == 200:
            break
        await asyncio.sleep(0.2)
    status, linked = await anna.post(f"/api/conversations/{messenger}/link", {"with": f"+{wa_id[:2]} {local}"})
    assert status == 200 and sorted(linked["linked_conversations"]) == sorted([whatsapp, rest, messenger])
    status, view = await anna.get(f"/api/conversations/{whatsapp}")
    assert {c["channel"] for c in view["customer"]["linked"]} == {"rest", "messenger"}

    # Undone by hand: the Messenger conversation stands alone again; the other two stay together.
    assert (await anna.post(f"/api/conversations/{messenger}/unlink"))[0] == 200
    assert (await anna.get(f"/api/conversations/{messenger}"))[1]["customer"]["linked"] == []
    status, view = await anna.get(f"/api/conversations/{rest}")
    assert view["customer"]["linked"] == [{"conversation_id": whatsapp, "channel": "whatsapp"}]
    status, body = await anna.post(f"/api/conversations/{messenger}/link", {"with": "nobody@example.com"})
    assert status == 404 and "no customer" in body["error"]
