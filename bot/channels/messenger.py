"""Facebook Messenger channel: webhook at /webhooks/messenger/webhook, replies through the Send API.

Compared with Rasa's MessengerBot: the SHA-256 signature is checked in constant time
(403 when missing or wrong), every event of a batched delivery is handled, a
redelivered `mid` once, sending is asynchronous with retries, and an agent's reply
follows Messenger's windows (HUMAN_AGENT tag after 24 hours, nothing after 7 days).
The conversation id is "messenger:<page-scoped id>".
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from rasa.core.channels.channel import InputChannel

from bot.channels.graph_api import GraphApiError, GraphClient
from bot.channels.meta_config import MessengerConfig
from bot.channels.meta_webhook import Inbound, MetaInput, MetaOutput, ref
from bot.channels.rendering import Answer, fit_buttons, split_text

logger = logging.getLogger(__name__)
MAX_TEXT_CHARS = 2000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE_CHARS = 20
MAX_PAYLOAD_CHARS = 1000


class MessengerOutput(MetaOutput):
    @classmethod
    def name(cls) -> str:
        return "messenger"

    async def sender_action(self, psid: str, action: str) -> None:
        """typing_on / typing_off / mark_seen; a failure here must not stop the answer."""
        try:
            await self.channel.graph.post("me/messages", {"recipient": {"id": psid}, "sender_action": action})
        except GraphApiError as exc:
            logger.warning("Messenger sender action %s failed: %s", action, exc)

    async def deliver(self, customer_id: str, conversation_id: str, answer: Answer, via: str) -> None:
        kind: dict[str, Any] = {"messaging_type": "RESPONSE"}
        if via == "human_agent_tag":
            kind = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        text, buttons = fit_buttons(answer, MAX_QUICK_REPLY_TITLE_CHARS, MAX_QUICK_REPLIES)
        parts = split_text(text, MAX_TEXT_CHARS)
        if buttons and not parts:
            parts = split_text("\n".join(b.title for b in answer.buttons), MAX_TEXT_CHARS)
        for number, part in enumerate(parts, 1):
            message: dict[str, Any] = {"text": part}
            if buttons and number == len(parts):
                message["quick_replies"] = [
                    {"content_type": "text", "title": b.title, "payload": b.payload[:MAX_PAYLOAD_CHARS]}
                    for b in buttons
                ]
            await self.channel.graph.post("me/messages", {"recipient": {"id": customer_id}, **kind, "message": message})
        if answer.image:
            image = {"attachment": {"type": "image", "payload": {"url": answer.image, "is_reusable": True}}}
            await self.channel.graph.post("me/messages", {"recipient": {"id": customer_id}, **kind, "message": image})


class MessengerInput(MetaInput):
    webhook_object = "page"

    @classmethod
    def name(cls) -> str:
        return "messenger"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        config = MessengerConfig.from_credentials(credentials)
        if config is None:
            logger.info("Messenger channel is off (no MESSENGER_* variables set)")
            return cls(None, None)
        return cls(config, GraphClient(config.graph_api_url, config.page_access_token))

    def output(self) -> MessengerOutput:
        return MessengerOutput(self)

    def parse(self, payload: dict[str, Any]) -> tuple[list[Inbound], list[dict[str, Any]]]:
        inbound: list[Inbound] = []
        for entry in payload["entry"]:
            for event in entry.get("messaging") or []:
                parsed = self._event(event)
                if parsed:
                    inbound.append(parsed)
        return inbound, []

    def _event(self, event: dict[str, Any]) -> Inbound | None:
        psid = str(event["sender"]["id"])
        conversation_id = f"messenger:{psid}"
        sent_at = float(event.get("timestamp") or time.time() * 1000) / 1000
        if "message" in event:
            message = event["message"]
            if message.get("is_echo"):
                return None  # our own message, echoed back
            mid = str(message["mid"])
            quick_reply = (message.get("quick_reply") or {}).get("payload")
            if quick_reply or message.get("text"):
                return Inbound(conversation_id, mid, sent_at, str(quick_reply or message["text"]))
            attachments = message.get("attachments") or [{}]
            return Inbound(conversation_id, mid, sent_at, None, kind=str(attachments[0].get("type") or "unknown"))
        if "postback" in event:
            postback = event["postback"]
            text = str(postback.get("payload") or postback.get("title") or "")
            # Older postbacks carry no mid: the sender, time and payload identify a redelivery.
            mid = postback.get("mid") or hashlib.sha256(f"{psid}|{sent_at}|{text}".encode()).hexdigest()
            return Inbound(conversation_id, str(mid), sent_at, text, kind="postback") if text else None
        return None  # delivery and read receipts, reactions, opt-ins: nothing to answer

    async def before_turn(self, inbound: Inbound, output: MetaOutput) -> None:
        await output.sender_action(inbound.conversation_id.split(":", 1)[1], "typing_on")  # type: ignore[attr-defined]

    async def after_turn(self, inbound: Inbound, output: MetaOutput) -> None:
        if not output.sent:  # with an agent, the bot stays silent: stop the typing indicator
            logger.debug("no answer for conversation %s; typing off", ref(inbound.conversation_id))
            await output.sender_action(inbound.conversation_id.split(":", 1)[1], "typing_off")  # type: ignore[attr-defined]
