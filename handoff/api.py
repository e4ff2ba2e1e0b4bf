"""The agent API: the queue, one conversation, claiming, replying, notes, closing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from bot import offline
from bot.analytics import report
from bot.channels.delivery_window import agent_reply_delivery
from bot.contact import normalise_contact
from bot.conversations import conversation_exists
from bot.escalations import Escalation, TransitionError
from bot.kb.render import answer_text
from bot.settings import LANGUAGES
from handoff.context import ARTICLES, HUB, PROFILES, RASA, STORE, current_agent, error, json_body
from handoff.summary import summarise
from handoff.transcript import transcript

MAX_REPLY_CHARS = 4000
MAX_NOTE_CHARS = 4000
CANNED_REPLIES = Path(__file__).with_name("canned_replies.yml")


async def _open_escalation(request: web.Request) -> Escalation:
    escalation = await request.app[STORE].current_for(request.match_info["conversation_id"])
    if escalation is None:
        raise TransitionError("this conversation is not with agents (the bot owns it or it was closed)")
    return escalation


def _owned_by_caller(request: web.Request, escalation: Escalation) -> None:
    agent = current_agent(request)
    if escalation.status != "assigned":
        raise TransitionError("claim the conversation first")
    if escalation.owner != agent.username:
        raise TransitionError(f"{escalation.owner} owns this conversation", 403)


async def _replay_offline(request: web.Request, conversation_id: str) -> None:
    """Messages kept while the bot was down go into the conversation before what the agent does."""
    store, rasa = request.app[STORE], request.app[RASA]

    async def apply(events: list[dict[str, Any]]) -> None:
        await rasa.append_events(conversation_id, events)

    await offline.replay(store.redis, store.prefix, conversation_id, rasa.parse, apply)


def _with_waiting_time(escalation: Escalation) -> dict[str, Any]:
    return {**escalation.__dict__, "waiting_s": round(time.time() - escalation.created_at, 1)}


async def queue(request: web.Request) -> web.Response:
    """Open conversations, longest waiting first, each with a one-line summary."""
    items = []
    for escalation in await request.app[STORE].queue():
        summary = summarise(escalation, [{"from": "customer", **t} for t in escalation.turns], request.app[ARTICLES])
        items.append({"escalation": _with_waiting_time(escalation), "summary": summary["line"]})
    return web.json_response({"conversations": items})


async def conversation(request: web.Request) -> web.Response:
    """Everything an agent needs: transcript with the bot's understanding, summary, notes, history."""
    conversation_id = request.match_info["conversation_id"]
    store = request.app[STORE]
    history = await store.history(conversation_id)
    if not history and not await conversation_exists(store.redis, store.prefix, conversation_id):
        return error(404, f"no conversation {conversation_id!r}")
    current = next((e for e in history if e.is_open), None)
    shown = current or (history[0] if history else None)
    try:
        tracker = await request.app[RASA].tracker(conversation_id)
        lines, paused, bot_reachable = transcript(tracker), bool(tracker.get("paused")), True
    except (aiohttp.ClientError, asyncio.TimeoutError):  # the bot is down: what the escalation kept
        lines = [{"from": "customer", **turn} for turn in (shown.turns if shown else [])]
        paused, bot_reachable = True, False
    seen = {(line.get("text"), line.get("timestamp")) for line in lines}
    lines += [
        {
            "from": "customer",
            "text": m["text"],
            "timestamp": m["timestamp"],
            "channel": "webchat",
            "language": m["language"],
        }
        for m in await offline.pending(store.redis, store.prefix, conversation_id)
        if (m["text"], m["timestamp"]) not in seen
    ]
    earlier = [e for e in history if shown is None or e.id != shown.id]
    profile = await request.app[PROFILES].profile_of(conversation_id)
    linked = [c for c in profile.conversations if c != conversation_id] if profile else []
    for other in linked:
        earlier += await store.history(other)
    return web.json_response(
        {
            "conversation_id": conversation_id,
            "escalation": _with_waiting_time(shown) if shown else None,
            "paused": paused,
            "bot_reachable": bot_reachable,
            "summary": summarise(shown, lines, request.app[ARTICLES]) if shown else None,
            "transcript": lines,
            "notes": await store.notes(shown.id) if shown else [],
            "customer": {
                "linked_conversations": linked,
                "linked": [{"conversation_id": c, "channel": channel_of(c)} for c in linked],
                "contacts": profile.contacts if profile else [],
            },
            "earlier": [
                {
                    "id": e.id,
                    "conversation_id": e.conversation_id,
                    "created_at": e.created_at,
                    "status": e.status,
                    "reason": e.reason,
                    "channel": e.channel,
                    "first_message": (e.turns or [{}])[0].get("text"),
                }
                for e in sorted(earlier, key=lambda e: -e.created_at)
            ],
        }
    )


async def claim(request: web.Request) -> web.Response:
    """The caller becomes the single owner; an admin may give it to someone else with {"agent": name}."""
    agent = current_agent(request)
    body = await json_body(request) if request.can_read_body else {}
    target = body.get("agent") or agent.username
    if target != agent.username and not agent.is_admin:
        return error(403, "only admins may assign a conversation to someone else")
    escalation = await _open_escalation(request)
    claimed = await request.app[STORE].claim(escalation.id, str(target), reassign=agent.is_admin)
    return web.json_response({"escalation": claimed.__dict__})


async def reply(request: web.Request) -> web.Response:
    """The owner's message, delivered on the channel the customer last used."""
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return error(400, "'text' must be a non-empty string")
    if len(text) > MAX_REPLY_CHARS:
        return error(413, f"'text' is longer than {MAX_REPLY_CHARS} characters")
    escalation = await _open_escalation(request)
    _owned_by_caller(request, escalation)
    agent = current_agent(request)
    event = {
        "event": "bot",
        "text": text.strip(),
        "metadata": {"agent": agent.display_name, "agent_username": agent.username},
        "data": {"custom": {"agent": {"name": agent.display_name}}},
    }
    store = request.app[STORE]
    delivery = await agent_reply_delivery(store.redis, store.prefix, escalation.conversation_id)
    if not delivery.allowed:  # Messenger, 7 days after the customer's last message
        return web.json_response({"error": delivery.reason, "delivered": False, "reason": delivery.reason}, status=409)
    await _replay_offline(request, escalation.conversation_id)
    await request.app[RASA].append_events(escalation.conversation_id, [event], deliver=True)
    if delivery.via == "template":  # WhatsApp outside 24 hours: delivered when the customer answers the template
        return web.json_response(
            {"status": "pending", "delivered": False, "via": "template", "reason": delivery.reason}, status=202
        )
    return web.json_response({"status": "sent", "delivered": True, "via": delivery.via}, status=201)


async def add_note(request: web.Request) -> web.Response:
    body = await json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return error(400, "'text' must be a non-empty string")
    if len(text) > MAX_NOTE_CHARS:
        return error(413, f"'text' is longer than {MAX_NOTE_CHARS} characters")
    escalation = await _open_escalation(request)
    note = await request.app[STORE].add_note(escalation.id, current_agent(request).username, text.strip())
    return web.json_response({"note": note}, status=201)


async def _close(request: web.Request, action: str, status: str) -> web.Response:
    """Run the bot's hand-back action under Rasa's conversation lock, then close the escalation."""
    escalation = await _open_escalation(request)
    agent = current_agent(request)
    if escalation.status == "assigned" and escalation.owner != agent.username and not agent.is_admin:
        raise TransitionError(f"{escalation.owner} owns this conversation", 403)
    await _replay_offline(request, escalation.conversation_id)
    await request.app[RASA].execute(escalation.conversation_id, action)
    closed = await request.app[STORE].close(escalation.id, status, agent.username, admin=agent.is_admin)  # type: ignore[arg-type]
    return web.json_response({"status": closed.status, "escalation": closed.id})


async def hand_back(request: web.Request) -> web.Response:
    """The bot takes over again and answers the customer's next message."""
    return await _close(request, "action_hand_back", "returned_to_bot")


async def resolve(request: web.Request) -> web.Response:
    """Close as resolved; the customer's next message starts with the bot."""
    return await _close(request, "action_resolve", "resolved")


async def typing(request: web.Request) -> web.Response:
    escalation = await _open_escalation(request)
    _owned_by_caller(request, escalation)
    await request.app[HUB].publish_typing(escalation.conversation_id, "agent", current_agent(request).display_name)
    return web.json_response({"status": "ok"})


async def articles(request: web.Request) -> web.Response:
    """Articles to insert into a reply, in the requested language where they exist."""
    language = request.query.get("language", "en")
    if language not in LANGUAGES:
        return error(400, f"language must be one of {', '.join(LANGUAGES)}")
    library = request.app[ARTICLES]
    items = []
    for article_id in library.ids:
        article = library.get(article_id, language)
        if article:
            items.append(
                {"id": article.id, "title": article.title, "language": article.language, "text": answer_text(article)}
            )
    return web.json_response({"articles": sorted(items, key=lambda a: a["title"])})


async def canned_replies(request: web.Request) -> web.Response:
    language = request.query.get("language", "en")
    replies = yaml.safe_load(CANNED_REPLIES.read_text(encoding="utf-8"))
    agent = current_agent(request).display_name
    items = [
        {"name": name, "text": (texts.get(language) or texts["en"]).replace("{agent}", agent)}
        for name, texts in replies.items()
    ]
    return web.json_response({"replies": items})


async def analytics(request: web.Request) -> web.Response:
    """Containment, handoffs, articles, complaints and satisfaction (admins; definitions included)."""
    try:
        days = int(request.query.get("days", "30"))
    except ValueError:
        return error(400, "days must be a whole number")
    if not 1 <= days <= 366:
        return error(400, "days must be between 1 and 366")
    return web.json_response(await report(request.app[STORE].redis, request.app[STORE].prefix, days))


def channel_of(conversation_id: str) -> str:
    """Conversation ids carry their channel ("messenger:…", "whatsapp:…", "rest:…"); web chat ids are bare."""
    prefix, _, rest = conversation_id.partition(":")
    return prefix if rest and prefix in ("messenger", "whatsapp", "rest") else "webchat"


async def link(request: web.Request) -> web.Response:
    """The agent says this conversation and {"with": another conversation id, or an email or phone the
    customer gave} are the same customer."""
    body = await json_body(request)
    other = body.get("with")
    conversation_id = request.match_info["conversation_id"]
    if not isinstance(other, str) or not other.strip() or other == conversation_id:
        return error(400, "'with' must be the id of another conversation, or an email or phone number")
    other = other.strip()
    store = request.app[STORE]
    profiles = request.app[PROFILES]
    if not await conversation_exists(store.redis, store.prefix, conversation_id):
        return error(404, f"no conversation {conversation_id!r}")
    if not await conversation_exists(store.redis, store.prefix, other):
        contact = normalise_contact(other)
        owner = await profiles.profile_with_contact(contact) if contact else None
        if owner is None:
            return error(404, "no conversation with that id, and no customer who gave that email or phone")
        other = owner.conversations[0]
    if other == conversation_id:
        return error(400, "that contact already belongs to this conversation's customer")
    profile = await profiles.link(conversation_id, other)
    return web.json_response({"linked_conversations": profile.conversations})


async def unlink(request: web.Request) -> web.Response:
    """Take this conversation out of its customer profile."""
    await request.app[PROFILES].unlink(request.match_info["conversation_id"])
    return web.json_response({"status": "unlinked"})
