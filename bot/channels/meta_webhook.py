"""What the Messenger and WhatsApp webhooks share.

- GET verification (hub.mode, hub.verify_token, hub.challenge);
- POST: the X-Hub-Signature-256 HMAC of the raw body is checked (constant time) before
  anything is parsed; a missing or wrong one gets 403 and nothing happens;
- every event of a batch is handled; a redelivered message id is handled once, across
  Rasa processes (Redis SET NX with a TTL);
- the webhook answers at once (Meta retries slow webhooks) and the bot's turns run in
  the background, one at a time per customer in the order the customer sent them, even
  when Meta's deliveries arrive out of order or at different Rasa processes
  (bot/channels/inbox.py);
- a Redis failure answers 503, so Meta delivers again and nothing is lost.

Keys: see bot/channels/inbox.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.events import BotUttered
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.delivery_window import decide, last_customer_message, record_customer_message
from bot.channels.fail_open import handle_message
from bot.channels.graph_api import GraphClient
from bot.channels.inbox import Inbound, Inbox, ref
from bot.channels.messages import MAX_TEXT_CHARS, clean_text
from bot.channels.rendering import Answer
from bot.escalations import connect
from bot.messages import message as text_of
from bot.settings import LANGUAGES, Settings

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024  # Meta's deliveries are a few kB; a batch of many stays far below


class UndeliverableError(RuntimeError):
    """A person's message that Meta's rules no longer allow to reach the customer."""


def valid_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


class MetaOutput(OutputChannel):
    """Sends one Answer per bot turn, respecting the customer's messaging window."""

    def __init__(self, channel: MetaInput) -> None:
        self.channel = channel
        self.sent = 0

    @classmethod
    def name(cls) -> str:
        raise NotImplementedError

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        answer = Answer.from_message(message)
        last = await last_customer_message(self.channel.redis(), self.channel.prefix, recipient_id)
        delivery = decide(recipient_id, last, time.time(), answer.from_agent)
        if not delivery.allowed:
            if answer.from_agent:
                raise UndeliverableError(delivery.reason)
            logger.warning("bot message to conversation %s not sent: %s", ref(recipient_id), delivery.reason)
            return
        await self.deliver(recipient_id.split(":", 1)[1], recipient_id, answer, delivery.via or "message")
        self.sent += 1

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})

    async def deliver(self, customer_id: str, conversation_id: str, answer: Answer, via: str) -> None:
        raise NotImplementedError


class MetaInput(InputChannel):
    """A Meta webhook; subclasses parse their payloads and render answers."""

    webhook_object = ""  # the "object" field of this channel's deliveries

    def __init__(self, config: Any, graph: GraphClient | None, settings: Settings | None = None) -> None:
        self.config = config  # None: the channel is off
        self.graph = graph
        settings = settings or Settings.from_env()
        self.redis_url, self.prefix = settings.redis_url, settings.redis_prefix
        self._redis: Redis | None = None
        self.inbox = Inbox(self.redis, self.prefix, self.name())

    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = connect(self.redis_url)
        return self._redis

    # --- what a channel defines ---------------------------------------------------

    def parse(self, payload: dict[str, Any]) -> tuple[list[Inbound], list[dict[str, Any]]]:
        """Customer messages and delivery statuses of one delivery; ValueError when malformed."""
        raise NotImplementedError

    def output(self) -> MetaOutput:
        raise NotImplementedError

    async def record_statuses(self, statuses: list[dict[str, Any]]) -> None:
        return None

    async def before_turn(self, inbound: Inbound, output: MetaOutput) -> None:
        return None

    async def after_turn(self, inbound: Inbound, output: MetaOutput) -> None:
        return None

    # --- shared -------------------------------------------------------------------

    def get_output_channel(self) -> OutputChannel | None:
        # Used for messages outside a customer's turn: agents' replies, hand-back notices.
        return self.output() if self.config else None

    async def customer_language(self, conversation_id: str) -> str:
        tracker = await Sanic.get_app().ctx.agent.tracker_store.retrieve(conversation_id)
        language = tracker.get_slot("language") if tracker else None
        return language if language in LANGUAGES else "en"

    async def reply_unsupported(self, inbound: Inbound, output: MetaOutput) -> None:
        """Say politely, in the customer's language, what we can read; keep the notice in the transcript."""
        agent = Sanic.get_app().ctx.agent
        async with agent.lock_store.lock(inbound.conversation_id):
            tracker = await agent.tracker_store.get_or_create_tracker(inbound.conversation_id)
            language = tracker.get_slot("language")
            text = text_of("unsupported_message", language if language in LANGUAGES else "en")
            tracker.update(BotUttered(text, data={"custom": {"unsupported_message": inbound.kind}}))
            await agent.tracker_store.save(tracker)
        await output.send_response(inbound.conversation_id, {"text": text})

    async def process(self, inbound: Inbound, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        output = self.output()
        await self.before_turn(inbound, output)
        text = clean_text(inbound.text[:MAX_TEXT_CHARS]) if inbound.text is not None else None
        if text is None:
            logger.info("conversation %s sent an unsupported %s message", ref(inbound.conversation_id), inbound.kind)
            await self.reply_unsupported(inbound, output)
        elif not text:
            logger.info("conversation %s sent a message with no text; nothing to answer", ref(inbound.conversation_id))
        else:
            message = UserMessage(
                text,  # cut at MAX_TEXT_CHARS, longer than any channel allows: the bot reads the start
                output,
                inbound.conversation_id,
                input_channel=self.name(),
                message_id=inbound.message_id,
                metadata=inbound.metadata or None,
            )
            await handle_message(on_new_message, message)
        await self.after_turn(inbound, output)

    async def accept(self, payload: dict[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> int:
        """Record and queue a verified delivery; the number of new customer messages."""
        inbound, statuses = self.parse(payload)
        await self.record_statuses(statuses)
        accepted = 0
        for event in inbound:
            await record_customer_message(self.redis(), self.prefix, event.conversation_id, event.timestamp)
            if not await self.inbox.put_once(event):
                logger.info("ignored a redelivered message of conversation %s", ref(event.conversation_id))
                continue
            accepted += 1
        for conversation_id in dict.fromkeys(event.conversation_id for event in inbound):
            self.inbox.wake(conversation_id, lambda e: self.process(e, on_new_message))
        return accepted

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        name = self.name()
        webhook = Blueprint(f"{name}_webhook", __name__)

        @webhook.listener("after_server_start")
        async def resume(*_: Any) -> None:
            if self.config is None:
                return
            try:
                found = await self.inbox.wake_left_over(lambda e: self.process(e, on_new_message))
            except RedisError:
                logger.warning("%s webhook: Redis unavailable at start; left-over messages wait", name)
                return
            if found:
                logger.info("%s webhook: resuming %d conversation(s) with messages not yet handled", name, found)

        @webhook.listener("before_server_stop")
        async def finish(*_: Any) -> None:
            await self.inbox.drain(timeout_s=25)
            if self.graph:
                await self.graph.close()

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.config else "off"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            if self.config is None:
                return response.json({"error": f"the {name} channel is not configured"}, status=404)
            token = request.args.get("hub.verify_token") or ""
            if request.args.get("hub.mode") == "subscribe" and hmac.compare_digest(
                token.encode(), self.config.verify_token.encode()
            ):
                return response.text(request.args.get("hub.challenge") or "")
            logger.warning("%s webhook verification refused: wrong mode or verify token", name)
            return response.json({"error": "verification failed"}, status=403)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self.config is None:
                return response.json({"error": f"the {name} channel is not configured"}, status=404)
            body = request.body or b""
            if len(body) > MAX_BODY_BYTES:
                return response.json({"error": f"deliveries are at most {MAX_BODY_BYTES} bytes"}, status=413)
            if not valid_signature(self.config.app_secret, body, request.headers.get("X-Hub-Signature-256")):
                logger.warning("%s webhook: refused a delivery with a missing or wrong signature", name)
                return response.json({"error": "missing or invalid X-Hub-Signature-256"}, status=403)
            try:
                payload = json.loads(body)
                if not isinstance(payload, dict) or payload.get("object") != self.webhook_object:
                    raise ValueError(f"'object' is not {self.webhook_object!r}")
                accepted = await self.accept(payload, on_new_message)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                logger.warning("%s webhook: malformed delivery (%s)", name, type(exc).__name__)
                return response.json({"error": f"malformed delivery: {exc}"}, status=400)
            except RedisError:
                logger.exception("%s webhook: Redis failed; Meta will deliver again", name)
                return response.json({"error": "temporarily unavailable"}, status=503)
            return response.json({"status": "EVENT_RECEIVED", "accepted": accepted})

        return webhook
