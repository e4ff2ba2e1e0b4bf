"""The agent service: agent console and API, web chat page. `create_app(settings)` builds it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.abc import AbstractAccessLogger

from bot import offline
from bot.conversations import conversation_exists
from bot.escalations import EscalationStore, TransitionError, connect
from bot.kb.articles import ArticleLibrary, load_articles
from bot.profiles import Profiles
from bot.session_tokens import valid_session
from bot.settings import Settings
from handoff import api, auth
from handoff.accounts import Accounts
from handoff.context import ACCOUNTS, ARTICLES, HUB, PROFILES, RASA, SETTINGS, STORE, current_agent, error
from handoff.live import LiveHub
from handoff.rasa_client import RasaClient, RasaError
from handoff.webchat_offline import webchat_offline

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).with_name("static")
OPENAPI = Path(__file__).with_name("openapi.json")
Handler = auth.Handler


@web.middleware
async def translate_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except TransitionError as exc:
        return error(exc.status, str(exc))
    except RasaError as exc:
        logger.warning("rasa request failed: %s", exc)
        return error(502, "the bot server did not accept the request; try again")
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return error(503, "the bot server is not reachable; try again")


async def agents_socket(request: web.Request) -> web.WebSocketResponse:
    """Live updates for a logged-in console (queue changes, messages, typing, notes)."""
    ws = web.WebSocketResponse(heartbeat=25)
    await ws.prepare(request)
    hub = request.app[HUB]
    hub.agents.add(ws)
    await ws.send_json({"type": "hello", "agent": current_agent(request).public()})
    try:
        async for _ in ws:  # the console talks over HTTP; this socket only listens
            pass
    finally:
        hub.agents.discard(ws)
    return ws


async def customer_socket(request: web.Request) -> web.WebSocketResponse:
    """The web chat page's side channel for typing indicators; needs the signed session."""
    session_id, token = request.query.get("session_id"), request.query.get("token")
    if not valid_session(request.app[SETTINGS].webchat_session_secret, session_id, token):
        raise web.HTTPForbidden(text="invalid web chat session")
    ws = web.WebSocketResponse(heartbeat=25)
    await ws.prepare(request)
    hub = request.app[HUB]
    hub.customers[session_id].add(ws)
    try:
        async for msg in ws:
            typing = msg.type == WSMsgType.TEXT and msg.data == '{"type":"typing"}'
            if typing and session_id in hub.open_conversations:
                await hub.publish_typing(session_id, "customer")
    finally:
        hub.customers[session_id].discard(ws)
        if not hub.customers[session_id]:
            del hub.customers[session_id]
    return ws


async def webchat_history(request: web.Request) -> web.Response:
    """The customer's own conversation, so a reopened page shows replies sent while it was closed."""
    session_id, token = request.query.get("session_id"), request.query.get("token")
    if not valid_session(request.app[SETTINGS].webchat_session_secret, session_id, token):
        return error(403, "invalid web chat session")
    store = request.app[STORE]
    kept = []  # messages kept while the bot was down (bot/offline.py), not yet in the conversation
    for message in await offline.pending(store.redis, store.prefix, str(session_id)):
        kept += [{"from": "customer", "text": message["text"]}, {"from": "bot", "text": message["answer"]}]
    if not await conversation_exists(store.redis, store.prefix, str(session_id)):
        return web.json_response({"messages": kept})
    tracker = await request.app[RASA].tracker(str(session_id))
    return web.json_response({"messages": customer_view(tracker.get("events", [])) + kept})


def customer_view(events: list[dict]) -> list[dict]:
    """The messages as the customer saw them: a clicked button shows as its title."""
    messages: list[dict] = []
    buttons: list[dict] = []
    for event in events:
        text = event.get("text")
        if event.get("event") == "user" and text:
            if text.startswith("/"):
                text = next((b.get("title") for b in buttons if b.get("payload") == text), None)
            if text:
                messages.append({"from": "customer", "text": text})
        elif event.get("event") == "bot" and text:
            data = event.get("data") or {}
            custom = data.get("custom") or {}
            buttons = data.get("buttons") or []
            agent = (event.get("metadata") or {}).get("agent")
            messages.append(
                {
                    "from": "agent" if agent else "bot",
                    "agent": agent,
                    "text": text,
                    "buttons": [{"title": b.get("title"), "payload": b.get("payload")} for b in buttons],
                    "kb_article": custom.get("kb_article"),
                }
            )
    return messages[-200:]


async def webchat_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response({"rasa_port": settings.rasa_port, "rasa_url": settings.public_rasa_url})


async def openapi(_: web.Request) -> web.FileResponse:
    return web.FileResponse(OPENAPI)


def page(name: str) -> Handler:
    async def handler(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})

    return handler


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def routes() -> list[web.RouteDef]:
    """The whole HTTP surface of the agent service (described in openapi.json)."""
    return [
        web.get("/", page("index.html")),
        web.get("/console", page("console.html")),
        web.get("/analytics", page("analytics.html")),
        web.get("/health", health),
        web.get("/webchat/config", webchat_config),
        web.get("/webchat/history", webchat_history),
        web.get("/webchat/ws", customer_socket),
        web.post("/webchat/offline", webchat_offline),
        web.static("/static", STATIC_DIR),
        web.get("/api/openapi.json", openapi),
        web.post("/api/login", auth.login),
        web.post("/api/logout", auth.logout),
        web.get("/api/me", auth.me),
        web.get("/api/agents", auth.admin_only(auth.list_agents)),
        web.post("/api/agents", auth.admin_only(auth.create_agent)),
        web.get("/api/ws", agents_socket),
        web.get("/api/conversations", api.queue),
        web.get("/api/conversations/{conversation_id}", api.conversation),
        web.post("/api/conversations/{conversation_id}/claim", api.claim),
        web.post("/api/conversations/{conversation_id}/messages", api.reply),
        web.post("/api/conversations/{conversation_id}/notes", api.add_note),
        web.post("/api/conversations/{conversation_id}/typing", api.typing),
        web.post("/api/conversations/{conversation_id}/handback", api.hand_back),
        web.post("/api/conversations/{conversation_id}/resolve", api.resolve),
        web.post("/api/conversations/{conversation_id}/link", api.link),
        web.post("/api/conversations/{conversation_id}/unlink", api.unlink),
        web.get("/api/articles", api.articles),
        web.get("/api/canned-replies", api.canned_replies),
        web.get("/api/analytics", auth.admin_only(api.analytics)),
    ]


def create_app(settings: Settings) -> web.Application:
    if not settings.webchat_session_secret:
        raise ValueError("WEBCHAT_SESSION_SECRET is not set; the launcher generates it (bot/assistant up)")
    app = web.Application(middlewares=[translate_errors, auth.require_login], client_max_size=64 * 1024)
    app[SETTINGS] = settings

    async def resources(app: web.Application) -> AsyncIterator[None]:
        redis = connect(settings.redis_url)
        session = aiohttp.ClientSession()
        store = EscalationStore(redis, settings.redis_prefix)
        app[STORE] = store
        app[RASA] = RasaClient(session, settings.rasa_url, settings.rasa_token)
        app[ACCOUNTS] = Accounts(redis, settings.redis_prefix, int(settings.agent_session_hours * 3600))
        app[ARTICLES] = ArticleLibrary(load_articles(settings.articles_dir))
        app[HUB] = LiveHub(redis, store)
        app[PROFILES] = Profiles(redis, settings.redis_prefix)
        reader = asyncio.create_task(app[HUB].run())
        yield
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        for ws in [*app[HUB].agents, *(w for group in app[HUB].customers.values() for w in group)]:
            await ws.close()
        await session.close()
        await redis.close()

    app.cleanup_ctx.append(resources)
    app.add_routes(routes())
    return app


class PathOnlyAccessLogger(AbstractAccessLogger):
    """One line per request with the path only: no query strings (web chat tokens), no bodies, no headers."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s -> %s, %s bytes, %.1f ms", request.method, request.path, response.status, response.body_length,
            time * 1000,
        )  # fmt: skip


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.agent_service_port,
        access_log_class=PathOnlyAccessLogger,
    )


if __name__ == "__main__":
    main()
