"""A customer on the REST channel, as the end-to-end tests play one."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.stack import Stack


async def post_message(http: aiohttp.ClientSession, stack: Stack, sender: str, text: str) -> tuple[int, Any]:
    """Send `text` as `sender` ("rest:<sender>" or the bare sender); the status and the answer as sent."""
    url = f"{stack.settings.rasa_url}/webhooks/rest/webhook"
    async with http.post(url, json={"sender": sender.removeprefix("rest:"), "message": text}) as response:
        return response.status, await response.json(content_type=None)


async def say(http: aiohttp.ClientSession, stack: Stack, sender: str, text: str) -> list[dict[str, Any]]:
    """Send `text` and return the bot's messages; the channel must answer 200."""
    status, messages = await post_message(http, stack, sender, text)
    assert status == 200, (status, messages)
    return messages
