"""Meta's messaging windows: when, and how, a message may still reach a customer.

Messenger and WhatsApp let a business answer freely for 24 hours after the customer's
last message. After that, Messenger accepts a person's reply tagged HUMAN_AGENT for up
to 7 days and nothing later; WhatsApp accepts only an approved template message. The
channels record each customer message's time here, and both the agent service (to tell
the agent before sending) and the channels' output (to send the right way) ask `decide`.

Conversation ids carry their channel: "messenger:<psid>", "whatsapp:<wa_id>"; any other
id (web chat, REST) has no window.

Key: <prefix>:channel:<conversation id>:last_customer_message  unix time, expires after 8 days
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

CUSTOMER_WINDOW_S = 24 * 3600
HUMAN_AGENT_WINDOW_S = 7 * 24 * 3600
KEY_TTL_S = HUMAN_AGENT_WINDOW_S + 24 * 3600
WINDOWED_CHANNELS = ("messenger", "whatsapp")

# Only ever move the time forward: a late redelivery of an old message must not shorten the window.
_RECORD_LATEST = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
"""


@dataclass(frozen=True)
class Delivery:
    allowed: bool
    via: str | None = None  # "message", "human_agent_tag" (Messenger) or "template" (WhatsApp)
    reason: str | None = None  # for the agent: why not, or what happens instead


def channel_of(conversation_id: str) -> str | None:
    channel = conversation_id.split(":", 1)[0]
    return channel if channel in WINDOWED_CHANNELS and ":" in conversation_id else None


def key(prefix: str, conversation_id: str) -> str:
    return f"{prefix}:channel:{conversation_id}:last_customer_message"


async def record_customer_message(redis: Redis, prefix: str, conversation_id: str, at: float) -> None:
    at = min(at, time.time())  # a customer's clock ahead of ours must not stretch the window
    await redis.eval(_RECORD_LATEST, 1, key(prefix, conversation_id), f"{at:.3f}", KEY_TTL_S)


async def last_customer_message(redis: Redis, prefix: str, conversation_id: str) -> float | None:
    value = await redis.get(key(prefix, conversation_id))
    return float(value) if value else None


def decide(conversation_id: str, last_customer_message: float | None, now: float, from_agent: bool) -> Delivery:
    """How a message from a person (`from_agent`) or from the bot may reach the customer now."""
    channel = channel_of(conversation_id)
    if channel is None:
        return Delivery(True, "message")
    age = now - last_customer_message if last_customer_message is not None else float("inf")
    if age <= CUSTOMER_WINDOW_S:
        return Delivery(True, "message")
    if not from_agent:
        return Delivery(False, reason="the customer's last message is more than 24 hours old")
    if channel == "messenger":
        if age <= HUMAN_AGENT_WINDOW_S:
            return Delivery(True, "human_agent_tag")
        return Delivery(
            False,
            reason="not delivered: the customer last wrote on Messenger more than 7 days ago, and Messenger "
            "accepts no reply after that; the customer has to write first",
        )
    return Delivery(
        True,
        "template",
        reason="the customer last wrote on WhatsApp more than 24 hours ago, so WhatsApp accepts only a "
        "template message: it was sent, and your reply will be delivered when the customer answers",
    )


async def agent_reply_delivery(redis: Redis, prefix: str, conversation_id: str, now: float | None = None) -> Delivery:
    """What happens to an agent's reply in this conversation (the agent service asks before sending)."""
    if channel_of(conversation_id) is None:
        return Delivery(True, "message")
    last = await last_customer_message(redis, prefix, conversation_id)
    return decide(conversation_id, last, time.time() if now is None else now, from_agent=True)
