"""A customer on the REST channel, as the end-to-end tests play one."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
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


async def say_until(
    http: aiohttp.ClientSession,
    stack: Stack,
    text: str,
    wanted: Callable[[list[dict[str, Any]]], bool],
    seconds: float = 20.0,
    prefix: str = "poll-",
) -> tuple[list[dict[str, Any]], float]:
    """Send `text` in a new conversation each time until `wanted(messages)`: the messages and the time it took.

    For what the running assistant picks up within seconds (edited article files)."""
    started = time.monotonic()
    messages: list[dict[str, Any]] = []
    while time.monotonic() - started < seconds:
        messages = await say(http, stack, prefix + secrets.token_hex(4), text)
        if wanted(messages):
            return messages, time.monotonic() - started
        await asyncio.sleep(0.5)
    raise AssertionError(f"no wanted answer after {seconds} s; last: {messages}")
