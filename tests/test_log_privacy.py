"""The running processes' logs carry no customer personal data and no tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from bot.stack import Stack
from tests.agent_client import PASSWORD, AgentClient, ensure_account
from tests.graph_stand_in import MESSENGER_TOKEN, WHATSAPP_TOKEN
from tests.meta_client import (
    MESSENGER_APP_SECRET,
    WHATSAPP_APP_SECRET,
    messenger_delivery,
    messenger_text,
    new_psid,
    new_wa_id,
    post_webhook,
    whatsapp_delivery,
    whatsapp_text,
)
from tests.webchat_client import WebChatCustomer

pytestmark = pytest.mark.e2e

EMAIL = "malgorzata.wisniewska@example.pl"
PHONE = "+48 601 987 654"
CARD = "4111 1111 1111 1111"
PERSONAL = f"Mój mail {EMAIL}, telefon {PHONE}, karta {CARD}: chcę rozmawiać z konsultantem"


async def test_logs_carry_no_personal_data_or_tokens(stack: Stack, http: aiohttp.ClientSession) -> None:
    # Personal data through every channel, an agent at work, and a failed login.
    async with http.post(
        f"{stack.settings.rasa_url}/webhooks/rest/webhook", json={"sender": "privacy-rest", "message": PERSONAL}
    ) as response:
        assert response.status == 200
    customer = await WebChatCustomer(stack.settings).connect()
    try:
        await customer.say(PERSONAL)
        await customer.next()
    finally:
        await customer.disconnect()
    psid, wa_id = new_psid(), new_wa_id()
    for channel, delivery in (
        ("messenger", messenger_delivery([messenger_text(psid, PERSONAL)])),
        ("whatsapp", whatsapp_delivery([whatsapp_text(wa_id, PERSONAL)])),
    ):
        assert (await post_webhook(http, stack, channel, delivery))[0] == 200
    await ensure_account(stack.settings, "anna", "agent", "Anna")
    anna = await AgentClient(http, stack.settings).login("anna")
    await anna.get("/api/conversations")
    await anna.post("/api/conversations/rest:privacy-rest/claim")
    await anna.post("/api/conversations/rest:privacy-rest/messages", {"text": f"Odpiszę na {EMAIL}"})
    async with http.post(anna.base + "/api/login", json={"username": EMAIL, "password": "wrong-" + PASSWORD}) as r:
        assert r.status == 401
    await asyncio.sleep(3)  # the Meta channels answer in the background

    secrets = {
        "email": EMAIL,
        "phone": PHONE,
        "phone digits": "601987654",
        "card": CARD,
        "card digits": CARD.replace(" ", ""),
        "WhatsApp number": wa_id,
        "Rasa API token": stack.settings.rasa_token,
        "web chat secret": stack.settings.webchat_session_secret,
        "web chat session token": customer.token,
        "agent session token": anna.token,
        "Messenger page token": MESSENGER_TOKEN,
        "WhatsApp token": WHATSAPP_TOKEN,
        "Messenger app secret": MESSENGER_APP_SECRET,
        "WhatsApp app secret": WHATSAPP_APP_SECRET,
    }
    logs = {path.name: path.read_text(encoding="utf-8", errors="replace") for path in Path(stack.log_dir).glob("*.log")}
    assert {"rasa.log", "actions.log", "agent-service.log"} <= logs.keys()
    assert sum(len(text) for text in logs.values()) > 1000  # the processes did log
    found = [(name, what) for name, text in logs.items() for what, value in secrets.items() if value in text]
    assert found == []


def test_no_secret_on_a_process_command_line(stack: Stack) -> None:
    """`ps` shows every user's command lines: the Rasa API token goes by environment instead."""
    command_lines = {
        name: Path(f"/proc/{process.pid}/cmdline").read_bytes().decode().replace("\0", " ")
        for name, process in stack.processes.items()
    }
    assert {"rasa", "actions", "agent-service"} <= command_lines.keys()
    assert "--enable-api" in command_lines["rasa"]
    leaked = [name for name, line in command_lines.items() if stack.settings.rasa_token in line]
    assert leaked == []
