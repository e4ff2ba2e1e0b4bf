"""The conversation lock store (real Redis): one holder at a time across processes, no long waits."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import secrets
import time
from urllib.parse import urlparse

from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig

from bot.lock_store import RETRY_S, RedisLockStore
from bot.settings import Settings

PREFIX = "locktest" + secrets.token_hex(3)


def lock_store() -> RedisLockStore:
    url = urlparse(Settings.from_env().redis_url)
    endpoint = EndpointConfig(
        url=url.hostname or "127.0.0.1",
        type="bot.lock_store.RedisLockStore",
        port=url.port or 6379,
        db=int((url.path or "/0").lstrip("/") or 0),
        key_prefix=PREFIX,
    )
    store = LockStore.create(endpoint)  # the way Rasa builds it from endpoints.yml
    assert isinstance(store, RedisLockStore)
    return store


async def test_a_second_message_waits_for_the_first_and_then_goes_on_at_once() -> None:
    store = lock_store()
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


def _messages_in_one_process(conversation: str, count: int, seed: int) -> None:
    """A Rasa process handling `count` messages of the conversation at once; Redis counts the holders."""

    async def run() -> None:
        store = lock_store()
        rng = random.Random(seed)
        counter = f"{PREFIX}:holders:{conversation}"

        async def message() -> None:
            async with store.lock(conversation):
                if await store.redis.incr(counter) > 1:
                    await store.redis.incr(counter + ":overlaps")
                await asyncio.sleep(rng.uniform(0, 0.005))
                await store.redis.decr(counter)
                await store.redis.incr(counter + ":served")

        await asyncio.gather(*(message() for _ in range(count)))

    asyncio.run(run())


async def test_never_two_holders_across_processes() -> None:
    """Two Rasa processes, 30 messages of one conversation each, all at once. Rasa's own store
    read, changed and wrote back one ticket list from each process, and let two in at once."""
    conversation = "rest:burst-" + secrets.token_hex(4)
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_messages_in_one_process, args=(conversation, 30, i)) for i in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        await asyncio.to_thread(process.join, 60)
        assert process.exitcode == 0
    redis = lock_store().redis
    counter = f"{PREFIX}:holders:{conversation}"
    assert await redis.get(counter + ":served") == b"60"
    assert await redis.get(counter + ":overlaps") is None


async def test_a_lock_whose_holder_died_expires() -> None:
    store = lock_store()
    conversation = "rest:dead-" + secrets.token_hex(4)
    dead = store.redis.lock(store.mutex_key(conversation), timeout=0.5)
    assert await dead.acquire()  # and never released: the process holding it was killed
    started = time.perf_counter()
    async with store.lock(conversation):
        waited = time.perf_counter() - started
    assert 0.3 < waited < 2
