"""Starts the Rasa server (`python -m bot.rasa_server run ...`, same arguments as `rasa run`).

What differs from `python -m rasa run`:

- SUPPORTBOT_RASA_WORKERS (default 2) Rasa servers share the port, each in its own process
  (see `serve_workers`).
- JSON Schema validators are compiled once per schema. Rasa calls `jsonschema.validate`
  on every action server response and on every `POST .../tracker/events`; that function
  checks the schema itself against the meta-schema and compiles it again each time, which
  cost 16.7 ms of a knowledge-base turn's ~37 ms of CPU (py-spy under `bench load`).
  A compiled validator gives the same errors in 0.7 ms.
- Event classes are looked up by type name in a dictionary. Rasa walks every subclass of
  `Event` for each event it reads back from the tracker store (8.5% of the server's time).
- HTTP sessions to the action server are kept open (`kept_session`). Rasa opens a new
  aiohttp session, and so a new TCP connection, for every action call: 4.1% of a worker's
  time under `bench load` (py-spy), plus the action server's accepting it.
- The API token comes from the RASA_TOKEN environment variable, so it does not show in
  the process list (`ps`), as `--auth-token` on the command line would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import sys
from typing import Any

import aiohttp
import jsonschema
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

_original_validate = jsonschema.validate


@functools.lru_cache(maxsize=64)
def _compiled(schema_json: str) -> Validator:
    schema = json.loads(schema_json)
    cls = validator_for(schema)
    cls.check_schema(schema)  # once, as jsonschema.validate would on every call
    return cls(schema)


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """`jsonschema.validate` with the compiled validator kept: same result, same error."""
    if cls is not None or args or kwargs:
        return _original_validate(instance, schema, cls, *args, **kwargs)
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):  # not plain JSON: nothing to key the cache on
        return _original_validate(instance, schema)
    error = best_match(_compiled(key).iter_errors(instance))
    if error is not None:
        raise error


def _event_classes() -> dict[str, type]:
    """Event type name -> class, the first in Rasa's own search order winning, as in resolve_by_type."""
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    found: dict[str, type] = {}
    for cls in all_subclasses(Event):
        found.setdefault(cls.type_name, cls)
    return found


_original_resolve_by_type: Any = None
_classes: dict[str, type] = {}


def resolve_by_type(type_name: str, default: Any = None) -> Any:
    """`Event.resolve_by_type` without walking the class tree for every event of every tracker read."""
    cls = _classes.get(type_name)
    if cls is None:
        _classes.update(_event_classes())  # event classes imported since (plugins) join on a miss
        cls = _classes.get(type_name)
    return cls if cls is not None else _original_resolve_by_type(type_name, default)


# Below the action server's own keep-alive (Sanic's KEEP_ALIVE_TIMEOUT, 5 s): a connection
# is never reused just as the server closes it for being idle.
KEEPALIVE_S = 2.0
_sessions: dict[tuple[Any, ...], aiohttp.ClientSession] = {}


def kept_session(endpoint: Any) -> contextlib.AbstractAsyncContextManager[aiohttp.ClientSession]:
    """`EndpointConfig.session()`, which Rasa only uses as `async with endpoint.session() as session`:
    the same open session each time for the same headers and credentials in this event loop.

    Rasa's own creates one per request and closes it afterwards. The settings are Rasa's own
    (headers, basic auth, its 5-minute total timeout); a connection the action server closed, or
    that a timed-out turn abandoned, is dropped from the pool and the next call opens a new one.
    """
    from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT

    loop = asyncio.get_running_loop()
    auth = endpoint.basic_auth
    key = (loop, json.dumps(endpoint.headers, sort_keys=True, default=str), json.dumps(auth, sort_keys=True))
    session = _sessions.get(key)
    if session is None or session.closed:
        for old in [k for k in _sessions if k[0].is_closed()]:  # sessions of loops that have ended
            del _sessions[old]
        session = aiohttp.ClientSession(
            headers=endpoint.headers,
            auth=aiohttp.BasicAuth(auth["username"], auth["password"]) if auth else None,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S),
        )
        _sessions[key] = session
    return contextlib.nullcontext(session)


async def close_kept_sessions() -> None:
    """Close this event loop's kept sessions (when the server stops)."""
    loop = asyncio.get_running_loop()
    for key in [k for k in _sessions if k[0] is loop]:
        await _sessions.pop(key).close()


async def _close_resources(app: Any, loop: Any) -> None:
    """Rasa's own `after_server_stop` listener, then the kept sessions."""
    await _original_close_resources(app, loop)
    await close_kept_sessions()


_original_close_resources: Any = None


def install() -> None:
    """Rasa imports `validate` from jsonschema inside its functions, so this reaches every call."""
    global _original_resolve_by_type, _original_close_resources
    import rasa.core.run
    from rasa.shared.core.events import Event
    from rasa.utils.endpoints import EndpointConfig

    jsonschema.validate = validate
    EndpointConfig.session = kept_session
    if _original_close_resources is None:  # serve_application registers it by its module name
        _original_close_resources = rasa.core.run.close_resources
        rasa.core.run.close_resources = _close_resources
    if _original_resolve_by_type is None:
        _original_resolve_by_type = Event.resolve_by_type
        Event.resolve_by_type = staticmethod(resolve_by_type)


def listen_with_reuse_port() -> None:
    """Make Sanic listen on its own SO_REUSEPORT socket, so that several processes share the port.

    The kernel then spreads new connections evenly over the processes. Sanic's own workers
    (SANIC_WORKERS) share one accepting socket instead, and there the idle-longest process
    wins: under `bench load` one worker held 30 of 41 connections and ran at 87% of a core
    while the other ran at 18%, and the queue behind the busy one was the 95th percentile.
    """
    from sanic import Sanic

    original = Sanic.run

    def run(self: Sanic, host: str | None = None, port: int | None = None, **kwargs: Any) -> Any:
        if kwargs.get("sock") is None and port is not None and kwargs.get("workers", 1) == 1:
            address = (host or "127.0.0.1", port)
            kwargs["sock"] = _bound(address)
            host = port = None
        return original(self, host, port, **kwargs)

    Sanic.run = run


def run_rasa() -> int:
    install()
    if "--enable-api" in sys.argv and not _argument(("-t", "--auth-token"), ""):
        token = os.environ.get("RASA_TOKEN")
        if not token:
            print("error: RASA_TOKEN is not set; the Rasa HTTP API (--enable-api) needs a token", file=sys.stderr)
            return 2
        # One argument with "=": a generated token may begin with "-" (1 in 64), which argparse
        # would take for an option and refuse ("expected one argument", exit 2).
        sys.argv.append(f"--auth-token={token}")
    from rasa.__main__ import main as rasa_main

    try:
        rasa_main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def _bound(address: tuple[str, int]) -> socket.socket:
    """Bound, not yet listening: Sanic listens once the model has loaded, so no connection
    reaches a worker that cannot answer yet (the kernel only spreads to listening sockets)."""
    bound = socket.socket(_family(address))
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    bound.bind(address)
    return bound


def _family(address: tuple[str, int]) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address[0] else socket.AF_INET


def _argument(names: tuple[str, ...], default: str) -> str:
    """The value of a `rasa run` option, given as `--port 5005` or `--port=5005`."""
    for index, value in enumerate(sys.argv):
        name, equals, rest = value.partition("=")
        if name in names:
            return rest if equals else (sys.argv[index + 1] if index + 1 < len(sys.argv) else default)
    return default


def serve_workers(count: int) -> int:
    """`count` Rasa servers on one port (SO_REUSEPORT). When one ends, the others are stopped too,
    and its exit code is ours: whoever supervises this process sees the failure."""
    address = (_argument(("-i", "--interface"), "0.0.0.0"), int(_argument(("-p", "--port"), "5005")))
    try:  # SO_REUSEPORT would share the port with a server left running: refuse instead
        socket.create_server(address, family=_family(address)).close()
    except OSError as exc:
        print(f"error: cannot listen on {address[0]}:{address[1]} ({exc.strerror}); is a server running?")
        return 1
    workers: list[int] = []

    def stop(signum: int, _: Any) -> None:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)  # before the first fork: no moment without it
    signal.signal(signal.SIGINT, stop)
    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # a worker: imports Rasa and loads the model on its own
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # Sanic installs its own handlers
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                listen_with_reuse_port()
                code = run_rasa()
            finally:
                os._exit(code)
        workers.append(pid)
    ended, status = os.wait()
    stop(signal.SIGTERM, None)
    for pid in workers:
        if pid != ended:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main() -> None:
    from bot.settings import Settings

    workers = Settings.from_env().rasa_workers
    sys.exit(serve_workers(workers) if workers > 1 and "run" in sys.argv[1:2] else run_rasa())


if __name__ == "__main__":
    main()
