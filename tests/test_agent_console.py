"""The human handoff through the agent API, with the real processes: ownership, live updates, fail open."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.channels.fail_open import TURN_TIMEOUT_S
from bot.stack import Stack
from handoff.app import routes
from tests.agent_client import SPEC, AgentClient, ensure_account
from tests.conftest import ALWAYS_CLOSED
from tests.rest_client import say
from tests.webchat_client import WebChatCustomer

pytestmark = pytest.mark.e2e


@pytest.fixture()
async def anna(stack: Stack, http: aiohttp.ClientSession) -> AgentClient:
    await ensure_account(stack.settings, "anna", "agent", "Anna")
    return await AgentClient(http, stack.settings).login("anna")


@pytest.fixture()
async def bartek(stack: Stack, http: aiohttp.ClientSession) -> AgentClient:
    await ensure_account(stack.settings, "bartek", "agent", "Bartek")
    return await AgentClient(http, stack.settings).login("bartek")


@pytest.fixture()
async def admin(stack: Stack, http: aiohttp.ClientSession) -> AgentClient:
    await ensure_account(stack.settings, "root", "admin", "Supervisor")
    return await AgentClient(http, stack.settings).login("root")


async def tracker_events(http: aiohttp.ClientSession, stack: Stack, sender: str) -> list[dict[str, Any]]:
    url = f"{stack.settings.rasa_url}/conversations/{sender}/tracker"
    async with http.get(url, params={"token": stack.settings.rasa_token}) as response:
        return (await response.json())["events"]


async def next_live(ws: aiohttp.ClientWebSocketResponse, kind: str, about: str, timeout: float = 15) -> dict:
    """The next live update of `kind` about a conversation (or, for notes, an escalation id)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await ws.receive_json(timeout=max(0.1, deadline - time.monotonic()))
        escalation = message.get("escalation") or {}
        matches = message.get("conversation_id") or escalation.get("conversation_id") or message.get("escalation_id")
        if message["type"] == kind and matches == about:
            return message


def test_every_agent_route_is_described_in_openapi() -> None:
    api_routes = [r for r in routes() if isinstance(r, web.RouteDef) and r.path.startswith("/api/")]
    served = {(r.method.lower(), r.path) for r in api_routes}
    described = {(method, path) for path, ops in SPEC["paths"].items() for method in ops}
    assert served == described


async def test_agent_endpoints_need_a_valid_session(stack: Stack, http: aiohttp.ClientSession, anna) -> None:
    stranger = AgentClient(http, stack.settings)
    assert (await stranger.get("/api/conversations"))[0] == 401
    stranger.token = "forged-" + secrets.token_hex(8)
    assert (await stranger.get("/api/conversations"))[0] == 401
    assert (await stranger.post("/api/login", {"username": "anna", "password": "wrong password"}))[0] == 401
    status, me = await anna.get("/api/me")
    assert status == 200 and me["agent"] == {"username": "anna", "display_name": "Anna", "role": "agent"}
    assert (await anna.get("/api/agents"))[0] == 403  # admins only
    await anna.post("/api/logout")
    assert (await anna.get("/api/me"))[0] == 401


async def test_customer_asks_for_a_person_agent_claims_replies_and_hands_back(
    stack: Stack, anna: AgentClient, bartek: AgentClient
) -> None:
    customer = await WebChatCustomer(stack.settings).connect()
    try:
        async with anna.websocket() as live:
            assert (await live.receive_json(timeout=5))["type"] == "hello"
            await customer.say("Gdzie jest moja paczka?")
            assert (await customer.next())["custom"]["kb_article"] == "order-status-tracking"

            await customer.say("chcę rozmawiać z konsultantem")
            handoff = await customer.next()
            assert handoff["custom"]["handoff"]["status"] == "waiting"
            opened = await next_live(live, "escalation", customer.session_id)  # no reload: pushed
            assert opened["change"] == "opened" and opened["escalation"]["reason"] == "customer_request"

            # While paused, the customer's messages go to the agents, live, and the bot stays silent.
            await customer.say("halo, jest tam ktoś?")
            seen = await next_live(live, "event", customer.session_id)
            while seen["text"] != "halo, jest tam ktoś?":  # the escalation's own messages come first
                seen = await next_live(live, "event", customer.session_id)
            assert seen["event"] == "user" and seen["intent"]
            assert await customer.nothing_within(2)

            status, queue = await anna.get("/api/conversations")
            mine = next(c for c in queue["conversations"] if c["escalation"]["conversation_id"] == customer.session_id)
            assert mine["escalation"]["language"] == "pl" and mine["escalation"]["channel"] == "webchat"
            assert "Gdzie jest moja paczka?" in mine["summary"]

            status, view = await anna.get(f"/api/conversations/{customer.session_id}")
            assert status == 200 and view["paused"] is True
            customer_lines = [line for line in view["transcript"] if line["from"] == "customer"]
            assert [line["text"] for line in customer_lines] == [
                "Gdzie jest moja paczka?",
                "chcę rozmawiać z konsultantem",
                "halo, jest tam ktoś?",
            ]
            assert customer_lines[1]["intent"] == "request_human" and customer_lines[1]["confidence"] > 0.5
            assert view["summary"]["wants"] == "Gdzie jest moja paczka?"
            assert view["summary"]["bot_answered"] and view["escalation"]["articles_offered"]

            # One owner: Anna claims; Bartek can neither claim nor reply.
            assert (await anna.post(f"/api/conversations/{customer.session_id}/messages", {"text": "x"}))[0] == 409
            status, claimed = await anna.post(f"/api/conversations/{customer.session_id}/claim")
            assert status == 200 and claimed["escalation"]["owner"] == "anna"
            assert (await bartek.post(f"/api/conversations/{customer.session_id}/claim"))[0] == 409
            assert (await bartek.post(f"/api/conversations/{customer.session_id}/messages", {"text": "x"}))[0] == 403
            assert (await bartek.post(f"/api/conversations/{customer.session_id}/handback"))[0] == 403

            status, _ = await anna.post(f"/api/conversations/{customer.session_id}/notes", {"text": "VIP, 3rd parcel"})
            assert status == 201
            note = await next_live(live, "note", handoff["custom"]["handoff"]["id"])
            assert note["note"]["agent"] == "anna" and note["note"]["text"] == "VIP, 3rd parcel"

            status, _ = await anna.post(
                f"/api/conversations/{customer.session_id}/messages", {"text": "Dzień dobry, tu Anna. Sprawdzam."}
            )
            assert status == 201
            reply = await customer.next(10)
            assert reply["text"] == "Dzień dobry, tu Anna. Sprawdzam."
            assert reply["custom"]["agent"]["name"] == "Anna"

            status, view = await anna.get(f"/api/conversations/{customer.session_id}")
            assert [n["text"] for n in view["notes"]] == ["VIP, 3rd parcel"]
            assert view["transcript"][-1] == {**view["transcript"][-1], "from": "agent", "agent": "Anna"}

            status, closed = await anna.post(f"/api/conversations/{customer.session_id}/handback")
            assert status == 200 and closed["status"] == "returned_to_bot"
            assert (await customer.next(10))["text"].startswith("Znowu rozmawiasz z asystentem")

        await customer.say("Jak mogę zwrócić produkt?")
        assert (await customer.next()).get("custom", {}).get("kb_article") == "returns-how-to"
        status, queue = await anna.get("/api/conversations")
        assert customer.session_id not in [c["escalation"]["conversation_id"] for c in queue["conversations"]]
    finally:
        await customer.disconnect()


async def test_admin_reassigns_and_resolves(stack: Stack, anna: AgentClient, bartek: AgentClient, admin) -> None:
    customer = await WebChatCustomer(stack.settings).connect()
    try:
        await customer.say("I want to speak to a human")
        assert (await customer.next())["custom"]["handoff"]["status"] == "waiting"
        path = f"/api/conversations/{customer.session_id}"
        assert (await anna.post(path + "/claim"))[0] == 200
        assert (await anna.post(path + "/claim", {"agent": "bartek"}))[0] == 403  # only admins assign
        status, moved = await admin.post(path + "/claim", {"agent": "bartek"})
        assert status == 200 and moved["escalation"]["owner"] == "bartek"
        assert (await anna.post(path + "/messages", {"text": "still me?"}))[0] == 403
        assert (await bartek.post(path + "/messages", {"text": "Hi, Bartek here."}))[0] == 201
        assert (await customer.next(10))["text"] == "Hi, Bartek here."
        status, closed = await bartek.post(path + "/resolve")
        assert status == 200 and closed["status"] == "resolved"
        assert "closed this conversation" in (await customer.next(10))["text"]
        assert (await bartek.post(path + "/resolve"))[0] == 409  # already closed
        status, view = await admin.get(path)
        assert view["escalation"]["status"] == "resolved" and view["escalation"]["closed_by"] == "bartek"
    finally:
        await customer.disconnect()


async def test_after_hours_ticket_is_answered_later_on_the_original_channel(
    stack: Stack, http: aiohttp.ClientSession, anna: AgentClient, business_hours
) -> None:
    business_hours.write_text(ALWAYS_CLOSED)
    customer = await WebChatCustomer(stack.settings).connect()
    try:
        await customer.say("Chcę rozmawiać z konsultantem")
        offline = await customer.next()
        assert offline["custom"]["handoff"]["status"] == "offline" and "next_open" in offline["custom"]["handoff"]
        assert "e-mail" in (await customer.next())["text"]
        await customer.say("anna.nowak@example.com")
        assert (await customer.next())["text"]
    finally:
        await customer.disconnect()  # the customer leaves for the night

    status, view = await anna.get(f"/api/conversations/{customer.session_id}")
    assert view["escalation"]["after_hours"] is True and view["escalation"]["contact"] == "anna.nowak@example.com"
    assert (await anna.post(f"/api/conversations/{customer.session_id}/claim"))[0] == 200
    text = "Dzień dobry, odpowiadam na Pani pytanie z wczoraj."
    assert (await anna.post(f"/api/conversations/{customer.session_id}/messages", {"text": text}))[0] == 201

    # The next morning the page reconnects with its signed session and shows the reply.
    params = {"session_id": customer.session_id, "token": customer.token}
    base = f"http://{stack.settings.host}:{stack.settings.agent_service_port}"
    async with http.get(base + "/webchat/history", params=params) as response:
        history = (await response.json())["messages"]
    assert history[-1] == {**history[-1], "from": "agent", "text": text, "agent": "Anna"}
    async with http.get(base + "/webchat/history", params={**params, "token": "0" * 64}) as response:
        assert response.status == 403  # knowing the id is not enough
    await anna.post(f"/api/conversations/{customer.session_id}/resolve")


async def test_messages_sent_during_a_hand_back_are_neither_lost_nor_answered_twice(
    stack: Stack, http: aiohttp.ClientSession, anna: AgentClient
) -> None:
    sender = "rest:race-" + secrets.token_hex(6)
    assert (await say(http, stack, sender, "I want to talk to a person"))[0]["custom"]["handoff"]
    await anna.post(f"/api/conversations/{sender}/claim")
    questions = [
        "How do I return a product?",
        "How long does delivery take?",
        "Which payment methods do you accept?",
        "How do I reset my password?",
        "Where is my parcel?",
        "Can I cancel my order?",
    ]

    async def customer() -> None:
        for question in questions:
            await say(http, stack, sender, question)
            await asyncio.sleep(0.05)

    handback = asyncio.create_task(anna.post(f"/api/conversations/{sender}/handback"))
    await asyncio.gather(customer(), handback)
    assert handback.result()[0] == 200

    events = [e for e in await tracker_events(http, stack, sender) if e["event"] in ("user", "bot", "resume")]
    said = [e["text"] for e in events if e["event"] == "user"]
    assert said == ["I want to talk to a person", *questions]  # each once, in order
    resume_at = next(i for i, e in enumerate(events) if e["event"] == "resume")
    for index, event in enumerate(events):
        if event["event"] != "user" or index == 0:
            continue
        following = []
        for later in events[index + 1 :]:
            if later["event"] == "user":
                break
            following.append(later)
        answers = [e for e in following if "kb_article" in ((e.get("data") or {}).get("custom") or {})]
        if index > resume_at:
            assert len(answers) == 1, (event["text"], following)  # the bot answered, once
        elif not any(e["event"] == "resume" for e in following):
            assert answers == [], event["text"]  # with the agent: the bot kept quiet
        else:
            assert len(answers) <= 1  # the last question before the hand-back: the bot answers it then


async def test_messages_sent_while_the_bot_pauses_are_neither_lost_nor_answered_by_the_bot(
    stack: Stack, http: aiohttp.ClientSession, anna: AgentClient
) -> None:
    sender = "rest:pause-race-" + secrets.token_hex(6)
    request = "Chcę rozmawiać z konsultantem"
    questions = ["Jak mogę zwrócić produkt?", "Ile kosztuje dostawa?", "Jak zresetować hasło?", "Gdzie jest paczka?"]

    async def later(delay: float, text: str) -> None:
        await asyncio.sleep(delay)
        await say(http, stack, sender, text)

    # The request for a person and the questions arrive together: Rasa's lock orders them.
    await asyncio.gather(later(0, request), *(later(0.02 * (i + 1), q) for i, q in enumerate(questions)))

    events = [e for e in await tracker_events(http, stack, sender) if e["event"] in ("user", "bot", "pause")]
    said = [e["text"] for e in events if e["event"] == "user"]
    assert sorted(said) == sorted([request, *questions])  # every message once
    paused_at = next(i for i, e in enumerate(events) if e["event"] == "pause")
    for index, event in enumerate(events):
        if event["event"] != "user":
            continue
        following = []
        for after in events[index + 1 :]:
            if after["event"] == "user":
                break
            following.append(after)
        replies = [e for e in following if e["event"] == "bot"]
        if index > paused_at:
            assert replies == [], event["text"]  # the agent's now: the bot keeps quiet
        else:
            assert replies, event["text"]  # before the pause: the bot answered it
    status, view = await anna.get(f"/api/conversations/{sender}")
    assert status == 200
    shown = [line["text"] for line in view["transcript"] if line["from"] == "customer"]
    assert shown == said  # the agent sees everything, including what came during the pause


async def test_bot_failure_fails_open_to_the_queue_and_recovers(
    stack: Stack, http: aiohttp.ClientSession, anna: AgentClient
) -> None:
    sender = "rest:fail-" + secrets.token_hex(6)
    assert (await say(http, stack, sender, "Cześć, mam pytanie"))[0]["text"]
    stack.stop("actions")
    try:
        messages = await say(http, stack, sender, "Jak mogę zwrócić produkt?")
        assert messages[-1]["custom"]["handoff"]["reason"] == "bot_failure"
        assert messages[-1]["text"].startswith("Przepraszam, mam teraz problem techniczny")
        status, view = await anna.get(f"/api/conversations/{sender}")
        assert view["escalation"]["reason"] == "bot_failure" and view["paused"] is True
        assert view["transcript"][-2]["text"] == "Jak mogę zwrócić produkt?"  # the failed message is kept
    finally:
        stack.start(("actions",))
    await anna.post(f"/api/conversations/{sender}/claim")
    assert (await anna.post(f"/api/conversations/{sender}/handback"))[0] == 200
    # The hand-back answered the question that failed; the same one again would count as a repeat.
    answer = await say(http, stack, sender, "Jakie metody płatności akceptujecie?")
    assert answer[-1]["custom"].get("kb_article") == "payment-methods", answer


async def test_a_hung_action_server_times_out_to_the_queue(
    stack: Stack, http: aiohttp.ClientSession, anna: AgentClient
) -> None:
    sender = "rest:hung-" + secrets.token_hex(6)
    assert (await say(http, stack, sender, "Cześć, mam pytanie"))[0]["text"]
    actions = stack.processes["actions"].pid
    os.kill(actions, signal.SIGSTOP)  # alive and accepting connections, but never answering
    try:
        started = time.monotonic()
        messages = await say(http, stack, sender, "Jak mogę zwrócić produkt?")
        waited = time.monotonic() - started
        assert messages[-1]["custom"]["handoff"]["reason"] == "bot_failure"
        assert messages[-1]["text"].startswith("Przepraszam, mam teraz problem techniczny")
        assert waited < TURN_TIMEOUT_S + 10  # told within the turn's time limit, not left waiting
        status, view = await anna.get(f"/api/conversations/{sender}")
        assert view["escalation"]["reason"] == "bot_failure" and view["paused"] is True
    finally:
        os.kill(actions, signal.SIGCONT)
