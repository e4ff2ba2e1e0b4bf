"""Forget a customer: everything kept about their conversations, on every linked channel.

Deletes the Rasa trackers (transcripts), escalations with their notes, per-conversation
statistics, messaging-window times and the conversations' entries in the live event
stream. Counts that name no one (answers per article) stay.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.conversations import tracker_key
from bot.escalations import EscalationStore

STREAM_SCAN = 1000


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
    # The live stream holds recent messages too.
    last = "-"
    while True:
        records = await redis.xrange(store.stream, min=last, count=STREAM_SCAN)
        doomed = [rid for rid, record in records if record.get("conversation_id") in targets]
        if doomed:
            await redis.xdel(store.stream, *doomed)
        if len(records) < STREAM_SCAN:
            break
        last = "(" + records[-1][0]
