"""The Meta webhooks' inbox on the real Redis: once each, in the customer's order, across processes."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis

from bot.channels.inbox import Inbound, Inbox
from bot.escalations import connect
from bot.settings import Settings

WINDOW_S = 0.3
PREFIX = "inboxtest" + secrets.token_hex(3)


@pytest.fixture()
async def redis() -> Redis:
    client = connect(Settings.from_env().redis_url)
    yield client
    async for key in client.scan_iter(match=f"{PREFIX}*"):
        await client.delete(key)
    await client.close()


def inboxes(redis: Redis, count: int) -> list[Inbox]:
    """`count` inboxes on one prefix, as `count` Rasa processes have."""
    prefix = PREFIX + secrets.token_hex(4)
    return [Inbox(lambda: redis, prefix, "messenger", window_s=WINDOW_S) for _ in range(count)]


def message(conversation: str, sent_at: float, text: str) -> Inbound:
    return Inbound(conversation, "m_" + secrets.token_hex(8), sent_at, text, metadata={"n": text})


class Recorder:
    """A turn handler that takes its time, as a Rasa turn does, and records what it was given."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.handled: list[tuple[str, str | None]] = []
        self.running: set[str] = set()
        self.overlapped = False

    async def __call__(self, inbound: Inbound) -> None:
        if inbound.conversation_id in self.running:
            self.overlapped = True
        self.running.add(inbound.conversation_id)
        await asyncio.sleep(self.seconds)
        self.handled.append((inbound.conversation_id, inbound.text))
        self.running.discard(inbound.conversation_id)

    def texts(self, conversation: str) -> list[str | None]:
        return [text for cid, text in self.handled if cid == conversation]


async def wait_until(condition, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_messages_delivered_out_of_order_to_two_processes_are_handled_once_in_sending_order(
    redis: Redis,
) -> None:
    first, second = inboxes(redis, 2)
    recorder = Recorder()
    sent = [message("messenger:a", 1000.0 + n, f"a{n}") for n in range(6)]
    # Deliveries arrive newest first, alternating between the two processes, one of them twice.
    for n, inbound in enumerate(reversed(sent)):
        inbox = (first, second)[n % 2]
        assert await inbox.put_once(inbound)
        inbox.wake(inbound.conversation_id, recorder)
    assert not await second.put_once(sent[0])  # a redelivery is not kept again
    await wait_until(lambda: len(recorder.handled) >= 6)
    await asyncio.sleep(2 * WINDOW_S)
    assert recorder.texts("messenger:a") == [m.text for m in sent]
    assert not recorder.overlapped  # one turn at a time
    assert await redis.exists(f"{first.keys}:inbox:messenger:a") == 0


async def test_a_message_older_than_one_already_answered_is_still_answered(redis: Redis) -> None:
    [inbox] = inboxes(redis, 1)
    recorder = Recorder()
    newer = message("messenger:b", 2000.0, "newer")
    assert await inbox.put_once(newer)
    inbox.wake(newer.conversation_id, recorder)
    await wait_until(lambda: recorder.texts("messenger:b") == ["newer"])
    older = message("messenger:b", 1999.0, "older")
    assert await inbox.put_once(older)
    inbox.wake(older.conversation_id, recorder)
    await wait_until(lambda: recorder.texts("messenger:b") == ["newer", "older"])


async def test_conversations_do_not_wait_for_each_other(redis: Redis) -> None:
    [inbox] = inboxes(redis, 1)
    slow = Recorder(seconds=1.0)
    for conversation in ("messenger:c", "messenger:d"):
        inbound = message(conversation, 3000.0, conversation)
        assert await inbox.put_once(inbound)
        inbox.wake(conversation, slow)
    started = asyncio.get_running_loop().time()
    await wait_until(lambda: len(slow.handled) == 2)
    assert asyncio.get_running_loop().time() - started < 1.8  # both turns ran side by side


async def test_messages_a_stopped_process_left_are_handled_when_another_starts(redis: Redis) -> None:
    stopped, started = inboxes(redis, 2)
    left = [message("messenger:e", 4000.0 + n, f"e{n}") for n in range(3)]
    for inbound in left:
        assert await stopped.put_once(inbound)  # kept, but the process stopped before its turn
    recorder = Recorder()
    assert await started.wake_left_over(recorder) == 1
    await wait_until(lambda: len(recorder.handled) == 3)
    assert recorder.texts("messenger:e") == ["e0", "e1", "e2"]


async def test_the_whole_message_comes_back_out(redis: Redis) -> None:
    [inbox] = inboxes(redis, 1)
    got: list[Inbound] = []

    async def keep(inbound: Inbound) -> None:
        got.append(inbound)

    sent = Inbound("whatsapp:48500", "wamid.x" + secrets.token_hex(4), 5000.5, None, "image", {"wa": {"n": 1}})
    assert await inbox.put_once(sent)
    inbox.wake(sent.conversation_id, keep)
    await wait_until(lambda: bool(got))
    assert got == [sent]


async def test_a_message_woken_while_the_last_look_is_under_way_is_not_left_behind(redis: Redis) -> None:
    class LateRedis:
        """The real Redis; once, a message is put just after an `exists` was answered."""

        def __init__(self) -> None:
            self.hook = None

        def __getattr__(self, name: str):
            return getattr(redis, name)

        async def exists(self, *keys: str) -> int:
            answer = await redis.exists(*keys)
            if self.hook is not None:
                hook, self.hook = self.hook, None
                await hook()
            return answer

    late = LateRedis()
    inbox = Inbox(lambda: late, PREFIX + secrets.token_hex(4), "messenger", window_s=WINDOW_S)
    recorder = Recorder()
    first, second = message("messenger:f", 6000.0, "first"), message("messenger:f", 6001.0, "second")

    async def put_second() -> None:
        assert await inbox.put_once(second)
        inbox.wake(second.conversation_id, recorder)

    async def handle(inbound: Inbound) -> None:
        await recorder(inbound)
        late.hook = put_second  # the drain's last look for new messages comes next

    assert await inbox.put_once(first)
    inbox.wake(first.conversation_id, handle)
    await wait_until(lambda: recorder.texts("messenger:f") == ["first", "second"], timeout=5)
