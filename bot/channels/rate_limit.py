"""A per-conversation limit on customer messages, shared by every Rasa server through Redis.

A sliding window: at most `messages` in any `seconds` per conversation
(SUPPORTBOT_RATE_LIMIT, default 30/60: faster than anyone types, slower than a script).
Messages over the limit are not given to the bot (and count, so a flood stays held until
it pauses); the customer gets a polite request to slow down.
"""

from __future__ import annotations

import secrets
import time

from redis.asyncio import Redis


async def over_limit(redis: Redis, prefix: str, conversation_id: str, messages: int, seconds: float) -> bool:
    """Count one message of `conversation_id`; True if it is over the limit."""
    now = time.time()
    key = f"{prefix}:ratelimit:{conversation_id}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, 0, now - seconds)
        pipe.zadd(key, {f"{now:.6f}:{secrets.token_hex(3)}": now})
        pipe.zcard(key)
        pipe.expire(key, int(seconds) + 1)
        _, _, count, _ = await pipe.execute()
    return int(count) > messages
