"""An agent's HTTP client for tests: logs in, and checks every response against the OpenAPI description."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema

from bot.escalations import connect
from bot.settings import Settings
from handoff.accounts import AccountError, Accounts

SPEC = json.loads((Path(__file__).resolve().parent.parent / "handoff" / "openapi.json").read_text())
PASSWORD = "correct horse battery"


def _operation(path: str, method: str) -> dict[str, Any]:
    for template, operations in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return operations[method.lower()]
    raise AssertionError(f"{method} {path} is not in handoff/openapi.json")


def check_against_spec(path: str, method: str, status: int, body: Any) -> None:
    responses = _operation(path, method)["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which openapi.json does not describe"
    schema = responses[str(status)].get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        resolver = jsonschema.RefResolver.from_schema(SPEC)
        jsonschema.Draft202012Validator(schema, resolver=resolver).validate(body)


async def ensure_account(settings: Settings, username: str, role: str = "agent", name: str = "") -> None:
    redis = connect(settings.redis_url)
    try:
        await Accounts(redis, settings.redis_prefix, 3600).create(username, PASSWORD, role, name)
    except AccountError as exc:
        if "taken" not in str(exc):
            raise
    finally:
        await redis.close()


class AgentClient:
    def __init__(self, http: aiohttp.ClientSession, settings: Settings) -> None:
        self.http = http
        self.base = f"http://{settings.host}:{settings.agent_service_port}"
        self.token = ""

    async def login(self, username: str, password: str = PASSWORD) -> AgentClient:
        status, body = await self.request("POST", "/api/login", {"username": username, "password": password})
        assert status == 200, body
        self.token = body["token"]
        return self

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as response:
            data = await response.json()
            check_against_spec(path.split("?")[0], method, response.status, data)
            return response.status, data

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.request("GET", path)

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.request("POST", path, body)

    def websocket(self) -> Any:
        return self.http.ws_connect(self.base + "/api/ws", headers={"Authorization": f"Bearer {self.token}"})
