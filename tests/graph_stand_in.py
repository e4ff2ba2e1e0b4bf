"""Meta's Graph API stand-in on loopback: records and checks every request our channels send.

It runs in its own thread and event loop for the whole test session (the Rasa server
sends to it from another process). Each request is checked against the documented
Send API / Cloud API shapes and limits: the path, the bearer token, the body. A request
that breaks a rule gets Meta-style 400 and the problem is recorded, so tests assert
`problems == []`. Tests can make the next matching requests fail (500, 429 + Retry-After)
or answer slowly.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

VERSION = "v21.0"
MESSENGER_TOKEN = "test-page-access-token"
WHATSAPP_TOKEN = "test-whatsapp-access-token"
PHONE_NUMBER_ID = "106540352242922"
TEMPLATE_NAME, TEMPLATE_LANGUAGE = "support_reply_waiting", "en_US"


@dataclass
class Call:
    channel: str  # "messenger" or "whatsapp"
    recipient: str  # PSID or wa_id
    body: dict[str, Any]
    status: int
    at: float
    problems: list[str] = field(default_factory=list)
    message_id: str | None = None  # what we answered (a mid or wamid)

    @property
    def text(self) -> str | None:
        """The text a customer sees: Messenger text, WhatsApp text or interactive body."""
        if self.channel == "messenger":
            return (self.body.get("message") or {}).get("text")
        kind = self.body.get("type")
        if kind == "text":
            return self.body["text"]["body"]
        if kind == "interactive":
            return self.body["interactive"]["body"]["text"]
        return None


def _length(problems: list[str], what: str, value: Any, limit: int, minimum: int = 1) -> None:
    if not isinstance(value, str) or not minimum <= len(value) <= limit:
        problems.append(f"{what} must be a string of {minimum}-{limit} chars, got {value!r:.80}")


def messenger_problems(body: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if not isinstance((body.get("recipient") or {}).get("id"), str):
        problems.append("recipient.id missing")
    if "sender_action" in body:
        if body["sender_action"] not in ("typing_on", "typing_off", "mark_seen") or "message" in body:
            problems.append(f"bad sender_action request {body}")
        return problems
    kind = body.get("messaging_type")
    if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        problems.append(f"messaging_type {kind!r}")
    if (kind == "MESSAGE_TAG") != ("tag" in body) or body.get("tag", "HUMAN_AGENT") != "HUMAN_AGENT":
        problems.append(f"tag {body.get('tag')!r} with messaging_type {kind!r}")
    message = body.get("message") or {}
    if "text" in message:
        _length(problems, "message.text", message["text"], 2000)
    elif "attachment" not in message:
        problems.append("message has neither text nor attachment")
    replies = message.get("quick_replies")
    if replies is not None:
        if not 1 <= len(replies) <= 13:
            problems.append(f"{len(replies)} quick replies (1-13)")
        for reply in replies:
            if reply.get("content_type") != "text":
                problems.append("quick reply content_type must be text")
            _length(problems, "quick reply title", reply.get("title"), 20)
            _length(problems, "quick reply payload", reply.get("payload"), 1000)
    return problems


def whatsapp_problems(body: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if body.get("messaging_product") != "whatsapp" or body.get("recipient_type") != "individual":
        problems.append("messaging_product/recipient_type")
    if not str(body.get("to", "")).isdigit():
        problems.append(f"'to' is not a wa_id: {body.get('to')!r}")
    kind = body.get("type")
    if kind == "text":
        _length(problems, "text.body", (body.get("text") or {}).get("body"), 4096)
    elif kind == "template":
        template = body.get("template") or {}
        if template.get("name") != TEMPLATE_NAME or (template.get("language") or {}).get("code") != TEMPLATE_LANGUAGE:
            problems.append(f"unknown template {template}")
    elif kind == "image":
        if not (body.get("image") or {}).get("link"):
            problems.append("image.link missing")
    elif kind == "interactive":
        interactive = body.get("interactive") or {}
        _length(problems, "interactive.body.text", (interactive.get("body") or {}).get("text"), 1024)
        action = interactive.get("action") or {}
        if interactive.get("type") == "button":
            buttons = action.get("buttons") or []
            if not 1 <= len(buttons) <= 3:
                problems.append(f"{len(buttons)} reply buttons (1-3)")
            for button in buttons:
                _length(problems, "button id", (button.get("reply") or {}).get("id"), 256)
                _length(problems, "button title", (button.get("reply") or {}).get("title"), 20)
            titles = [(b.get("reply") or {}).get("title") for b in buttons]
            if len(set(titles)) != len(titles):
                problems.append("button titles must be unique")
        elif interactive.get("type") == "list":
            _length(problems, "list button", action.get("button"), 20)
            rows = [row for section in action.get("sections") or [] for row in section.get("rows") or []]
            if not 1 <= len(rows) <= 10:
                problems.append(f"{len(rows)} list rows (1-10)")
            for row in rows:
                _length(problems, "row id", row.get("id"), 200)
                _length(problems, "row title", row.get("title"), 24)
                if "description" in row:
                    _length(problems, "row description", row["description"], 72)
        else:
            problems.append(f"interactive type {interactive.get('type')!r}")
    else:
        problems.append(f"message type {kind!r}")
    return problems


class GraphStandIn:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._failures: list[tuple[Callable[[Call], bool], int, str | None]] = []
        self._delays: list[tuple[Callable[[Call], bool], float]] = []
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{VERSION}"

    def start(self) -> GraphStandIn:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post(f"/{VERSION}/me/messages", self._messenger)
        app.router.add_post(f"/{VERSION}/{{phone_number_id}}/messages", self._whatsapp)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def fail_next(self, times: int, status: int, when: Callable[[Call], bool], retry_after: str | None = None) -> None:
        """Answer the next `times` requests that match `when` with `status` (and Retry-After)."""
        with self._lock:
            self._failures.extend([(when, status, retry_after)] * times)

    def slow_next(self, times: int, seconds: float, when: Callable[[Call], bool]) -> None:
        """Answer the next `times` requests that match `when` only after `seconds` (a slow Meta)."""
        with self._lock:
            self._delays.extend([(when, seconds)] * times)

    def sent_to(self, recipient: str, successful: bool = True) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.recipient == recipient and (c.status == 200 or not successful)]

    def problems(self) -> list[str]:
        with self._lock:
            return [p for c in self.calls for p in c.problems]

    async def wait_for(
        self, recipient: str, count: int, timeout: float = 60, what: Callable[[Call], bool] = lambda c: True
    ) -> list[Call]:
        """The first `count` successful calls to `recipient` that match `what`, waiting for them."""
        deadline = time.monotonic() + timeout
        while True:
            calls = [c for c in self.sent_to(recipient) if what(c)]
            if len(calls) >= count or time.monotonic() > deadline:
                assert len(calls) >= count, f"{len(calls)} of {count} calls to {recipient} within {timeout} s: {calls}"
                return calls
            await asyncio.sleep(0.1)

    async def _record(self, request: web.Request, channel: str, token: str) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        recipient = str((body.get("recipient") or {}).get("id") if channel == "messenger" else body.get("to"))
        call = Call(channel, recipient, body, 200, time.time())
        if request.headers.get("Authorization") != f"Bearer {token}":
            call.problems.append("missing or wrong bearer token")
        if request.query.get("access_token"):
            call.problems.append("token in the URL")
        if channel == "whatsapp" and request.match_info["phone_number_id"] != PHONE_NUMBER_ID:
            call.problems.append(f"wrong phone number id {request.match_info['phone_number_id']}")
        call.problems += messenger_problems(body) if channel == "messenger" else whatsapp_problems(body)
        headers: dict[str, str] = {}
        with self._lock:
            delay = next((d for d in self._delays if d[0](call)), None)
            if delay:
                self._delays.remove(delay)
        if delay:
            await asyncio.sleep(delay[1])
        with self._lock:
            failure = next((f for f in self._failures if f[0](call)), None)
            if failure and not call.problems:
                self._failures.remove(failure)
                call.status = failure[1]
                if failure[2] is not None:
                    headers["Retry-After"] = failure[2]
            elif call.problems:
                call.status = 400
            else:
                number = next(self._ids)
                call.message_id = f"m_test{number}" if channel == "messenger" else f"wamid.TEST{number:08d}"
            self.calls.append(call)
        if call.status != 200:
            error = {"message": "; ".join(call.problems) or "stand-in failure", "code": 100 if call.problems else 2}
            return web.json_response({"error": error}, status=call.status, headers=headers)
        if channel == "messenger":
            return web.json_response({"recipient_id": recipient, "message_id": call.message_id})
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": recipient, "wa_id": recipient}],
                "messages": [{"id": call.message_id}],
            }
        )

    async def _messenger(self, request: web.Request) -> web.Response:
        return await self._record(request, "messenger", MESSENGER_TOKEN)

    async def _whatsapp(self, request: web.Request) -> web.Response:
        return await self._record(request, "whatsapp", WHATSAPP_TOKEN)
