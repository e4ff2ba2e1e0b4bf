"""Faults survived with real processes: Redis restarted under a running assistant; a stopped process started again."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import redis

from bot.settings import Settings
from bot.stack import Stack, free_port, on_free_ports
from tests.rest_client import post_message

pytestmark = pytest.mark.e2e


class RedisServer:
    """A redis-server of the test's own, persisting every write (appendfsync always), as production should."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the test's redis-server did not start")

    def kill(self) -> None:
        """A crash, not a clean shutdown: only what was written to the append-only file survives."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def stack_on_own_redis(stack: Stack, own_redis: RedisServer, tmp_path_factory) -> Iterator[Stack]:
    settings = on_free_ports(stack.settings, redis_url=own_redis.url)
    running = Stack(settings, stack.model, tmp_path_factory.mktemp("faults"), env=stack.env)
    try:
        running.start()
        yield running
    finally:
        running.stop()


async def test_redis_restarted_mid_conversation_loses_nothing_acknowledged(
    stack_on_own_redis: Stack, own_redis: RedisServer, http: aiohttp.ClientSession
) -> None:
    stack, sender = stack_on_own_redis, "restart-redis"
    status, first = await post_message(http, stack, sender, "Jak mogę zwrócić produkt?")
    assert status == 200 and first[0]["custom"]["kb_article"] == "returns-how-to"

    own_redis.kill()
    status, during = await post_message(http, stack, sender, "Ile kosztuje dostawa?")
    assert status == 503  # not acknowledged: the customer is told to write again
    assert during and "techniczny" in during[0]["text"]  # honest, in the customer's language

    own_redis.start()
    status, after = await post_message(http, stack, sender, "Ile kosztuje dostawa kurierem?")
    assert status == 200
    assert any(m.get("custom", {}).get("kb_article") == "delivery-costs" for m in after), after
    async with http.get(
        f"{stack.settings.rasa_url}/conversations/rest:{sender}/tracker", params={"token": stack.settings.rasa_token}
    ) as response:
        events = (await response.json())["events"]
    said = [e["text"] for e in events if e["event"] == "user"]
    assert said == ["Jak mogę zwrócić produkt?", "Ile kosztuje dostawa kurierem?"]
    assert events[-1]["event"] in ("bot", "action")


def test_a_redis_that_keeps_nothing_on_disk_is_told_apart(tmp_path: Path) -> None:
    from bot.stack import redis_persists

    server = RedisServer(tmp_path).start()  # append-only, no snapshots
    try:
        assert redis_persists(server.url)
        client = redis.Redis.from_url(server.url)
        client.config_set("appendonly", "no")
        assert not redis_persists(server.url)  # `bot/assistant up` warns about this one
        client.config_set("save", "3600 1")
        assert redis_persists(server.url)
    finally:
        server.kill()


@dataclass
class TinyStack(Stack):
    """Two small HTTP servers as real processes, supervised the way `bot/assistant up` does it."""

    ports: dict[str, int] = field(default_factory=dict)

    def commands(self) -> dict[str, list[str]]:
        return {name: [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
                for name, port in self.ports.items()}  # fmt: skip

    def health_urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{port}/" for name, port in self.ports.items()}


def test_up_starts_a_stopped_process_again_and_gives_up_on_one_that_keeps_stopping(tmp_path: Path) -> None:
    import os
    import signal
    import threading

    from bot import cli

    ports = {"actions": free_port(), "agent-service": free_port()}
    stack = TinyStack(on_free_ports(Settings.from_env()), tmp_path / "model", tmp_path / "logs", ports=ports)
    stack.start(("actions", "agent-service"))
    result: list[int] = []
    supervisor = threading.Thread(target=lambda: result.append(cli.supervise(stack)), daemon=True)
    supervisor.start()
    try:
        other = stack.processes["agent-service"].pid
        for _ in range(cli.RESTARTS_ALLOWED):
            killed = stack.processes["actions"].pid
            os.kill(killed, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while stack.processes.get("actions") is None or stack.processes["actions"].pid == killed:
                assert time.monotonic() < deadline, "not started again"
                time.sleep(0.1)
            stack.wait_healthy("actions", 30)  # serving again
            assert stack.processes["agent-service"].pid == other  # the others kept running
        os.kill(stack.processes["actions"].pid, signal.SIGKILL)  # one time too many
        supervisor.join(timeout=30)
        assert result == [1]
    finally:
        stack.stop()
