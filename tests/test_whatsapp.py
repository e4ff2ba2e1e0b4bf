"""The WhatsApp channel with the real Rasa server: Cloud API deliveries, the Graph API on a stand-in."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from bot.channels.delivery_window import key as window_key
from bot.channels.graph_api import GraphClient
from bot.channels.meta_config import ChannelConfigError, WhatsAppConfig
from bot.channels.rendering import Answer, Button
from bot.channels.whatsapp import WhatsAppInput
from bot.messages import message
from bot.settings import Settings
from bot.stack import Stack
from tests.agent_client import AgentClient, ensure_account
from tests.graph_stand_in import (
    PHONE_NUMBER_ID,
    TEMPLATE_LANGUAGE,
    TEMPLATE_NAME,
    WHATSAPP_TOKEN,
    Call,
    GraphStandIn,
)
from tests.meta_client import (
    WHATSAPP_VERIFY_TOKEN,
    articles_answered,
    new_wa_id,
    post_webhook,
    signature,
    tracker_events,
    whatsapp_button_reply,
    whatsapp_delivery,
    whatsapp_image,
    whatsapp_status,
    whatsapp_text,
)

pytestmark = pytest.mark.e2e
RETURNS_PL = "Jak mogę zwrócić zamówiony produkt?"


def is_text(call: Call) -> bool:
    return call.text is not None


def test_enabled_channel_with_a_missing_setting_is_a_clear_error() -> None:
    assert WhatsAppConfig.from_credentials({"access_token": "", "app_secret": None}) is None  # off
    with pytest.raises(ChannelConfigError, match="WHATSAPP_TEMPLATE_NAME"):
        WhatsAppConfig.from_credentials(
            {
                "access_token": "t",
                "app_secret": "s",
                "verify_token": "v",
                "phone_number_id": "1",
                "template_language": "en_US",
            }
        )


async def test_webhook_verification_needs_the_verify_token(stack: Stack, http: aiohttp.ClientSession) -> None:
    url = f"{stack.settings.rasa_url}/webhooks/whatsapp/webhook"
    query = {"hub.mode": "subscribe", "hub.verify_token": WHATSAPP_VERIFY_TOKEN, "hub.challenge": "987654321"}
    async with http.get(url, params=query) as response:
        assert response.status == 200 and await response.text() == "987654321"
    async with http.get(url, params={**query, "hub.verify_token": WHATSAPP_VERIFY_TOKEN + "x"}) as response:
        assert response.status == 403


async def test_wrong_signature_is_refused_and_nothing_processed(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    wa_id = new_wa_id()
    payload = whatsapp_delivery([whatsapp_text(wa_id, RETURNS_PL)])
    assert (await post_webhook(http, stack, "whatsapp", payload, signature_header=None))[0] == 403
    assert (await post_webhook(http, stack, "whatsapp", payload, signature("guess", b"x")))[0] == 403
    await asyncio.sleep(3)
    assert graph_api.sent_to(wa_id, successful=False) == []
    assert not [e for e in await tracker_events(http, stack, f"whatsapp:{wa_id}") if e["event"] == "user"]


async def test_batch_of_three_messages_gets_three_answers_and_a_duplicate_one(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    customers = [new_wa_id(), new_wa_id(), new_wa_id()]
    questions = [RETURNS_PL, "Как отследить мой заказ?", "I forgot my password and can't log in, what should I do?"]
    articles = ["returns-how-to", "order-status-tracking", "password-reset"]
    messages = [whatsapp_text(w, q) for w, q in zip(customers, questions, strict=True)]
    status, body = await post_webhook(http, stack, "whatsapp", whatsapp_delivery(messages))
    assert status == 200 and body["accepted"] == 3
    # Meta delivers the first message again: answered once.
    assert (await post_webhook(http, stack, "whatsapp", whatsapp_delivery(messages[:1])))[1]["accepted"] == 0
    for wa_id, article in zip(customers, articles, strict=True):
        await graph_api.wait_for(wa_id, 1, what=is_text)
        assert await articles_answered(http, stack, f"whatsapp:{wa_id}", 1) == [article]
    await asyncio.sleep(3)
    assert len([c for c in graph_api.sent_to(customers[0]) if is_text(c)]) == 1
    assert graph_api.problems() == []


async def test_change_for_another_phone_number_is_ignored(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    wa_id = new_wa_id()
    payload = whatsapp_delivery([whatsapp_text(wa_id, RETURNS_PL)], phone_number_id="999999999")
    assert (await post_webhook(http, stack, "whatsapp", payload))[1]["accepted"] == 0
    await asyncio.sleep(2)
    assert graph_api.sent_to(wa_id, successful=False) == []


async def test_button_reply_and_image(stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn) -> None:
    wa_id = new_wa_id()
    reply = whatsapp_button_reply(wa_id, '/ask_question{"kb_article": "payment-methods"}', "Payment methods")
    await post_webhook(http, stack, "whatsapp", whatsapp_delivery([reply]))
    await graph_api.wait_for(wa_id, 1, what=is_text)
    assert await articles_answered(http, stack, f"whatsapp:{wa_id}", 1) == ["payment-methods"]
    await post_webhook(http, stack, "whatsapp", whatsapp_delivery([whatsapp_image(wa_id)]))
    assert (await graph_api.wait_for(wa_id, 2, what=is_text))[1].text == message("unsupported_message", "en")


async def test_status_callbacks_are_recorded_on_the_message(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn, redis_client
) -> None:
    wa_id = new_wa_id()
    await post_webhook(http, stack, "whatsapp", whatsapp_delivery([whatsapp_text(wa_id, RETURNS_PL)]))
    wamid = (await graph_api.wait_for(wa_id, 1, what=is_text))[0].message_id
    record_key = f"{stack.settings.redis_prefix}:whatsapp:message:{wamid}"
    assert redis_client.hget(record_key, "conversation_id") == f"whatsapp:{wa_id}"
    # read arrives before delivered, and sent last: the record keeps the furthest state
    for state in ("read", "delivered", "sent"):
        statuses = [whatsapp_status(wamid, wa_id, state)]
        assert (await post_webhook(http, stack, "whatsapp", whatsapp_delivery(statuses=statuses)))[0] == 200
    record = redis_client.hgetall(record_key)
    assert record["status"] == "read" and {"sent_at", "delivered_at", "read_at"} <= record.keys()

    failed = whatsapp_status(wamid, wa_id, "failed", errors=[{"code": 131026, "title": "Message undeliverable"}])
    await post_webhook(http, stack, "whatsapp", whatsapp_delivery(statuses=[failed]))
    record = redis_client.hgetall(record_key)
    assert record["status"] == "failed" and "131026" in record["error"]


async def test_agent_reply_outside_24_hours_sends_the_template_and_waits_for_the_customer(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn, redis_client
) -> None:
    await ensure_account(stack.settings, "anna", "agent", "Anna")
    anna = await AgentClient(http, stack.settings).login("anna")
    wa_id = new_wa_id()
    conversation = f"whatsapp:{wa_id}"
    await post_webhook(
        http, stack, "whatsapp", whatsapp_delivery([whatsapp_text(wa_id, "chcę rozmawiać z konsultantem")])
    )
    await graph_api.wait_for(wa_id, 1, what=is_text)
    assert (await anna.post(f"/api/conversations/{conversation}/claim"))[0] == 200

    redis_client.set(window_key(stack.settings.redis_prefix, conversation), time.time() - 30 * 3600)
    status, body = await anna.post(f"/api/conversations/{conversation}/messages", {"text": "Dzień dobry, tu Anna."})
    assert status == 202 and body["delivered"] is False and body["via"] == "template"
    status, _ = await anna.post(f"/api/conversations/{conversation}/messages", {"text": "Sprawdziłam zamówienie."})
    assert status == 202
    await asyncio.sleep(2)
    outside = graph_api.sent_to(wa_id)[1:]  # after the handoff notice
    assert [c.body["type"] for c in outside] == ["template"]  # one template, no free-form text
    assert outside[0].body["template"] == {"name": TEMPLATE_NAME, "language": {"code": TEMPLATE_LANGUAGE}}

    await post_webhook(http, stack, "whatsapp", whatsapp_delivery([whatsapp_text(wa_id, "Tak, słucham")]))
    calls = await graph_api.wait_for(wa_id, 3, what=is_text)
    assert [c.text for c in calls[1:3]] == ["Dzień dobry, tu Anna.", "Sprawdziłam zamówienie."]
    assert graph_api.problems() == []


async def test_answers_are_rendered_within_whatsapp_limits(
    stack: Stack, stack_settings: Settings, graph_api: GraphStandIn
) -> None:
    config = WhatsAppConfig("t", "s", "v", PHONE_NUMBER_ID, TEMPLATE_NAME, TEMPLATE_LANGUAGE, graph_api.url)
    channel = WhatsAppInput(config, GraphClient(graph_api.url, WHATSAPP_TOKEN), settings=stack_settings)
    output = channel.output()
    wa_id = new_wa_id()
    titles = [f"How long does delivery number {i} take to my country?" for i in range(1, 6)]
    long_text = "Here is everything you asked about. " * 150  # 5,400 characters
    buttons = [Button(t, f'/ask_question{{"kb_article": "a{i}"}}') for i, t in enumerate(titles)]
    await output.deliver(wa_id, f"whatsapp:{wa_id}", Answer(long_text), "message")
    await output.deliver(wa_id, f"whatsapp:{wa_id}", Answer("Which one?", buttons[:3]), "message")
    await output.deliver(wa_id, f"whatsapp:{wa_id}", Answer("Which one?", buttons, language="pl"), "message")
    await channel.graph.close()
    calls = graph_api.sent_to(wa_id)
    assert [c.body["type"] for c in calls] == ["text", "text", "interactive", "interactive"]
    assert " ".join(c.text for c in calls[:2]) == long_text.strip()
    reply_buttons = calls[2].body["interactive"]["action"]["buttons"]
    assert [b["reply"]["id"] for b in reply_buttons] == [b.payload for b in buttons[:3]]
    assert all(t in calls[2].text for t in titles[:3])  # full titles in the body, shortened on the buttons
    listed = calls[3].body["interactive"]
    assert listed["type"] == "list" and listed["action"]["button"] == "Wybierz"
    assert len(listed["action"]["sections"][0]["rows"]) == 5
    assert graph_api.problems() == []
