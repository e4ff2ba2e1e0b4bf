"""Live updates: the Redis event stream fanned out to agents' consoles and customers' pages.

Writers append to `<prefix>:events`: the escalation store (queue changes, notes), Rasa's
event broker (messages, pause, resume) and this module (typing). One reader task per
agent-service process follows the stream, so several agent services can run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from bot.escalations import STREAM_MAXLEN, Escalation, EscalationStore

logger = logging.getLogger(__name__)
SHOWN_EVENTS = {"user", "bot", "pause", "resume"}


def slim_event(event: dict[str, Any]) -> dict[str, Any]:
    """What the console shows of a Rasa event."""
    parse = event.get("parse_data") or {}
    intent = parse.get("intent") or {}
    data = event.get("data") or {}
    return {
        "event": event.get("event"),
        "text": event.get("text"),
        "timestamp": event.get("timestamp"),
        "channel": event.get("input_channel"),
        "intent": intent.get("name"),
        "confidence": intent.get("confidence"),
        "agent": (event.get("metadata") or {}).get("agent"),
        "kb_article": (data.get("custom") or {}).get("kb_article"),
    }


class LiveHub:
    def __init__(self, redis: Redis, store: EscalationStore) -> None:
        self.redis = redis
        self.store = store
        self.agents: set[web.WebSocketResponse] = set()
        self.customers: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self.open_conversations: set[str] = set()

    async def publish_typing(self, conversation_id: str, sender: str, agent: str | None = None) -> None:
        record = {"kind": "typing", "conversation_id": conversation_id, "from": sender, "agent": agent or ""}
        await self.redis.xadd(self.store.stream, record, maxlen=STREAM_MAXLEN, approximate=True)

    async def run(self) -> None:
        """Follow the stream until cancelled; a Redis outage pauses the updates, not the service."""
        self.open_conversations = {e.conversation_id for e in await self.store.queue()}
        # A real id, not "$": after an error, records written meanwhile are read, not skipped.
        newest = await self.redis.xrevrange(self.store.stream, count=1)
        last_id = newest[0][0] if newest else "0-0"
        while True:
            try:
                # Block for less than the client's socket timeout (5 s), or every idle wait is an error.
                batches = await self.redis.xread({self.store.stream: last_id}, block=2000, count=200)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("event stream unavailable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1)
                continue
            for _, records in batches:
                for record_id, record in records:
                    last_id = record_id
                    try:
                        await self.dispatch(record)
                    except Exception:
                        logger.exception("could not dispatch a live update")

    async def dispatch(self, record: dict[str, str]) -> None:
        kind = record.get("kind")
        if kind == "escalation":
            escalation = Escalation.from_json(record["escalation"])
            if escalation.is_open:
                self.open_conversations.add(escalation.conversation_id)
            else:
                self.open_conversations.discard(escalation.conversation_id)
            message = {"type": "escalation", "change": record.get("change"), "escalation": escalation.__dict__}
            await self._to_agents(message)
        elif kind == "note":
            note = {"type": "note", "escalation_id": record["escalation_id"], "note": json.loads(record["note"])}
            await self._to_agents(note)
        elif kind == "tracker":
            event = json.loads(record["event"])
            conversation_id = record.get("conversation_id", "")
            replayed = (event.get("metadata") or {}).get("sent_while_bot_down")  # shown when they were kept
            if event.get("event") in SHOWN_EVENTS and conversation_id in self.open_conversations and not replayed:
                await self._to_agents({"type": "event", "conversation_id": conversation_id, **slim_event(event)})
        elif kind == "typing":
            message = {"type": "typing", "conversation_id": record["conversation_id"], "from": record["from"]}
            if record["from"] == "agent":
                await self._send(self.customers.get(record["conversation_id"], set()), message)
            else:
                await self._to_agents(message)

    async def _to_agents(self, message: dict[str, Any]) -> None:
        await self._send(self.agents, message)

    @staticmethod
    async def _send(sockets: set[web.WebSocketResponse], message: dict[str, Any]) -> None:
        for ws in list(sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(message)
