"""Meta as the tests play it: the channels' test settings, and webhook deliveries shaped like Meta's.

Payload shapes follow Meta's documentation: Messenger's `messages`/`messaging_postbacks`
webhook events, and the WhatsApp Cloud API's `messages` field changes (messages, statuses).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import aiohttp

from bot.stack import Stack
from tests.graph_stand_in import MESSENGER_TOKEN, PHONE_NUMBER_ID, TEMPLATE_LANGUAGE, TEMPLATE_NAME, WHATSAPP_TOKEN

MESSENGER_APP_SECRET = "test-messenger-app-secret-" + secrets.token_hex(8)
WHATSAPP_APP_SECRET = "test-whatsapp-app-secret-" + secrets.token_hex(8)
MESSENGER_VERIFY_TOKEN = "messenger-verify-" + secrets.token_hex(4)
WHATSAPP_VERIFY_TOKEN = "whatsapp-verify-" + secrets.token_hex(4)
PAGE_ID = "104998123456789"
WABA_ID = "102290129340398"
DISPLAY_NUMBER = "48221234567"


def channel_env(graph_api_url: str) -> dict[str, str]:
    """What the Rasa process needs to run both channels against the stand-in."""
    return {
        "META_GRAPH_API_URL": graph_api_url,
        "MESSENGER_PAGE_ACCESS_TOKEN": MESSENGER_TOKEN,
        "MESSENGER_APP_SECRET": MESSENGER_APP_SECRET,
        "MESSENGER_VERIFY_TOKEN": MESSENGER_VERIFY_TOKEN,
        "WHATSAPP_ACCESS_TOKEN": WHATSAPP_TOKEN,
        "WHATSAPP_APP_SECRET": WHATSAPP_APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": WHATSAPP_VERIFY_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_TEMPLATE_NAME": TEMPLATE_NAME,
        "WHATSAPP_TEMPLATE_LANGUAGE": TEMPLATE_LANGUAGE,
    }


def new_psid() -> str:
    return str(secrets.randbelow(10**15) + 10**15)


def new_wa_id() -> str:
    return "4860" + str(secrets.randbelow(10**7)).zfill(7)


def now_ms() -> int:
    return int(time.time() * 1000)


# --- Messenger ---------------------------------------------------------------------------


def messenger_text(psid: str, text: str, mid: str | None = None, quick_reply: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"mid": mid or "m_" + secrets.token_urlsafe(24), "text": text}
    if quick_reply:
        message["quick_reply"] = {"payload": quick_reply}
    return {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(), "message": message}


def messenger_attachment(psid: str, kind: str = "image") -> dict[str, Any]:
    attachment = {"type": kind, "payload": {"url": "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg"}}
    message = {"mid": "m_" + secrets.token_urlsafe(24), "attachments": [attachment]}
    return {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(), "message": message}


def messenger_postback(psid: str, title: str, payload: str) -> dict[str, Any]:
    postback = {"mid": "m_" + secrets.token_urlsafe(24), "title": title, "payload": payload}
    return {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(), "postback": postback}


def messenger_delivery(*entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One webhook delivery; each argument is one entry's `messaging` list."""
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": now_ms(), "messaging": list(e)} for e in entries]}


# --- WhatsApp ----------------------------------------------------------------------------


def whatsapp_text(wa_id: str, text: str, wamid: str | None = None) -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": wamid or "wamid." + secrets.token_urlsafe(30),
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }


def whatsapp_button_reply(wa_id: str, reply_id: str, title: str) -> dict[str, Any]:
    return {
        "context": {"from": DISPLAY_NUMBER, "id": "wamid." + secrets.token_urlsafe(30)},
        "from": wa_id,
        "id": "wamid." + secrets.token_urlsafe(30),
        "timestamp": str(int(time.time())),
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}},
    }


def whatsapp_image(wa_id: str) -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": "wamid." + secrets.token_urlsafe(30),
        "timestamp": str(int(time.time())),
        "type": "image",
        "image": {"mime_type": "image/jpeg", "sha256": "x" * 44, "id": "1234567890"},
    }


def whatsapp_status(wamid: str, wa_id: str, status: str, errors: list[dict] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": wa_id}
    if errors:
        record["errors"] = errors
    return record


def whatsapp_delivery(
    messages: list[dict[str, Any]] = (),  # type: ignore[assignment]
    statuses: list[dict[str, Any]] = (),  # type: ignore[assignment]
    phone_number_id: str = PHONE_NUMBER_ID,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": phone_number_id},
    }
    if messages:
        value["contacts"] = [{"profile": {"name": "Kasia"}, "wa_id": m["from"]} for m in messages]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


# --- sending -----------------------------------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def post_webhook(
    http: aiohttp.ClientSession,
    stack: Stack,
    channel: str,
    payload: dict[str, Any],
    signature_header: str | None = "sign",
) -> tuple[int, Any]:
    """POST a delivery as Meta does; signed with the channel's app secret unless told otherwise."""
    body = json.dumps(payload).encode()
    secret = MESSENGER_APP_SECRET if channel == "messenger" else WHATSAPP_APP_SECRET
    headers = {"Content-Type": "application/json"}
    if signature_header == "sign":
        headers["X-Hub-Signature-256"] = signature(secret, body)
    elif signature_header is not None:
        headers["X-Hub-Signature-256"] = signature_header
    url = f"{stack.settings.rasa_url}/webhooks/{channel}/webhook"
    async with http.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def tracker_events(http: aiohttp.ClientSession, stack: Stack, conversation_id: str) -> list[dict[str, Any]]:
    url = f"{stack.settings.rasa_url}/conversations/{conversation_id}/tracker"
    async with http.get(url, params={"token": stack.settings.rasa_token}) as response:
        assert response.status == 200
        return (await response.json())["events"]


def answered_articles(events: list[dict[str, Any]]) -> list[str]:
    return [
        ((e.get("data") or {}).get("custom") or {}).get("kb_article")
        for e in events
        if e.get("event") == "bot" and ((e.get("data") or {}).get("custom") or {}).get("kb_article")
    ]


async def articles_answered(
    http: aiohttp.ClientSession, stack: Stack, conversation_id: str, count: int, timeout: float = 30
) -> list[str]:
    """The articles the bot answered with, once `count` are saved (the tracker is saved after the turn's sends)."""
    deadline = time.monotonic() + timeout
    while True:
        articles = answered_articles(await tracker_events(http, stack, conversation_id))
        if len(articles) >= count or time.monotonic() > deadline:
            return articles
        await asyncio.sleep(0.2)
