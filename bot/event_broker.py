"""Rasa event broker: conversation events into a Redis stream, and into the analytics.

The agent service follows the stream (`<prefix>:events`) to show customer and bot
messages live in the console; `bot.analytics` counts conversations, answers and
complaints from the same events. Rasa calls `publish` synchronously from its event loop;
events go into a queue that one task writes to Redis in order, so publishing never
blocks a conversation and events keep their order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from asyncio import AbstractEventLoop
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig
from redis.asyncio import Redis

from bot.analytics import record_event
from bot.escalations import STREAM_MAXLEN

logger = logging.getLogger(__name__)
# The console needs messages and the pause state, not every slot or action.
FORWARDED = {"user", "bot", "pause", "resume", "session_started"}


class RedisStreamEventBroker(EventBroker):
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.stream = f"{prefix}:events"
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.writer = asyncio.get_running_loop().create_task(self._write())

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: AbstractEventLoop | None = None
    ) -> RedisStreamEventBroker:
        url, prefix = broker_config.url, broker_config.kwargs.get("key_prefix")
        if not url or not prefix:
            raise ValueError("event_broker in endpoints.yml needs 'url' (REDIS_URL) and 'key_prefix'")
        redis = Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
        return cls(redis, prefix)

    def publish(self, event: dict[str, Any]) -> None:
        if event.get("event") in FORWARDED:
            self.queue.put_nowait(event)

    async def _write(self) -> None:
        while True:
            event = await self.queue.get()
            record = {"kind": "tracker", "conversation_id": str(event.get("sender_id")), "event": json.dumps(event)}
            for attempt in range(3):
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        pipe.xadd(self.stream, record, maxlen=STREAM_MAXLEN, approximate=True)
                        record_event(pipe, self.prefix, event)
                        await pipe.execute()
                    break
                except Exception as exc:  # Redis restarting: retry, then drop this live update and count
                    logger.warning("event stream write failed (%s), attempt %d", type(exc).__name__, attempt + 1)
                    await asyncio.sleep(0.2 * (attempt + 1))

    def is_ready(self) -> bool:
        return not self.writer.done()

    async def close(self) -> None:
        self.writer.cancel()
        await self.redis.close()
