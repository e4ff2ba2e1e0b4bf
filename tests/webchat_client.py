"""A web chat customer for tests: Rasa's socket.io channel, as the page uses it."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from bot.settings import Settings


class WebChatCustomer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.client = socketio.AsyncClient()
        self.client.on("bot_uttered", self.received.put)
        self.session_id = ""
        self.token = ""

    async def connect(self, session_id: str | None = None, token: str | None = None) -> WebChatCustomer:
        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.client.on("session_confirm", lambda data: confirmed.done() or confirmed.set_result(data))
        # websocket, as the page: long polling would need every request at the same Rasa worker
        await self.client.connect(self.settings.rasa_url, socketio_path="/socket.io", transports=["websocket"])
        await self.client.emit("session_request", {"session_id": session_id, "token": token})
        session = await asyncio.wait_for(confirmed, 10)
        self.session_id, self.token = session["session_id"], session["token"]
        return self

    async def say(self, text: str) -> None:
        await self.client.emit("user_uttered", {"message": text})

    async def next(self, timeout: float = 30) -> dict[str, Any]:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.received.get(), seconds)
        except asyncio.TimeoutError:
            return True
        return False

    async def disconnect(self) -> None:
        await self.client.disconnect()
