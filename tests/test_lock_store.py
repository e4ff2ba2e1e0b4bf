"""The conversation lock store (real Redis): one holder at a time, a waiting message goes on soon after."""

from __future__ import annotations

import asyncio
import secrets
import time
from urllib.parse import urlparse

from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig

from bot.lock_store import RETRY_S, RedisLockStore
from bot.settings import Settings


def lock_store() -> LockStore:
    url = urlparse(Settings.from_env().redis_url)
    endpoint = EndpointConfig(
        url=url.hostname or "127.0.0.1",
        type="bot.lock_store.RedisLockStore",
        port=url.port or 6379,
        db=int((url.path or "/0").lstrip("/") or 0),
        key_prefix="locktest" + secrets.token_hex(3),
    )
    return LockStore.create(endpoint)  # the way Rasa builds it from endpoints.yml


async def test_a_second_message_waits_for_the_first_and_then_goes_on_at_once() -> None:
    store = lock_store()
    assert isinstance(store, RedisLockStore)
    conversation = "rest:lock-" + secrets.token_hex(4)
    order: list[str] = []
    released_at = 0.0

    async def first() -> None:
        nonlocal released_at
        async with store.lock(conversation):
            order.append("first in")
            await asyncio.sleep(0.3)
            order.append("first out")
            released_at = time.perf_counter()

    async def second() -> float:
        await asyncio.sleep(0.05)  # arrives while the first holds the lock
        async with store.lock(conversation):
            order.append("second in")
            return time.perf_counter()

    _, acquired_at = await asyncio.gather(first(), second())
    assert order == ["first in", "first out", "second in"]
    assert acquired_at - released_at < 10 * RETRY_S  # Rasa's own store retried after a whole second
