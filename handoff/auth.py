"""Agents' login: session cookie (console) or Bearer token (API clients), roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from handoff.accounts import AccountError
from handoff.context import ACCOUNTS, AGENT, SETTINGS, current_agent, error, json_body

COOKIE = "supportbot_agent"
PUBLIC_API = {"/api/login", "/api/openapi.json"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.cookies.get(COOKIE, "")


@web.middleware
async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/") and request.path not in PUBLIC_API:
        account = await request.app[ACCOUNTS].session(_token(request))
        if account is None:
            return error(401, "log in first (POST /api/login); the session may have expired")
        request[AGENT] = account
    return await handler(request)


def admin_only(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if not current_agent(request).is_admin:
            return error(403, "only admins may do this")
        return await handler(request)

    return wrapped


async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return error(400, "'username' and 'password' are required")
    try:
        account = await request.app[ACCOUNTS].authenticate(username, password)
    except AccountError as exc:
        return error(429, str(exc))
    if account is None:
        return error(401, "wrong username or password")
    token = await request.app[ACCOUNTS].start_session(account)
    response = web.json_response({"agent": account.public(), "token": token})
    hours = request.app[SETTINGS].agent_session_hours
    response.set_cookie(
        COOKIE, token, max_age=int(hours * 3600), httponly=True, samesite="Strict", secure=request.secure, path="/"
    )
    return response


async def logout(request: web.Request) -> web.Response:
    await request.app[ACCOUNTS].end_session(_token(request))
    response = web.json_response({"status": "logged out"})
    response.del_cookie(COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    return web.json_response({"agent": current_agent(request).public()})


async def list_agents(request: web.Request) -> web.Response:
    return web.json_response({"agents": [a.public() for a in await request.app[ACCOUNTS].all()]})


async def create_agent(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        account = await request.app[ACCOUNTS].create(
            str(body.get("username", "")),
            str(body.get("password", "")),
            str(body.get("role", "agent")),
            str(body.get("display_name", "")),
        )
    except AccountError as exc:
        return error(400, str(exc))
    return web.json_response({"agent": account.public()}, status=201)
