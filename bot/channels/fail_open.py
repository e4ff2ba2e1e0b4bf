"""Fail open: when the bot cannot answer a message, say so and queue the conversation for people.

Rasa logs a failing or unreachable action server and carries on without a reply, so
the customer would see nothing. Every channel hands its messages to `handle_message`,
which waits at most TURN_TIMEOUT_S for the bot; when the turn fails, times out, or ends
without a word while the bot owns the conversation, the customer is told honestly, the
conversation is paused and an escalation (reason "bot_failure") joins the agents' queue.

When Redis itself does not answer, nothing can be kept (not the message, not the queue):
the customer is told so, in their message's language, and asked to write again.
A conversation over the rate limit (bot/channels/rate_limit.py) is asked to slow down.
Web chat messages kept while this server was down (bot/offline.py) are replayed first.
`handle_message` says which of these happened, so that a channel can answer 503 or 429.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from rasa.core.agent import Agent
from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.shared.core.events import BotUttered, ConversationPaused, Event, UserUttered
from redis.exceptions import RedisError
from sanic import Sanic

from bot import offline
from bot.business_hours import BusinessHours
from bot.channels.rate_limit import over_limit
from bot.escalations import Escalation, EscalationStore, connect, conversation_turns
from bot.language import choose_language
from bot.messages import message as text_of
from bot.settings import LANGUAGES, Settings

logger = logging.getLogger(__name__)
TURN_TIMEOUT_S = 20.0
Outcome = Literal["handled", "rate_limited", "unavailable"]
_store: EscalationStore | None = None


class CountingOutput(OutputChannel):
    """Passes messages on to the channel's output and counts them."""

    def __init__(self, inner: OutputChannel) -> None:
        self.inner = inner
        self.sent = 0

    def name(self) -> str:  # type: ignore[override]  # the wrapped channel's name
        return self.inner.name()

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        self.sent += 1
        await self.inner.send_response(recipient_id, message)


def _escalations(settings: Settings) -> EscalationStore:
    global _store
    if _store is None:
        _store = EscalationStore(connect(settings.redis_url), settings.redis_prefix)
    return _store


async def handle_message(on_new_message: Callable[[UserMessage], Awaitable[Any]], message: UserMessage) -> Outcome:
    """Let the bot answer `message`; if it cannot, fail open."""
    output = CountingOutput(message.output_channel)
    message.output_channel = output
    settings = Settings.from_env()
    try:
        limit = settings.rate_limit_window
        if limit and await over_limit(_escalations(settings).redis, settings.redis_prefix, message.sender_id, *limit):
            logger.warning("a conversation is over the rate limit of %s messages per %s s", *limit)
            slow_down = text_of("rate_limited", _language(message))
            await output.inner.send_response(message.sender_id, {"text": slow_down})
            return "rate_limited"
        agent: Agent = Sanic.get_app().ctx.agent
        if message.input_channel == "webchat":
            await replay_offline(agent, message.sender_id, settings)
        try:
            await asyncio.wait_for(on_new_message(message), TURN_TIMEOUT_S)
            failure = None
        except asyncio.TimeoutError:
            failure = f"no answer within {TURN_TIMEOUT_S:.0f} s"
        except Exception as exc:
            if _redis_down(exc):
                raise
            logger.exception("the bot failed on a message")
            failure = type(exc).__name__
        if failure is None and output.sent:
            return "handled"
        tracker = await agent.tracker_store.retrieve(message.sender_id)
        if failure is None and tracker is not None and tracker.is_paused():
            return "handled"  # with people: the message waits for an agent, the bot says nothing
        await fail_open(agent, message, output.inner, failure or "no answer from the bot")
        return "handled"
    except Exception as exc:
        if not _redis_down(exc):
            raise
        logger.error("Redis does not answer (%s): a customer's message could not be kept", type(exc).__name__)
        apology = text_of("storage_unavailable", _language(message))
        await output.inner.send_response(message.sender_id, {"text": apology})
        return "unavailable"


async def replay_offline(agent: Agent, sender: str, settings: Settings) -> None:
    """Messages the customer sent while this server was down come first (bot/offline.py)."""
    redis = _escalations(settings).redis
    if not await offline.pending(redis, settings.redis_prefix, sender):
        return

    async def parse(text: str) -> dict[str, Any]:
        return await agent.parse_message(UserMessage(text, sender_id=sender))

    async def apply(events: list[dict[str, Any]]) -> None:
        async with agent.lock_store.lock(sender):
            tracker = await agent.tracker_store.get_or_create_tracker(sender)
            for event in events:
                tracker.update(Event.from_parameters(event))
            await agent.tracker_store.save(tracker)

    replayed = await offline.replay(redis, settings.redis_prefix, sender, parse, apply)
    logger.info("replayed %d messages kept while the bot was down", replayed)


def _language(message: UserMessage) -> str:
    """The message's own language (the conversation's is in Redis, which may not answer)."""
    return choose_language(message.text or "", None, (message.metadata or {}).get("language")).language


def _redis_down(exc: BaseException | None) -> bool:
    """A Redis failure anywhere in the exception's chain (Rasa wraps some of them)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # a chain can loop back on itself
        if isinstance(exc, RedisError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


async def fail_open(agent: Agent, message: UserMessage, output: OutputChannel, failure: str) -> None:
    settings = Settings.from_env()
    sender = message.sender_id
    logger.warning("failing open for a conversation: %s", failure)
    async with agent.lock_store.lock(sender):
        tracker = await agent.tracker_store.get_or_create_tracker(sender)
        hint = (message.metadata or {}).get("language")
        language = tracker.get_slot("language") or (hint if hint in LANGUAGES else "en")
        if not any(isinstance(e, UserUttered) and e.message_id == message.message_id for e in tracker.events):
            # The turn was cut off before Rasa saved it: keep the message for the agent.
            tracker.update(
                UserUttered(message.text, input_channel=message.input_channel, message_id=message.message_id)
            )
        turns, offered = conversation_turns([e.as_dict() for e in tracker.events])
        is_open = BusinessHours.load(settings.business_hours_file).is_open(dt.datetime.now(dt.timezone.utc))
        payload: dict[str, Any] = {"handoff": {"status": "waiting" if is_open else "offline", "reason": "bot_failure"}}
        try:
            escalation = await _escalations(settings).open(
                Escalation(
                    conversation_id=sender,
                    reason="bot_failure",
                    language=language,
                    channel=message.input_channel or "unknown",
                    turns=turns,
                    articles_offered=offered,
                    after_hours=not is_open,
                )
            )
            payload["handoff"]["id"] = escalation.id
        except Exception:
            logger.exception("could not queue the conversation for agents")
        text = text_of("bot_unavailable", language)
        tracker.update(BotUttered(text, data={"custom": payload}))
        tracker.update(ConversationPaused())
        await agent.tracker_store.save(tracker)
    await output.send_response(sender, {"text": text, "custom": payload})
