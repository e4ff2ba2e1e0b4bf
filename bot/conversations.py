"""Where Rasa keeps a conversation: its Redis tracker store ("<key_prefix>:tracker:<sender id>")."""

from __future__ import annotations

from redis.asyncio import Redis


def tracker_key(prefix: str, conversation_id: str) -> str:
    return f"{prefix}:tracker:{conversation_id}"


async def conversation_exists(redis: Redis, prefix: str, conversation_id: str) -> bool:
    """Asked before Rasa's API, whose GET would create an empty tracker for an unknown id."""
    return bool(await redis.exists(tracker_key(prefix, conversation_id)))
