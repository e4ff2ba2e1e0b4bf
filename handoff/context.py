"""What the agent service's handlers share, kept on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from bot.escalations import EscalationStore
from bot.kb.articles import ArticleLibrary
from bot.profiles import Profiles
from bot.settings import Settings
from handoff.accounts import Account, Accounts
from handoff.live import LiveHub
from handoff.rasa_client import RasaClient

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", EscalationStore)
RASA = web.AppKey("rasa", RasaClient)
ACCOUNTS = web.AppKey("accounts", Accounts)
HUB = web.AppKey("hub", LiveHub)
ARTICLES = web.AppKey("articles", ArticleLibrary)
PROFILES = web.AppKey("profiles", Profiles)
AGENT = "agent"  # request key of the logged-in Account


def current_agent(request: web.Request) -> Account:
    return request[AGENT]


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "body must be JSON"}', content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}', content_type="application/json")
    return body
