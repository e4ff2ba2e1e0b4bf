"""The agent API fuzzed with schemathesis from its own OpenAPI description, against the running service.

Every operation gets generated requests, valid and invalid, as a logged-in admin: the
service must never answer 500, and what it answers must match the description.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from bot.stack import Stack
from tests.agent_client import PASSWORD, ensure_account

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parent.parent / "handoff" / "openapi.json"
schema = schemathesis.openapi.from_path(str(SPEC)).exclude(
    path=["/api/logout", "/api/ws"]  # logging out would end the fuzzer's own session; a websocket is not HTTP
)


@pytest.fixture(scope="module")
def admin_token(stack: Stack) -> str:
    import asyncio
    import json
    import urllib.request

    asyncio.run(ensure_account(stack.settings, "fuzzadmin", "admin", "Fuzz"))
    request = urllib.request.Request(
        f"http://{stack.settings.host}:{stack.settings.agent_service_port}/api/login",
        data=json.dumps({"username": "fuzzadmin", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["token"]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_agent_api_holds_to_its_description(case, stack: Stack, admin_token: str) -> None:
    case.call_and_validate(
        base_url=f"http://{stack.settings.host}:{stack.settings.agent_service_port}",
        headers={"Authorization": f"Bearer {admin_token}"},
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
