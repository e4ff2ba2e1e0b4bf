"""Forget a customer: everything kept about their conversations, on every linked channel.

Deletes the Rasa trackers (transcripts), escalations with their notes, per-conversation
statistics, messaging-window times, rate-limit counts, WhatsApp replies waiting for delivery and the
records of sent WhatsApp messages, the questions kept for the editors' gaps report, and
the conversations' entries in the live event stream. Counts that name no one (answers
per article) stay.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.conversations import tracker_key
from bot.escalations import EscalationStore
from bot.kb.gaps import GapStore, conversation_hash

# Records per XRANGE while searching a stream (up to 50,000 records): small pages keep both Redis
# and the action server responsive, and the action server's memory flat (1,000 added 7 MB for good).
STREAM_SCAN = 200


async def erase_conversations(redis: Redis, prefix: str, conversation_ids: list[str]) -> None:
    store = EscalationStore(redis, prefix)
    targets = set(conversation_ids)
    for cid in conversation_ids:
        escalation_ids = await redis.lrange(store.key("conversation", cid, "history"), 0, -1)
        keys = [
            tracker_key(prefix, cid),
            store.key("conversation", cid, "escalation"),
            store.key("conversation", cid, "history"),
            store.key("stats", "conversation", cid),
            store.key("channel", cid, "last_customer_message"),
            store.key("channel", cid.split(":", 1)[0], "inbox", cid),  # Meta messages not yet handled
            store.key("whatsapp", "pending", cid),
            store.key("ratelimit", cid),
        ]
        for escalation_id in escalation_ids:
            keys += [store.key("escalation", escalation_id), store.key("escalation", escalation_id, "notes")]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(*keys)
            if escalation_ids:
                pipe.zrem(store.key("queue"), *escalation_ids)
            pipe.zrem(store.key("stats", "conversations"), cid)
            await pipe.execute()
        async for member, _ in redis.zscan_iter(store.key("stats", "complaints"), match=f"{cid}:*"):
            await redis.zrem(store.key("stats", "complaints"), member)
    if any(cid.startswith("whatsapp:") for cid in targets):
        async for key in redis.scan_iter(match=store.key("whatsapp", "message", "*"), count=STREAM_SCAN):
            if await redis.hget(key, "conversation_id") in targets:
                await redis.delete(key)
    # The live stream holds recent messages, the gaps stream the questions (by a hash of the conversation).
    await _delete_from_stream(redis, store.stream, "conversation_id", targets)
    hashes = {conversation_hash(cid) for cid in targets}
    await _delete_from_stream(redis, GapStore(redis, prefix).stream, "conversation", hashes)


async def _delete_from_stream(redis: Redis, stream: str, field: str, values: set[str]) -> None:
    last = "-"
    while True:
        records = await redis.xrange(stream, min=last, count=STREAM_SCAN)
        doomed = [rid for rid, record in records if record.get(field) in values]
        if doomed:
            await redis.xdel(stream, *doomed)
        if len(records) < STREAM_SCAN:
            break
        last = "(" + records[-1][0]
