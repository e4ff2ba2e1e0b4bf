"""The web chat's way in when the Rasa server is down: the message goes to people, not nowhere.

The page posts here when its socket to the bot is gone. The message is kept (bot/offline.py)
and replayed into the conversation once the bot is back; the conversation joins the agents'
queue with reason "bot_failure", and the customer is told so honestly, in their language.
"""

from __future__ import annotations

import datetime as dt
import json

from aiohttp import web

from bot import offline
from bot.business_hours import BusinessHours
from bot.channels.rate_limit import over_limit
from bot.escalations import STREAM_MAXLEN, Escalation
from bot.language import choose_language
from bot.messages import message as text_of
from bot.session_tokens import valid_session
from handoff.context import SETTINGS, STORE, error, json_body

MAX_TEXT_CHARS = 4000


async def webchat_offline(request: web.Request) -> web.Response:
    """Keep a message the bot could not receive and queue the conversation for agents."""
    body = await json_body(request)
    settings, store = request.app[SETTINGS], request.app[STORE]
    session_id, text = body.get("session_id"), body.get("text")
    if not valid_session(settings.webchat_session_secret, session_id, body.get("token")):
        return error(403, "invalid web chat session")
    if not isinstance(text, str) or not text.strip():
        return error(400, "'text' must be a non-empty string")
    if len(text) > MAX_TEXT_CHARS:
        return error(413, f"'text' is longer than {MAX_TEXT_CHARS} characters")
    hint = body.get("language") if isinstance(body.get("language"), str) else None
    language = choose_language(text, None, hint).language
    limit = settings.rate_limit_window
    if limit and await over_limit(store.redis, store.prefix, str(session_id), *limit):
        return web.json_response({"text": text_of("rate_limited", language)}, status=429)

    answer = text_of("bot_unavailable", language)
    kept = await offline.keep(store.redis, store.prefix, str(session_id), text.strip(), language, answer)
    is_open = BusinessHours.load(settings.business_hours_file).is_open(dt.datetime.now(dt.timezone.utc))
    turn = {
        "text": kept["text"],
        "intent": None,
        "confidence": 0.0,
        "language": language,
        "timestamp": kept["timestamp"],
    }
    escalation = await store.open(
        Escalation(
            conversation_id=str(session_id),
            reason="bot_failure",
            language=language,
            channel="webchat",
            turns=[turn],
            articles_offered=[],
            after_hours=not is_open,
        )
    )
    # An agent who already has the conversation open sees the message arrive.
    event = {"event": "user", "text": kept["text"], "timestamp": kept["timestamp"], "input_channel": "webchat"}
    record = {"kind": "tracker", "conversation_id": str(session_id), "event": json.dumps(event, ensure_ascii=False)}
    await store.redis.xadd(store.stream, record, maxlen=STREAM_MAXLEN, approximate=True)
    handoff = {"status": "waiting" if is_open else "offline", "reason": "bot_failure", "id": escalation.id}
    return web.json_response({"text": text_of("bot_unavailable", language), "custom": {"handoff": handoff}}, status=202)
