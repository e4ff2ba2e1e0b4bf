"""WhatsApp Business Cloud API channel: webhook at /webhooks/whatsapp/webhook.

The webhook is verified like Messenger's (X-Hub-Signature-256). Customers' text and
interactive replies (button, list) go to the bot; other message types get a polite
notice; a redelivered `wamid` is handled once; status callbacks (sent, delivered, read,
failed) are recorded on the message we sent. Answers go out as text (split at 4,096
characters), reply buttons (up to 3) or a list (up to 10 rows). Outside the 24-hour
customer service window an agent's reply waits, the configured template is sent
instead, and the reply goes out when the customer answers.
The conversation id is "whatsapp:<wa_id>".

Keys (each starts with "<prefix>:whatsapp:"):
  message:<wamid>             hash: conversation_id, status, <status>_at, error  (30 days)
  pending:<conversation id>   list of agents' replies waiting for the customer to answer (30 days)
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from rasa.core.channels.channel import InputChannel

from bot.channels.graph_api import GraphClient
from bot.channels.meta_config import WhatsAppConfig
from bot.channels.meta_webhook import Inbound, MetaInput, MetaOutput, ref
from bot.channels.rendering import Answer, fit_buttons, shorten, split_text
from bot.messages import message as text_of

logger = logging.getLogger(__name__)
MAX_TEXT_CHARS = 4096
MAX_INTERACTIVE_BODY_CHARS = 1024
MAX_REPLY_BUTTONS, MAX_BUTTON_TITLE_CHARS, MAX_BUTTON_ID_CHARS = 3, 20, 256
MAX_LIST_ROWS, MAX_ROW_TITLE_CHARS, MAX_ROW_DESCRIPTION_CHARS, MAX_ROW_ID_CHARS = 10, 24, 72, 200
MAX_LIST_BUTTON_CHARS = 20
RECORD_TTL_S = 30 * 24 * 3600
STATUS_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


class WhatsAppOutput(MetaOutput):
    @classmethod
    def name(cls) -> str:
        return "whatsapp"

    async def _send(self, conversation_id: str, body: dict[str, Any]) -> None:
        channel = self.channel
        wa_id = conversation_id.split(":", 1)[1]
        full = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id, **body}
        result = await channel.graph.post(f"{channel.config.phone_number_id}/messages", full)
        for sent in result.get("messages") or []:
            key = f"{channel.prefix}:whatsapp:message:{sent['id']}"
            pipe = channel.redis().pipeline()
            pipe.hset(
                key,
                mapping={"conversation_id": conversation_id, "type": body["type"], "accepted_at": f"{time.time():.3f}"},
            )
            pipe.hsetnx(key, "status", "accepted")
            pipe.expire(key, RECORD_TTL_S)
            await pipe.execute()

    async def deliver(self, customer_id: str, conversation_id: str, answer: Answer, via: str) -> None:
        if via == "template":
            await self._hold_for_customer(conversation_id, answer)
            return
        if not answer.buttons:
            for part in split_text(answer.text, MAX_TEXT_CHARS):
                await self._send(conversation_id, {"type": "text", "text": {"preview_url": False, "body": part}})
        elif len(answer.buttons) <= MAX_REPLY_BUTTONS:
            text, buttons = fit_buttons(answer, MAX_BUTTON_TITLE_CHARS, MAX_REPLY_BUTTONS)
            action = {
                "buttons": [
                    {"type": "reply", "reply": {"id": b.payload[:MAX_BUTTON_ID_CHARS], "title": b.title}}
                    for b in buttons
                ]
            }
            await self._interactive(conversation_id, "button", text, action)
        else:
            text, rows = fit_buttons(answer, MAX_ROW_TITLE_CHARS, MAX_LIST_ROWS)
            full_titles = [b.title for b in answer.buttons[:MAX_LIST_ROWS]]
            language = answer.language or await self.channel.customer_language(conversation_id)
            action = {
                "button": shorten(text_of("choose_option", language), MAX_LIST_BUTTON_CHARS),
                "sections": [
                    {
                        "rows": [
                            {
                                "id": row.payload[:MAX_ROW_ID_CHARS],
                                "title": row.title,
                                **(
                                    {"description": shorten(full, MAX_ROW_DESCRIPTION_CHARS)}
                                    if full != row.title
                                    else {}
                                ),
                            }
                            for row, full in zip(rows, full_titles, strict=True)
                        ]
                    }
                ],
            }
            await self._interactive(conversation_id, "list", text, action)
        if answer.image:
            await self._send(conversation_id, {"type": "image", "image": {"link": answer.image}})

    async def _interactive(self, conversation_id: str, kind: str, text: str, action: dict[str, Any]) -> None:
        """Leading text as text messages; the last part (at most 1,024 characters) as the interactive body."""
        parts = split_text(text, MAX_TEXT_CHARS) or ["…"]
        parts = parts[:-1] + split_text(parts[-1], MAX_INTERACTIVE_BODY_CHARS)
        for part in parts[:-1]:
            await self._send(conversation_id, {"type": "text", "text": {"preview_url": False, "body": part}})
        interactive = {"type": kind, "body": {"text": parts[-1]}, "action": action}
        await self._send(conversation_id, {"type": "interactive", "interactive": interactive})

    async def _hold_for_customer(self, conversation_id: str, answer: Answer) -> None:
        """Outside the window: keep the agent's reply and invite the customer back with the template (once)."""
        channel = self.channel
        key = f"{channel.prefix}:whatsapp:pending:{conversation_id}"
        held = {"text": answer.text, "agent": True, "buttons": [b.__dict__ for b in answer.buttons]}
        waiting = await channel.redis().rpush(key, json.dumps(held, ensure_ascii=False))
        await channel.redis().expire(key, RECORD_TTL_S)
        if waiting == 1:
            template = {"name": channel.config.template_name, "language": {"code": channel.config.template_language}}
            await self._send(conversation_id, {"type": "template", "template": template})
        logger.info("agent reply for conversation %s held until the customer answers", ref(conversation_id))

    async def deliver_held(self, conversation_id: str) -> None:
        """The customer wrote again: the agents' held replies go out first, oldest first."""
        redis, key = self.channel.redis(), f"{self.channel.prefix}:whatsapp:pending:{conversation_id}"
        while (held := await redis.lindex(key, 0)) is not None:
            await self.send_response(conversation_id, json.loads(held))
            await redis.lpop(key)  # only once it went out: a failure keeps it for the next message


class WhatsAppInput(MetaInput):
    webhook_object = "whatsapp_business_account"

    @classmethod
    def name(cls) -> str:
        return "whatsapp"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        config = WhatsAppConfig.from_credentials(credentials)
        if config is None:
            logger.info("WhatsApp channel is off (no WHATSAPP_* variables set)")
            return cls(None, None)
        return cls(config, GraphClient(config.graph_api_url, config.access_token))

    def output(self) -> WhatsAppOutput:
        return WhatsAppOutput(self)

    def parse(self, payload: dict[str, Any]) -> tuple[list[Inbound], list[dict[str, Any]]]:
        inbound: list[Inbound] = []
        statuses: list[dict[str, Any]] = []
        for entry in payload["entry"]:
            for change in entry.get("changes") or []:
                if change.get("field") != "messages":
                    continue
                value = change["value"]
                number = str((value.get("metadata") or {}).get("phone_number_id") or "")
                if number != self.config.phone_number_id:
                    logger.warning("WhatsApp webhook: ignored a change for another phone number id")
                    continue
                statuses += value.get("statuses") or []
                for message in value.get("messages") or []:
                    parsed = self._message(message)
                    if parsed:
                        inbound.append(parsed)
        return inbound, statuses

    def _message(self, message: dict[str, Any]) -> Inbound | None:
        conversation_id = f"whatsapp:{message['from']}"
        wamid, kind = str(message["id"]), str(message.get("type") or "unknown")
        sent_at = float(message.get("timestamp") or time.time())
        text: str | None = None
        if kind == "text":
            text = str(message["text"]["body"])
        elif kind == "interactive":
            interactive = message["interactive"]
            reply = interactive.get("button_reply") or interactive.get("list_reply") or {}
            text = reply.get("id") or reply.get("title")
        elif kind == "button":  # a quick-reply button of a template
            text = message["button"].get("payload") or message["button"].get("text")
        elif kind == "reaction":
            return None  # an emoji on one of our messages: nothing to answer
        return Inbound(conversation_id, wamid, sent_at, str(text) if text else None, kind=kind)

    async def record_statuses(self, statuses: list[dict[str, Any]]) -> None:
        redis = self.redis()
        for status in statuses:
            name = str(status["status"])
            key = f"{self.prefix}:whatsapp:message:{status['id']}"
            mapping = {f"{name}_at": str(status.get("timestamp") or int(time.time()))}
            if status.get("errors"):
                mapping["error"] = json.dumps(
                    [{"code": e.get("code"), "title": e.get("title")} for e in status["errors"]], ensure_ascii=False
                )
                logger.warning("WhatsApp message delivery failed: %s", mapping["error"])
            await redis.hset(key, mapping=mapping)
            await redis.expire(key, RECORD_TTL_S)
            # Callbacks can arrive out of order (read before delivered): keep the furthest state.
            seen = [field.removesuffix("_at") for field in await redis.hkeys(key) if field.endswith("_at")]
            furthest = max((s for s in seen if s in STATUS_RANK), key=STATUS_RANK.__getitem__, default=name)
            await redis.hset(key, "status", furthest)

    async def before_turn(self, inbound: Inbound, output: MetaOutput) -> None:
        await output.deliver_held(inbound.conversation_id)  # type: ignore[attr-defined]
