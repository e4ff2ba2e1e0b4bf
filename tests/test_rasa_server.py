"""The Rasa server's compiled JSON Schema validation gives jsonschema's own verdicts and errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import rasa.core.run
from rasa.core.actions.action import RemoteAction
from rasa.shared.utils.schemas.events import EVENTS_SCHEMA
from rasa.utils.endpoints import EndpointConfig
from sanic import Sanic

from bot import rasa_server
from bot.settings import PROJECT_DIR

ANSWER = {
    "events": [
        {"event": "slot", "timestamp": None, "name": "language", "value": "pl"},
        {"event": "slot", "timestamp": None, "name": "kb_offered", "value": ["returns-how-to", "refund-time"]},
    ],
    "responses": [{"text": "Zwrot: Moje konto > Zamówienia", "buttons": [{"title": "👍", "payload": "/helpful"}]}],
}
BROKEN = [
    {"events": [{"event": "slot", "name": "language", "value": "pl", "timestamp": "yesterday"}]},
    {"events": [{"event": "no_such_event"}], "responses": []},
    {"events": [], "responses": "not a list"},
    {"events": {"event": "slot"}},
]


def verdict(validate: Any, instance: Any, schema: Any) -> tuple[str, list[Any]] | None:
    try:
        validate(instance, schema)
    except jsonschema.ValidationError as error:
        return error.message, list(error.absolute_path)
    return None


@pytest.mark.parametrize("instance", [ANSWER, *BROKEN])
def test_same_verdict_and_error_as_jsonschema(instance: dict[str, Any]) -> None:
    schema = RemoteAction.action_response_format_spec()
    assert verdict(rasa_server.validate, instance, schema) == verdict(rasa_server._original_validate, instance, schema)


def test_broken_action_responses_are_still_refused() -> None:
    schema = RemoteAction.action_response_format_spec()
    assert verdict(rasa_server.validate, ANSWER, schema) is None
    assert all(verdict(rasa_server.validate, broken, schema) for broken in BROKEN)


def test_a_different_schema_is_not_served_from_the_cache() -> None:
    events = ANSWER["events"]
    assert verdict(rasa_server.validate, events, EVENTS_SCHEMA) is None
    assert verdict(rasa_server.validate, events, {"type": "array", "maxItems": 1}) is not None


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """rasa_server.install() for one test, undone after it."""
    from rasa.shared.core.events import Event

    monkeypatch.setattr(jsonschema, "validate", jsonschema.validate)
    monkeypatch.setattr(Event, "resolve_by_type", Event.resolve_by_type)
    monkeypatch.setattr(rasa_server, "_original_resolve_by_type", None)
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    monkeypatch.setattr(rasa.core.run, "close_resources", rasa.core.run.close_resources)
    monkeypatch.setattr(rasa_server, "_original_close_resources", None)
    rasa_server.install()
    yield


def test_install_reaches_rasas_own_call(installed: None) -> None:
    rasa_server._compiled.cache_clear()
    action = RemoteAction("action_answer", None)
    assert action._validate_action_result(ANSWER) is True
    with pytest.raises(jsonschema.ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result(BROKEN[2])
    assert rasa_server._compiled.cache_info().hits == 1  # compiled on the first call, reused on the second


def test_event_classes_resolve_as_rasa_resolves_them(installed: None) -> None:
    from rasa.shared.core.events import ActionExecuted, Event, UserUttered
    from rasa.shared.utils.common import all_subclasses

    original = rasa_server._original_resolve_by_type
    assert Event.resolve_by_type is rasa_server.resolve_by_type
    for name in {cls.type_name for cls in all_subclasses(Event)}:
        assert Event.resolve_by_type(name) is original(name)
    assert Event.resolve_by_type("no_such_event", UserUttered) is UserUttered
    assert Event.resolve_by_type("topic") is None  # Rasa's backwards compatibility
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")
    events = [UserUttered("Jak zwrócić?").as_dict(), ActionExecuted("action_listen").as_dict()]
    assert [type(Event.from_parameters(e)).__name__ for e in events] == ["UserUttered", "ActionExecuted"]


# A stand-in action server: answers each call with the client's port, i.e. which connection it came on.
ACTION_SERVER = """
import sys
from aiohttp import web
async def webhook(request):
    await request.json()  # as a real action server does: a body left unread can end the connection
    port = request.transport.get_extra_info("peername")[1]
    return web.json_response({"events": [], "responses": [], "client_port": port})
app = web.Application()
app.router.add_post("/webhook", webhook)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def start_action_server(port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", ACTION_SERVER, str(port)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the stand-in action server did not start")


async def test_action_calls_share_a_connection_and_go_on_after_the_action_server_is_killed(
    installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Idle expiry is not what is tested (a loaded machine can stall past 2 s): only reuse, and the
    # dead connection being noticed when the server goes.
    monkeypatch.setattr(rasa_server, "KEEPALIVE_S", 60.0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
    server = start_action_server(port)
    try:
        first = [(await endpoint.request(json={"next_action": "action_x"}))["client_port"] for _ in range(3)]
        assert len(set(first)) == 1  # one connection for all three calls (Rasa's own: three)
        server.send_signal(signal.SIGKILL)
        server.wait()
        await asyncio.sleep(0.1)
        server = start_action_server(port)
        after = (await endpoint.request(json={"next_action": "action_x"}))["client_port"]
        assert after not in first  # the dead connection was not reused: a new one, and an answer
        kept = list(rasa_server._sessions.values())
        await rasa.core.run.close_resources(Sanic("stopping"), asyncio.get_running_loop())  # the server stops
        assert kept and all(session.closed for session in kept) and not rasa_server._sessions
    finally:
        server.kill()
        server.wait()


def test_workers_refuse_a_port_another_server_listens_on() -> None:
    """SO_REUSEPORT would let the workers share the port with a server left running: they refuse."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**os.environ, "SUPPORTBOT_RASA_WORKERS": "2", "RASA_TOKEN": "t", "PYTHONPATH": str(PROJECT_DIR)}
        command = [sys.executable, "-m", "bot.rasa_server", "run", "--enable-api", "--interface", "127.0.0.1"]
        done = subprocess.run([*command, "--port", str(port)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stdout


def test_the_api_needs_a_token() -> None:
    env = {**os.environ, "SUPPORTBOT_RASA_WORKERS": "1", "RASA_TOKEN": "", "PYTHONPATH": str(PROJECT_DIR)}
    command = [sys.executable, "-m", "bot.rasa_server", "run", "--enable-api", "--port", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "RASA_TOKEN is not set" in done.stderr


@pytest.mark.parametrize("token", ["-Lq3x_token", "plain-token", "--auth-token"])
def test_a_token_beginning_with_a_dash_reaches_rasa_as_the_token(
    installed: None, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    """Generated tokens (secrets.token_urlsafe) begin with "-" once in 64: Rasa's parser must take them whole."""
    from rasa.__main__ import create_argument_parser

    seen: list[Any] = []
    monkeypatch.setattr(sys, "argv", ["bot.rasa_server", "run", "--enable-api", "--port", "5005"])
    monkeypatch.setenv("RASA_TOKEN", token)
    monkeypatch.setattr("rasa.__main__.main", lambda: seen.append(create_argument_parser().parse_args(sys.argv[1:])))
    assert rasa_server.run_rasa() == 0
    assert seen[0].auth_token == token and seen[0].port == 5005


@pytest.mark.parametrize(
    ("argv", "port"),
    [
        (["run", "--port", "5010"], "5010"),
        (["run", "--port=5011"], "5011"),
        (["run", "-p", "5012"], "5012"),
        (["run"], "5005"),
    ],
)
def test_the_port_is_read_as_rasa_reads_it(monkeypatch: pytest.MonkeyPatch, argv: list[str], port: str) -> None:
    monkeypatch.setattr(sys, "argv", ["bot.rasa_server", *argv])
    assert rasa_server._argument(("-p", "--port"), "5005") == port
