"""The Messenger channel with the real Rasa server: deliveries shaped like Meta's, the Send API on a stand-in."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from bot.channels.delivery_window import key as window_key
from bot.channels.meta_webhook import valid_signature
from bot.channels.rendering import Answer, Button, fit_buttons, shorten, split_text
from bot.messages import message
from bot.stack import Stack
from tests.agent_client import AgentClient, ensure_account
from tests.graph_stand_in import Call, GraphStandIn
from tests.meta_client import (
    MESSENGER_APP_SECRET,
    MESSENGER_VERIFY_TOKEN,
    articles_answered,
    messenger_attachment,
    messenger_delivery,
    messenger_postback,
    messenger_text,
    new_psid,
    post_webhook,
    signature,
    tracker_events,
)

pytestmark = pytest.mark.e2e
RETURNS_PL = "Jak mogę zwrócić zamówiony produkt?"


def is_text(call: Call) -> bool:
    return call.text is not None


# --- pure parts --------------------------------------------------------------------------


def test_signature_must_match_the_raw_body_and_secret() -> None:
    body = b'{"object": "page", "entry": []}'
    good = signature("secret", body)
    assert valid_signature("secret", body, good)
    assert not valid_signature("secret", body + b" ", good)
    assert not valid_signature("other", body, good)
    assert not valid_signature("secret", body, None)
    assert not valid_signature("secret", body, good.replace("sha256=", "sha1="))


def test_long_text_is_split_at_word_boundaries_within_the_limit() -> None:
    text = " ".join(f"słowo{i}" for i in range(700)) + "\n\nKoniec."
    parts = split_text(text, 2000)
    assert len(parts) >= 3 and all(len(p) <= 2000 for p in parts)
    assert " ".join(parts).split() == text.split()  # nothing lost, no word cut
    assert split_text("x" * 4500, 2000) == ["x" * 2000, "x" * 2000, "x" * 500]  # no boundary: hard cut


def test_long_button_titles_are_shortened_and_listed_in_full() -> None:
    assert shorten("How do I return a product I don't like?", 20) == "How do I return a…"
    answer = Answer("Which one?", [Button("How do I return a product I don't like?", "/a"), Button("Refunds", "/b")])
    text, buttons = fit_buttons(answer, 20, 13)
    assert all(len(b.title) <= 20 for b in buttons) and [b.payload for b in buttons] == ["/a", "/b"]
    assert "1. How do I return a product I don't like?" in text and "2. Refunds" in text


# --- webhook -----------------------------------------------------------------------------


async def test_webhook_verification_needs_the_verify_token(stack: Stack, http: aiohttp.ClientSession) -> None:
    url = f"{stack.settings.rasa_url}/webhooks/messenger/webhook"
    query = {"hub.mode": "subscribe", "hub.verify_token": MESSENGER_VERIFY_TOKEN, "hub.challenge": "1158201444"}
    async with http.get(url, params=query) as response:
        assert response.status == 200 and await response.text() == "1158201444"
    async with http.get(url, params={**query, "hub.verify_token": "guess"}) as response:
        assert response.status == 403
    async with http.get(url, params={**query, "hub.mode": "unsubscribe"}) as response:
        assert response.status == 403


async def test_unsigned_or_wrongly_signed_delivery_is_refused_and_not_processed(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    psid = new_psid()
    payload = messenger_delivery([messenger_text(psid, RETURNS_PL)])
    assert (await post_webhook(http, stack, "messenger", payload, signature_header=None))[0] == 403
    forged = signature("not-the-app-secret", b"whatever")
    assert (await post_webhook(http, stack, "messenger", payload, signature_header=forged))[0] == 403
    other_body = signature(MESSENGER_APP_SECRET, b'{"object": "page", "entry": []}')
    assert (await post_webhook(http, stack, "messenger", payload, signature_header=other_body))[0] == 403
    await asyncio.sleep(3)
    assert graph_api.sent_to(psid, successful=False) == []
    assert not [e for e in await tracker_events(http, stack, f"messenger:{psid}") if e["event"] == "user"]


async def test_malformed_signed_delivery_gets_400(stack: Stack, http: aiohttp.ClientSession) -> None:
    assert (await post_webhook(http, stack, "messenger", {"object": "page", "entry": [{"messaging": [{}]}]}))[0] == 400
    assert (await post_webhook(http, stack, "messenger", {"object": "instagram", "entry": []}))[0] == 400


async def test_batch_of_three_events_gets_three_answers_with_typing_first(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    asked = {
        new_psid(): RETURNS_PL,
        new_psid(): "Как отследить мой заказ?",
        new_psid(): "Ce metode de plată acceptați?",
    }
    expected = dict(zip(asked, ["returns-how-to", "order-status-tracking", "payment-methods"], strict=True))
    (a, qa), (b, qb), (c, qc) = asked.items()
    payload = messenger_delivery([messenger_text(a, qa), messenger_text(b, qb)], [messenger_text(c, qc)])
    started = time.monotonic()
    status, _ = await post_webhook(http, stack, "messenger", payload)
    assert status == 200 and time.monotonic() - started < 2  # answered before the bot's turns run
    for psid, article in expected.items():
        calls = await graph_api.wait_for(psid, 1, what=is_text)
        everything = graph_api.sent_to(psid)
        assert everything[0].body == {"recipient": {"id": psid}, "sender_action": "typing_on"}
        assert calls[0].body["messaging_type"] == "RESPONSE"
        assert await articles_answered(http, stack, f"messenger:{psid}", 1) == [article]
    assert graph_api.problems() == []


async def test_redelivered_message_is_answered_once(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    psid = new_psid()
    event = messenger_text(psid, RETURNS_PL)
    first, again = await asyncio.gather(
        post_webhook(http, stack, "messenger", messenger_delivery([event])),
        post_webhook(http, stack, "messenger", messenger_delivery([event])),
    )
    assert first[0] == again[0] == 200 and sorted([first[1]["accepted"], again[1]["accepted"]]) == [0, 1]
    await graph_api.wait_for(psid, 1, what=is_text)
    assert (await post_webhook(http, stack, "messenger", messenger_delivery([event])))[1]["accepted"] == 0
    await asyncio.sleep(3)
    assert len([c for c in graph_api.sent_to(psid) if is_text(c)]) == 1
    assert len([e for e in await tracker_events(http, stack, f"messenger:{psid}") if e["event"] == "user"]) == 1


async def test_deliveries_out_of_order_are_answered_in_the_order_the_customer_wrote(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    psid = new_psid()
    older, newer = messenger_text(psid, RETURNS_PL), messenger_text(psid, "Как отследить мой заказ?")
    older["timestamp"] = newer["timestamp"] - 2000
    # Separate requests on fresh connections (so to either Rasa worker), the newer one first.
    for event in (newer, older):
        async with aiohttp.ClientSession() as fresh:
            assert (await post_webhook(fresh, stack, "messenger", messenger_delivery([event])))[0] == 200
    conversation = f"messenger:{psid}"
    assert await articles_answered(http, stack, conversation, 2) == ["returns-how-to", "order-status-tracking"]
    said = [e["text"] for e in await tracker_events(http, stack, conversation) if e["event"] == "user"]
    assert said == [RETURNS_PL, "Как отследить мой заказ?"]
    # One older still than both, arriving after they were answered: answered too, not dropped.
    late = messenger_text(psid, "Ce metode de plată acceptați?")
    late["timestamp"] = older["timestamp"] - 1000
    assert (await post_webhook(http, stack, "messenger", messenger_delivery([late])))[0] == 200
    assert (await articles_answered(http, stack, conversation, 3))[2] == "payment-methods"


async def test_quick_reply_and_postback_payloads_reach_the_bot(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    psid = new_psid()
    chosen = messenger_text(psid, "How do I return...", quick_reply='/ask_question{"kb_article": "returns-how-to"}')
    await post_webhook(http, stack, "messenger", messenger_delivery([chosen]))
    await graph_api.wait_for(psid, 1, what=is_text)
    postback = messenger_postback(psid, "Payment methods", '/ask_question{"kb_article": "payment-methods"}')
    await post_webhook(http, stack, "messenger", messenger_delivery([postback]))
    await graph_api.wait_for(psid, 2, what=is_text)
    assert await articles_answered(http, stack, f"messenger:{psid}", 2) == [
        "returns-how-to",
        "payment-methods",
    ]


async def test_attachment_gets_a_polite_answer_in_the_customer_language(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    psid = new_psid()
    await post_webhook(http, stack, "messenger", messenger_delivery([messenger_text(psid, RETURNS_PL)]))
    await graph_api.wait_for(psid, 1, what=is_text)
    await post_webhook(http, stack, "messenger", messenger_delivery([messenger_attachment(psid, "image")]))
    calls = await graph_api.wait_for(psid, 2, what=is_text)
    assert calls[1].text == message("unsupported_message", "pl")
    newcomer = new_psid()
    await post_webhook(http, stack, "messenger", messenger_delivery([messenger_attachment(newcomer, "audio")]))
    assert (await graph_api.wait_for(newcomer, 1, what=is_text))[0].text == message("unsupported_message", "en")


async def test_send_api_failures_are_retried_with_backoff_and_retry_after(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    psid = new_psid()
    graph_api.fail_next(2, 500, when=lambda c: c.recipient == psid and is_text(c))
    graph_api.fail_next(1, 429, when=lambda c: c.recipient == psid and is_text(c), retry_after="2")
    await post_webhook(http, stack, "messenger", messenger_delivery([messenger_text(psid, RETURNS_PL)]))
    await graph_api.wait_for(psid, 1, what=is_text)
    attempts = [c for c in graph_api.sent_to(psid, successful=False) if is_text(c)]
    assert [c.status for c in attempts] == [500, 500, 429, 200]
    assert len({c.text for c in attempts}) == 1  # the same message each time
    assert attempts[3].at - attempts[2].at >= 2.0  # Retry-After honoured
    assert attempts[1].at - attempts[0].at >= 0.4  # backoff, not a tight loop


async def test_a_slow_or_failing_send_api_does_not_hold_up_other_customers(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn
) -> None:
    async def answer_time(psid: str) -> float:
        started = time.monotonic()
        delivery = messenger_delivery([messenger_text(psid, RETURNS_PL)])
        assert (await post_webhook(http, stack, "messenger", delivery))[0] == 200
        await graph_api.wait_for(psid, 1, timeout=30, what=is_text)
        return time.monotonic() - started

    usual = await answer_time(new_psid())  # how long an answer takes on this machine right now
    slow, failing = new_psid(), new_psid()
    graph_api.slow_next(3, 10.0, when=lambda c: c.recipient == slow)  # Meta answers this one after 10 s
    graph_api.fail_next(20, 500, when=lambda c: c.recipient == failing)  # and this one never
    for psid in (slow, failing):
        await post_webhook(http, stack, "messenger", messenger_delivery([messenger_text(psid, RETURNS_PL)]))
    await asyncio.sleep(0.5)  # both are waiting on Meta now
    meanwhile = await answer_time(new_psid())
    assert meanwhile < min(usual + 3.0, 9.0), (usual, meanwhile)  # not queued behind the 10 s waits
    await graph_api.wait_for(slow, 1, timeout=40, what=is_text)  # the slow one is answered in the end


# --- agents' replies and Messenger's windows -----------------------------------------------


async def test_agent_reply_follows_messengers_windows(
    stack: Stack, http: aiohttp.ClientSession, graph_api: GraphStandIn, redis_client
) -> None:
    await ensure_account(stack.settings, "anna", "agent", "Anna")
    anna = await AgentClient(http, stack.settings).login("anna")
    psid = new_psid()
    conversation = f"messenger:{psid}"
    await post_webhook(
        http, stack, "messenger", messenger_delivery([messenger_text(psid, "I want to talk to a person")])
    )
    await graph_api.wait_for(psid, 1, what=is_text)
    assert (await anna.post(f"/api/conversations/{conversation}/claim"))[0] == 200

    long_reply = " ".join(["Thank you for waiting, I checked your order and everything is on its way."] * 40)
    status, body = await anna.post(f"/api/conversations/{conversation}/messages", {"text": long_reply})
    assert status == 201 and body == {"status": "sent", "delivered": True, "via": "message"}
    parts = (await graph_api.wait_for(psid, 3, what=is_text))[1:]
    assert len(long_reply) > 2000 and all(len(p.text) <= 2000 for p in parts)
    assert " ".join(p.text for p in parts) == long_reply
    assert {p.body["messaging_type"] for p in parts} == {"RESPONSE"}

    redis_client.set(window_key(stack.settings.redis_prefix, conversation), time.time() - 3 * 24 * 3600)
    status, body = await anna.post(f"/api/conversations/{conversation}/messages", {"text": "Any news on your side?"})
    assert status == 201 and body["via"] == "human_agent_tag"
    tagged = (await graph_api.wait_for(psid, 4, what=is_text))[3]
    assert tagged.text == "Any news on your side?"
    assert tagged.body["messaging_type"] == "MESSAGE_TAG" and tagged.body["tag"] == "HUMAN_AGENT"

    redis_client.set(window_key(stack.settings.redis_prefix, conversation), time.time() - 8 * 24 * 3600)
    status, body = await anna.post(f"/api/conversations/{conversation}/messages", {"text": "Hello again?"})
    assert status == 409 and body["delivered"] is False and "7 days" in body["reason"]
    await asyncio.sleep(2)
    assert len([c for c in graph_api.sent_to(psid) if is_text(c)]) == 4
    texts = [e.get("text") for e in await tracker_events(http, stack, conversation) if e["event"] == "bot"]
    assert "Hello again?" not in texts  # not delivered, not pretended
    assert graph_api.problems() == []
