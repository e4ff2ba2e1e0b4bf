"""Client for the Rasa server's HTTP API (conversations, events, actions)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp


class RasaError(RuntimeError):
    """The Rasa server refused or failed a request."""


class RasaClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token

    async def _request(self, method: str, path: str, params: dict[str, str] | None = None, json: Any = None) -> Any:
        params = {**(params or {}), **({"token": self.token} if self.token else {})}
        url = f"{self.base_url}{path}"
        async with self.session.request(
            method, url, params=params, json=json, timeout=aiohttp.ClientTimeout(total=15)
        ) as response:
            if response.status >= 400:
                raise RasaError(f"Rasa answered {response.status} to {method} {path}: {await response.text()}")
            return await response.json()

    def _conversation(self, conversation_id: str) -> str:
        return f"/conversations/{quote(conversation_id, safe='')}"

    async def tracker(self, conversation_id: str) -> dict[str, Any]:
        return await self._request("GET", self._conversation(conversation_id) + "/tracker")

    async def parse(self, text: str) -> dict[str, Any]:
        """What the bot's NLU understands of `text` (intent, entities, language)."""
        return await self._request("POST", "/model/parse", json={"text": text})

    async def append_events(
        self, conversation_id: str, events: list[dict[str, Any]], deliver: bool = False
    ) -> dict[str, Any]:
        """Add events; with `deliver`, bot messages among them go out on the customer's channel."""
        params = {"output_channel": "latest", "execute_side_effects": "true"} if deliver else {}
        return await self._request(
            "POST", self._conversation(conversation_id) + "/tracker/events", params=params, json=events
        )

    async def execute(self, conversation_id: str, action: str) -> dict[str, Any]:
        """Run an action under the conversation's lock; its messages go out on the customer's channel."""
        return await self._request(
            "POST",
            self._conversation(conversation_id) + "/execute",
            params={"output_channel": "latest"},
            json={"name": action},
        )
