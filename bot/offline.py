"""Messages a web chat customer sent while the Rasa server was down.

When the page cannot reach the bot at all, it posts the message to the agent service,
which keeps it here and queues the conversation for people (bot/channels/fail_open.py
covers a bot that is up but fails). Once Rasa answers again, the kept messages become
the conversation's next events, followed by a pause so the bot stays out of it: the Rasa
process replays them before the customer's next message, the agent service before an
agent's reply or hand-back.

Key: "<prefix>:offline:<conversation id>", a list of JSON messages, kept for 30 days.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

KEEP_S = 30 * 24 * 3600


def _key(prefix: str, conversation_id: str) -> str:
    return f"{prefix}:offline:{conversation_id}"


async def keep(
    redis: Redis, prefix: str, conversation_id: str, text: str, language: str, answer: str
) -> dict[str, Any]:
    """Keep the customer's `text` and the `answer` they were given."""
    message = {"id": uuid.uuid4().hex, "text": text, "language": language, "answer": answer, "timestamp": time.time()}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.rpush(_key(prefix, conversation_id), json.dumps(message, ensure_ascii=False))
        pipe.expire(_key(prefix, conversation_id), KEEP_S)
        await pipe.execute()
    return message


async def pending(redis: Redis, prefix: str, conversation_id: str) -> list[dict[str, Any]]:
    """The kept messages, oldest first, without taking them."""
    return [json.loads(raw) for raw in await redis.lrange(_key(prefix, conversation_id), 0, -1)]


Parse = Callable[[str], Awaitable[dict[str, Any]]]
Apply = Callable[[list[dict[str, Any]]], Awaitable[Any]]


async def replay(redis: Redis, prefix: str, conversation_id: str, parse: Parse, apply: Apply) -> int:
    """Hand the kept messages to `apply` as Rasa events (each message and its answer, then a pause);
    returns how many.

    `parse` is the bot's NLU: agents see what it understood, and later predictions need an
    intent on every user event. A message leaves the list only after `apply` succeeded, and
    a lock keeps the Rasa server and the agent service from replaying the same one twice."""
    key = _key(prefix, conversation_id)
    async with redis.lock(f"{key}:lock", timeout=60, blocking_timeout=30):
        raw = await redis.lrange(key, 0, -1)
        if not raw:
            return 0
        events: list[dict[str, Any]] = []
        for message in map(json.loads, raw):
            parsed = await parse(message["text"])
            events.append(
                {
                    "event": "user",
                    "text": message["text"],
                    "timestamp": message["timestamp"],
                    "message_id": message["id"],
                    "input_channel": "webchat",
                    "parse_data": {"language": {"code": message["language"]}, **parsed},
                    "metadata": {"sent_while_bot_down": True},
                }
            )
            events.append(
                {
                    "event": "bot",
                    "text": message["answer"],
                    "timestamp": message["timestamp"],
                    "metadata": {"sent_while_bot_down": True},
                }
            )
        await apply([*events, {"event": "pause", "timestamp": time.time()}])
        await redis.ltrim(key, len(raw), -1)  # messages kept meanwhile stay for the next replay
        return len(raw)
