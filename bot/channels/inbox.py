"""Customer messages from Meta's webhooks, handled one at a time in the order they were sent.

Meta delivers a conversation's messages in separate requests that can arrive out of
order, and to either Rasa process of a server (they share the port). So each accepted
message goes into a Redis sorted set for its conversation, scored by the time the
customer sent it. After a short wait for stragglers (REORDER_WINDOW_S), one process at
a time (a lease in Redis) takes the messages out oldest first and runs a turn for each;
messages that arrive meanwhile join the set in their place. A message that arrives after
a newer one was already answered is still answered, at once: never dropped.

A message stays in Redis until its turn starts, so a process that stops leaves the rest
for the next one: every process looks for left-over messages when it starts.

Keys: <prefix>:channel:<channel>:seen:<message id>         a message id kept once (expires after 7 days)
      <prefix>:channel:<channel>:inbox:<conversation>     sorted set, score = sent at (unix s)
      <prefix>:channel:<channel>:draining:<conversation>  the lease of the process taking them out
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

REORDER_WINDOW_S = 0.4  # how long a conversation's first message waits for others sent just before it
LEASE_S = 90  # longer than a turn (20 s limit) and its sends; renewed before each message
INBOX_TTL_S = 7 * 24 * 3600
RETRY_S = 0.25  # how often a process checks a conversation another one is taking messages out of
REDIS_PATIENCE_S = 120  # how long to wait for Redis to come back before leaving the messages for later

# Deletes the lease only if this process still holds it.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# Keeps a message unless its id was seen (KEYS: seen marker, inbox); in one step, so that a
# failure cannot mark a message seen without keeping it.
_PUT_ONCE = """
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('zadd', KEYS[2], ARGV[2], ARGV[3])
redis.call('expire', KEYS[2], ARGV[4])
return 1
"""
SEEN_TTL_S = 7 * 24 * 3600  # Meta redelivers for up to a few days


def ref(conversation_id: str) -> str:
    """A stable, non-identifying reference to a conversation for logs (ids are personal data)."""
    return hashlib.sha256(conversation_id.encode()).hexdigest()[:10]


@dataclass
class Inbound:
    """One customer message from a webhook."""

    conversation_id: str  # "<channel>:<customer id>"
    message_id: str
    timestamp: float  # when the customer sent it (unix seconds)
    text: str | None  # None: something we cannot read (attachment, location...)
    kind: str = "text"
    metadata: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Inbound], Awaitable[None]]


class Inbox:
    def __init__(self, redis: Callable[[], Redis], prefix: str, channel: str, window_s: float = REORDER_WINDOW_S):
        self.redis = redis
        self.keys = f"{prefix}:channel:{channel}"
        self.window_s = window_s
        self._draining: dict[str, asyncio.Task] = {}
        self._woken: set[str] = set()  # woken while this process was taking their messages out

    def _inbox(self, conversation_id: str) -> str:
        return f"{self.keys}:inbox:{conversation_id}"

    def _lease(self, conversation_id: str) -> str:
        return f"{self.keys}:draining:{conversation_id}"

    async def put_once(self, inbound: Inbound) -> bool:
        """Keep the message until its turn; False if its id was kept before (a redelivery).

        RedisError: nothing kept nor marked, so Meta's next delivery of it counts.
        """
        seen = f"{self.keys}:seen:{inbound.message_id}"
        # Members are unique and, for messages sent in the same second (WhatsApp's timestamps
        # have no finer resolution), sort by arrival.
        member = f"{time.time_ns():020d} {json.dumps(asdict(inbound), ensure_ascii=False)}"
        kept = await self.redis().eval(
            _PUT_ONCE, 2, seen, self._inbox(inbound.conversation_id), SEEN_TTL_S, inbound.timestamp, member, INBOX_TTL_S
        )
        return bool(kept)

    def wake(self, conversation_id: str, handle: Handler, wait: bool = True) -> None:
        """Make sure some process takes this conversation's messages out (this one, unless another is)."""
        running = self._draining.get(conversation_id)
        if running is not None and not running.done():
            # This process is at it. Its last look for new messages may already have been sent
            # to Redis ahead of this one's: it looks once more before it stops.
            self._woken.add(conversation_id)
            return
        task = asyncio.get_running_loop().create_task(self._drain(conversation_id, handle, wait))
        self._draining[conversation_id] = task

        def forget(done: asyncio.Task) -> None:
            if self._draining.get(conversation_id) is done:
                del self._draining[conversation_id]

        task.add_done_callback(forget)

    async def wake_left_over(self, handle: Handler) -> int:
        """At start: wake every conversation with messages no process took out; how many."""
        found = 0
        async for key in self.redis().scan_iter(match=f"{self.keys}:inbox:*", count=500):
            self.wake(key.removeprefix(f"{self.keys}:inbox:"), handle, wait=False)
            found += 1
        return found

    async def drain(self, timeout_s: float) -> None:
        """Let the turns under way finish (at shutdown)."""
        if self._draining:
            await asyncio.wait(list(self._draining.values()), timeout=timeout_s)

    async def _drain(self, conversation_id: str, handle: Handler, wait: bool) -> None:
        if wait:
            await asyncio.sleep(self.window_s)
        redis_failed_at: float | None = None
        while True:
            try:
                self._woken.discard(conversation_id)
                if await self._take_out(conversation_id, handle) and conversation_id not in self._woken:
                    return
                redis_failed_at = None
                await asyncio.sleep(RETRY_S)  # another process holds the lease
            except RedisError:
                redis_failed_at = redis_failed_at or time.monotonic()
                if time.monotonic() - redis_failed_at > REDIS_PATIENCE_S:
                    logger.error("Redis unavailable: messages left for later in %s", self.keys)
                    return
                await asyncio.sleep(1.0)

    async def _take_out(self, conversation_id: str, handle: Handler) -> bool:
        """Run the conversation's messages oldest first under the lease; True when none is left.

        False: another process holds the lease and messages wait, or one came after the last pop.
        """
        redis, inbox, lease = self.redis(), self._inbox(conversation_id), self._lease(conversation_id)
        token = secrets.token_hex(8)
        if not await redis.set(lease, token, nx=True, ex=LEASE_S):
            return not await redis.exists(inbox)  # nothing left: the holder took ours too
        try:
            # The lease is renewed before each pop, so that a Redis failure cannot come
            # between taking a message out and handling it.
            while await redis.expire(lease, LEASE_S) and (popped := await redis.zpopmin(inbox)):
                inbound = Inbound(**json.loads(popped[0][0].split(" ", 1)[1]))
                try:
                    await handle(inbound)
                except Exception:
                    logger.exception("handling a message of conversation %s failed", ref(conversation_id))
        finally:
            await redis.eval(_RELEASE, 1, lease, token)
        # One more look: a message put after the last pop may have found the lease still held.
        return not await redis.exists(inbox)
