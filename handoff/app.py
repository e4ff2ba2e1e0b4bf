"""The agent service: agent API, web chat page. `create_app(settings)` builds it."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.escalations import EscalationStore, connect
from bot.messages import message
from bot.settings import Settings
from handoff.rasa_client import RasaClient, RasaError
from handoff.transcript import transcript

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).with_name("static")
MAX_REPLY_CHARS = 4000

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", EscalationStore)
RASA = web.AppKey("rasa", RasaClient)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def require_agent_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        expected = request.app[SETTINGS].agent_api_token
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(401, "missing or wrong agent token (Authorization: Bearer <AGENT_API_TOKEN>)")
    return await handler(request)


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "body must be JSON"}', content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}', content_type="application/json")
    return body


async def list_conversations(request: web.Request) -> web.Response:
    """Waiting conversations, longest waiting first, each with its transcript."""
    items = []
    for escalation in await request.app[STORE].waiting():
        tracker = await request.app[RASA].tracker(escalation.conversation_id)
        items.append({"escalation": escalation.__dict__, "transcript": transcript(tracker)})
    return web.json_response({"conversations": items})


async def get_conversation(request: web.Request) -> web.Response:
    conversation_id = request.match_info["conversation_id"]
    escalation = await request.app[STORE].current_for(conversation_id)
    tracker = await request.app[RASA].tracker(conversation_id)
    if escalation is None and not tracker.get("events"):
        return _error(404, f"no conversation {conversation_id!r}")
    return web.json_response(
        {
            "escalation": escalation.__dict__ if escalation else None,
            "paused": bool(tracker.get("paused")),
            "transcript": transcript(tracker),
        }
    )


async def reply(request: web.Request) -> web.Response:
    """An agent's message, delivered on the channel the customer last used."""
    conversation_id = request.match_info["conversation_id"]
    body = await _json_body(request)
    text, agent = body.get("text"), body.get("agent") or "Agent"
    if not isinstance(text, str) or not text.strip():
        return _error(400, "'text' must be a non-empty string")
    if len(text) > MAX_REPLY_CHARS:
        return _error(413, f"'text' is longer than {MAX_REPLY_CHARS} characters")
    if await request.app[STORE].current_for(conversation_id) is None:
        return _error(409, "this conversation is not handed to agents; nothing was sent")
    event = {
        "event": "bot",
        "text": text.strip(),
        "metadata": {"agent": str(agent)},
        "data": {"custom": {"agent": {"name": str(agent)}}},
    }
    await request.app[RASA].append_events(conversation_id, [event], deliver=True)
    return web.json_response({"status": "sent"}, status=201)


async def hand_back(request: web.Request) -> web.Response:
    """Return the conversation to the bot, which answers the customer's next message."""
    conversation_id = request.match_info["conversation_id"]
    store = request.app[STORE]
    escalation = await store.current_for(conversation_id)
    if escalation is None:
        return _error(409, "this conversation is not handed to agents")
    await request.app[RASA].append_events(
        conversation_id,
        [
            {"event": "resume"},
            {"event": "slot", "name": "handoff_id", "value": None},
            {"event": "slot", "name": "misunderstandings", "value": 0},
            {"event": "bot", "text": message("back_to_bot", escalation.language)},
            # The bot listens again: without this the policies see messages that arrived
            # while paused as one turn after action_handoff and repeat it.
            {"event": "action", "name": "action_listen"},
        ],
        deliver=True,
    )
    await store.close(escalation.id, "returned_to_bot")
    return web.json_response({"status": "returned_to_bot", "escalation": escalation.id})


async def webchat_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response({"rasa_port": settings.rasa_port, "rasa_url": settings.public_rasa_url})


async def index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def rasa_failed(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RasaError as exc:
        logger.warning("rasa request failed: %s", exc)
        return _error(502, "the bot server did not accept the request; try again")
    except aiohttp.ClientError:
        return _error(503, "the bot server is not reachable; try again")


def create_app(settings: Settings) -> web.Application:
    if not settings.agent_api_token:
        raise ValueError("AGENT_API_TOKEN is not set; agents authenticate with it")
    app = web.Application(middlewares=[web.middleware(rasa_failed), require_agent_token], client_max_size=64 * 1024)
    app[SETTINGS] = settings

    async def resources(app: web.Application):  # noqa: ANN202 - aiohttp cleanup context
        redis = connect(settings.redis_url)
        session = aiohttp.ClientSession()
        app[STORE] = EscalationStore(redis, settings.redis_prefix)
        app[RASA] = RasaClient(session, settings.rasa_url, settings.rasa_token)
        yield
        await session.close()
        await redis.aclose() if hasattr(redis, "aclose") else await redis.close()

    app.cleanup_ctx.append(resources)
    app.add_routes(
        [
            web.get("/", index),
            web.get("/health", health),
            web.get("/webchat/config", webchat_config),
            web.static("/static", STATIC_DIR),
            web.get("/api/conversations", list_conversations),
            web.get("/api/conversations/{conversation_id}", get_conversation),
            web.post("/api/conversations/{conversation_id}/messages", reply),
            web.post("/api/conversations/{conversation_id}/handback", hand_back),
        ]
    )
    return app


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    web.run_app(
        create_app(settings), host=settings.host, port=settings.agent_service_port, access_log_format="%r %s %b %Tf"
    )


if __name__ == "__main__":
    main()
