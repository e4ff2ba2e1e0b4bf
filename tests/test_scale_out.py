"""Two Rasa servers and two action servers sharing one Redis serve the same conversations."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from bot.stack import Stack, on_free_ports
from tests.agent_client import AgentClient, ensure_account
from tests.rest_client import say
from tests.webchat_client import WebChatCustomer

pytestmark = pytest.mark.e2e
QUESTIONS = [
    ("How do I return a product?", "returns-how-to"),
    ("Jak zresetować hasło?", "password-reset"),
    ("Ce metode de plată acceptați?", "payment-methods"),
    ("Как отследить мой заказ?", "order-status-tracking"),
    ("How long does a refund take?", None),
    ("Czy mogę anulować zamówienie?", None),
]


@pytest.fixture(scope="module")
def second(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Another Rasa server and action server on the first one's Redis (same key prefix)."""
    settings = on_free_ports(stack.settings)
    running = Stack(settings, stack.model, tmp_path_factory.mktemp("second"), env=stack.env)
    try:
        running.start(("actions", "rasa"))
        yield running
    finally:
        running.stop()


async def turns(http: aiohttp.ClientSession, stack: Stack, conversation_id: str) -> list[dict[str, Any]]:
    url = f"{stack.settings.rasa_url}/conversations/{conversation_id}/tracker"
    async with http.get(url, params={"token": stack.settings.rasa_token}) as response:
        return [e for e in (await response.json())["events"] if e["event"] in ("user", "bot")]


async def test_alternating_servers_keep_one_conversation_in_order(
    stack: Stack, second: Stack, http: aiohttp.ClientSession
) -> None:
    sender = "lb-" + secrets.token_hex(5)
    for index, (question, article) in enumerate(QUESTIONS[:4]):
        server = (stack, second)[index % 2]
        answer = [m for m in await say(http, server, sender, question) if "kb_article" in m.get("custom", {})]
        assert answer and answer[0]["custom"]["kb_article"] == article
    said = [e["text"] for e in await turns(http, stack, f"rest:{sender}") if e["event"] == "user"]
    assert said == [q for q, _ in QUESTIONS[:4]]


async def test_concurrent_messages_on_both_servers_are_each_answered_once(
    stack: Stack, second: Stack, http: aiohttp.ClientSession
) -> None:
    sender = "burst-" + secrets.token_hex(5)
    await asyncio.gather(*(say(http, (stack, second)[i % 2], sender, q) for i, (q, _) in enumerate(QUESTIONS)))
    events = await turns(http, stack, f"rest:{sender}")
    said = [e["text"] for e in events if e["event"] == "user"]
    assert sorted(said) == sorted(q for q, _ in QUESTIONS)  # none lost, none twice
    # The lock store lets one server at a time work on the conversation: every question is
    # followed by its own answer before the next question is read.
    for index, event in enumerate(events):
        if event["event"] == "user":
            following = events[index + 1] if index + 1 < len(events) else None
            assert following is not None and following["event"] == "bot", event["text"]


async def test_one_address_with_two_workers_keeps_a_conversation_in_order(stack: Stack) -> None:
    """The same burst at one Rasa address with several workers: each message on its own connection
    (whichever worker accepts it), each answered once, one at a time (Redis lock store)."""
    assert stack.settings.rasa_workers > 1
    sender = "workers-" + secrets.token_hex(5)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        await asyncio.gather(*(say(fresh, stack, sender, q) for q, _ in QUESTIONS))
        events = await turns(fresh, stack, f"rest:{sender}")
    said = [e["text"] for e in events if e["event"] == "user"]
    assert sorted(said) == sorted(q for q, _ in QUESTIONS)
    for index, event in enumerate(events):
        if event["event"] == "user":
            assert index + 1 < len(events) and events[index + 1]["event"] == "bot", event["text"]


@pytest.mark.parametrize("customer_on", ["first", "second"])
async def test_agent_reply_reaches_a_web_chat_customer_on_either_server(
    stack: Stack, second: Stack, http: aiohttp.ClientSession, customer_on: str
) -> None:
    # The agent service talks to the first server's API; the customer's socket is on either
    # server (on the second, the reply crosses over through socket.io's Redis manager).
    server = stack if customer_on == "first" else second
    customer = await WebChatCustomer(server.settings).connect()
    try:
        await customer.say("Chcę rozmawiać z konsultantem")
        assert (await customer.next())["custom"]["handoff"]["status"] == "waiting"
        await ensure_account(stack.settings, "anna", "agent", "Anna")
        anna = await AgentClient(http, stack.settings).login("anna")
        path = f"/api/conversations/{customer.session_id}"
        assert (await anna.post(path + "/claim"))[0] == 200
        assert (await anna.post(path + "/messages", {"text": "Dzień dobry, tu Anna."}))[0] == 201
        assert (await customer.next(10))["text"] == "Dzień dobry, tu Anna."
        assert (await anna.post(path + "/handback"))[0] == 200
        assert (await customer.next(10))["text"].startswith("Znowu rozmawiasz z asystentem")
    finally:
        await customer.disconnect()


async def test_bot_messages_reach_a_web_chat_customer_from_every_worker_of_one_server(stack: Stack) -> None:
    """One Rasa server runs several Sanic workers (SUPPORTBOT_RASA_WORKERS); each new connection
    to it is taken by whichever worker accepts first. Messages sent for the customer through many
    fresh connections are served by every worker, and each must reach the customer's socket."""
    assert stack.settings.rasa_workers > 1
    customer = await WebChatCustomer(stack.settings).connect()
    url = f"{stack.settings.rasa_url}/conversations/{customer.session_id}/tracker/events"
    params = {"output_channel": "latest", "execute_side_effects": "true", "token": stack.settings.rasa_token}
    try:
        await customer.say("Cześć")
        await customer.next()
        texts = [f"Wiadomość {i} od konsultanta" for i in range(12)]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
            for text in texts:  # a new connection for each (force_close)
                async with fresh.post(url, params=params, json=[{"event": "bot", "text": text}]) as response:
                    assert response.status == 200
        received = [(await customer.next(10))["text"] for _ in texts]
        # Each once. Not necessarily in order: a worker delivers to its own sockets at once and to
        # the other's through Redis, so two messages sent a few milliseconds apart can cross.
        assert sorted(received) == sorted(texts)
        assert await customer.nothing_within(1)
    finally:
        await customer.disconnect()
