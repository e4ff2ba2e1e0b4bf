"""Escalations: a conversation handed from the bot to people, stored in Redis.

Keys (each starts with "<prefix>:"):
  escalation:<id>            JSON of the Escalation
  queue                      sorted set of waiting escalation ids, scored by creation time
  conversation:<cid>:escalation   the id of the conversation's open escalation
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Literal

from redis.asyncio import Redis

Status = Literal["waiting", "offline", "closed", "returned_to_bot"]
Reason = Literal["customer_request", "low_confidence", "frustration", "bot_failure"]


@dataclass
class Escalation:
    conversation_id: str
    reason: str
    status: str
    language: str
    channel: str
    turns: list[dict]  # the customer's messages with the bot's understanding: text, intent, confidence
    articles_offered: list[dict]  # {"article_id", "score"} of answers the bot gave
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: float = field(default_factory=time.time)
    contact: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Escalation:
        return cls(**json.loads(raw))


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)


class EscalationStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def open(self, escalation: Escalation) -> Escalation:
        """Record a new escalation and put it in the agents' queue, atomically."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("escalation", escalation.id), escalation.to_json())
            pipe.zadd(self._key("queue"), {escalation.id: escalation.created_at})
            pipe.set(self._key("conversation", escalation.conversation_id, "escalation"), escalation.id)
            await pipe.execute()
        return escalation

    async def get(self, escalation_id: str) -> Escalation | None:
        raw = await self.redis.get(self._key("escalation", escalation_id))
        return Escalation.from_json(raw) if raw else None

    async def current_for(self, conversation_id: str) -> Escalation | None:
        escalation_id = await self.redis.get(self._key("conversation", conversation_id, "escalation"))
        return await self.get(escalation_id) if escalation_id else None

    async def waiting(self) -> list[Escalation]:
        """Open escalations, longest waiting first."""
        ids = await self.redis.zrange(self._key("queue"), 0, -1)
        found = [await self.get(i) for i in ids]
        return [e for e in found if e is not None]

    async def set_contact(self, escalation_id: str, contact: str | None) -> None:
        escalation = await self.get(escalation_id)
        if escalation:
            escalation.contact = contact
            await self.redis.set(self._key("escalation", escalation_id), escalation.to_json())

    async def close(self, escalation_id: str, status: str) -> Escalation | None:
        """Take an escalation out of the queue (handed back to the bot, or resolved)."""
        escalation = await self.get(escalation_id)
        if escalation is None:
            return None
        escalation.status = status
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("escalation", escalation_id), escalation.to_json())
            pipe.zrem(self._key("queue"), escalation_id)
            pipe.delete(self._key("conversation", escalation.conversation_id, "escalation"))
            await pipe.execute()
        return escalation
