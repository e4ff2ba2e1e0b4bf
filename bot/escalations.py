"""Escalations: who owns a conversation handed from the bot to people, in Redis.

A conversation is owned by the bot (no open escalation), or its open escalation is
`waiting` (in the agents' queue) or `assigned` (one agent owns it); `resolved` and
`returned_to_bot` close it. Every change goes through `_transition`, which checks the
current state and writes the new one in one optimistic Redis transaction (WATCH/MULTI),
and appends a record to the event stream the agent console follows.

Keys (each starts with "<prefix>:"):
  escalation:<id>                   JSON of the Escalation
  escalation:<id>:notes             list of agents' private notes (JSON)
  queue                             sorted set of open escalation ids, scored by creation time
  conversation:<cid>:escalation     the id of the conversation's open escalation
  conversation:<cid>:history        ids of all the conversation's escalations, newest first
  events                            stream of changes (escalations, and Rasa's tracker events)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import WatchError

Status = Literal["waiting", "assigned", "resolved", "returned_to_bot"]
OPEN_STATUSES = ("waiting", "assigned")
Reason = Literal["customer_request", "low_confidence", "repeated_question", "frustration", "bot_failure"]
STREAM_MAXLEN = 50_000


@dataclass
class Escalation:
    conversation_id: str
    reason: str
    language: str
    channel: str
    turns: list[dict]  # the customer's messages with the bot's understanding: text, intent, confidence
    articles_offered: list[dict]  # {"article_id", "score"} of answers the bot gave
    status: str = "waiting"
    after_hours: bool = False  # opened outside business hours: a ticket for the next shift
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: float = field(default_factory=time.time)
    contact: str | None = None
    owner: str | None = None  # the agent who claimed it
    claimed_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Escalation:
        data = json.loads(raw)
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


class TransitionError(Exception):
    """A change that the escalation's current state does not allow."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def conversation_turns(events: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """From a tracker's events: the customer's messages with what the bot understood, and the articles it gave."""
    turns, offered = [], []
    for event in events:
        if event.get("event") == "user":
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            top = ((parse.get("kb") or {}).get("candidates") or [None])[0]
            turns.append(
                {
                    "text": event.get("text"),
                    "intent": intent.get("name"),
                    "confidence": round(float(intent.get("confidence") or 0), 4),
                    "language": (parse.get("language") or {}).get("code"),
                    "top_article": top,
                    "timestamp": event.get("timestamp"),
                }
            )
        elif event.get("event") == "bot":
            custom = (event.get("data") or {}).get("custom") or {}
            if "kb_article" in custom:
                offered.append({"article_id": custom["kb_article"], "score": custom.get("score")})
    return turns, offered


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)


class EscalationStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def stream(self) -> str:
        return self.key("events")

    def _announce(self, pipe: Any, escalation: Escalation, change: str) -> None:
        record = {
            "kind": "escalation",
            "change": change,
            "conversation_id": escalation.conversation_id,
            "escalation": escalation.to_json(),
        }
        pipe.xadd(self.stream, record, maxlen=STREAM_MAXLEN, approximate=True)

    async def open(self, escalation: Escalation) -> Escalation:
        """Queue a new escalation, unless the conversation already has an open one (returned instead)."""
        pointer = self.key("conversation", escalation.conversation_id, "escalation")
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(pointer)
                    current_id = await pipe.get(pointer)
                    current = await self.get(current_id) if current_id else None
                    if current is not None and current.is_open:
                        await pipe.unwatch()
                        return current
                    pipe.multi()
                    pipe.set(self.key("escalation", escalation.id), escalation.to_json())
                    pipe.zadd(self.key("queue"), {escalation.id: escalation.created_at})
                    pipe.set(pointer, escalation.id)
                    pipe.lpush(self.key("conversation", escalation.conversation_id, "history"), escalation.id)
                    self._announce(pipe, escalation, "opened")
                    await pipe.execute()
                    return escalation
                except WatchError:
                    continue

    async def get(self, escalation_id: str) -> Escalation | None:
        raw = await self.redis.get(self.key("escalation", escalation_id))
        return Escalation.from_json(raw) if raw else None

    async def current_for(self, conversation_id: str) -> Escalation | None:
        escalation_id = await self.redis.get(self.key("conversation", conversation_id, "escalation"))
        return await self.get(escalation_id) if escalation_id else None

    async def queue(self) -> list[Escalation]:
        """Open escalations (waiting or assigned), longest waiting first."""
        ids = await self.redis.zrange(self.key("queue"), 0, -1)
        found = [await self.get(i) for i in ids]
        return [e for e in found if e is not None]

    async def waiting(self) -> list[Escalation]:
        return [e for e in await self.queue() if e.status == "waiting"]

    async def history(self, conversation_id: str) -> list[Escalation]:
        """All escalations of a conversation, newest first."""
        ids = await self.redis.lrange(self.key("conversation", conversation_id, "history"), 0, 49)
        found = [await self.get(i) for i in ids]
        return [e for e in found if e is not None]

    async def _transition(
        self,
        escalation_id: str,
        change: str,
        apply: Callable[[Escalation], None],
        extra: Callable[[Any, Escalation], None],
    ) -> Escalation:
        """Read, check and update one escalation atomically; `apply` raises TransitionError to refuse."""
        key = self.key("escalation", escalation_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise TransitionError(f"no escalation {escalation_id!r}", 404)
                    escalation = Escalation.from_json(raw)
                    apply(escalation)
                    pipe.multi()
                    pipe.set(key, escalation.to_json())
                    extra(pipe, escalation)
                    self._announce(pipe, escalation, change)
                    await pipe.execute()
                    return escalation
                except WatchError:
                    continue

    async def claim(self, escalation_id: str, agent: str, *, reassign: bool = False) -> Escalation:
        """A waiting conversation becomes the agent's; with `reassign` (admins), also an assigned one."""

        def apply(e: Escalation) -> None:
            if e.status == "assigned" and e.owner == agent:
                return
            if e.status == "assigned" and not reassign:
                raise TransitionError(f"already claimed by {e.owner}")
            if not e.is_open:
                raise TransitionError(f"the conversation is {e.status}; nothing to claim")
            e.status, e.owner, e.claimed_at = "assigned", agent, time.time()

        return await self._transition(escalation_id, "assigned", apply, lambda pipe, e: None)

    async def close(
        self, escalation_id: str, status: Status, by: str | None = None, *, admin: bool = True
    ) -> Escalation:
        """Resolve or return to the bot; only the owner (or an admin) may close an assigned conversation."""
        if status not in ("resolved", "returned_to_bot"):
            raise ValueError(f"cannot close as {status!r}")

        def apply(e: Escalation) -> None:
            if not e.is_open:
                raise TransitionError(f"the conversation is already {e.status}")
            if e.status == "assigned" and e.owner != by and not admin:
                raise TransitionError(f"{e.owner} owns this conversation", 403)
            e.status, e.closed_at, e.closed_by = status, time.time(), by

        def extra(pipe: Any, e: Escalation) -> None:
            pipe.zrem(self.key("queue"), e.id)
            pipe.delete(self.key("conversation", e.conversation_id, "escalation"))

        return await self._transition(escalation_id, status, apply, extra)

    async def set_contact(self, escalation_id: str, contact: str | None) -> Escalation:
        def apply(e: Escalation) -> None:
            e.contact = contact

        return await self._transition(escalation_id, "contact", apply, lambda pipe, e: None)

    async def add_note(self, escalation_id: str, agent: str, text: str) -> dict[str, Any]:
        escalation = await self.get(escalation_id)
        if escalation is None:
            raise TransitionError(f"no escalation {escalation_id!r}", 404)
        note = {"agent": agent, "text": text, "at": time.time()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.key("escalation", escalation_id, "notes"), json.dumps(note, ensure_ascii=False))
            pipe.xadd(
                self.stream,
                {
                    "kind": "note",
                    "escalation_id": escalation_id,
                    "conversation_id": escalation.conversation_id,
                    "note": json.dumps(note, ensure_ascii=False),
                },
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
            await pipe.execute()
        return note

    async def notes(self, escalation_id: str) -> list[dict[str, Any]]:
        return [json.loads(n) for n in await self.redis.lrange(self.key("escalation", escalation_id, "notes"), 0, -1)]
