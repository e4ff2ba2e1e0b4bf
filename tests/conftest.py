"""Shared fixtures: real Redis, and the real assistant started once per test session.

The stack runs on free ports with its own Redis key prefix, so tests never touch
a running assistant's data; the business-hours file is a temporary copy that
tests rewrite to be open or closed, and the articles a copy that tests edit.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from bot.settings import Settings
from bot.stack import Stack, ensure_trained, on_free_ports, process_env, with_secrets
from tests.graph_stand_in import GraphStandIn
from tests.meta_client import channel_env

ALWAYS_OPEN = """timezone: Europe/Warsaw
weekly: {mon: ["00:00", "23:59:59"], tue: ["00:00", "23:59:59"], wed: ["00:00", "23:59:59"],
         thu: ["00:00", "23:59:59"], fri: ["00:00", "23:59:59"], sat: ["00:00", "23:59:59"],
         sun: ["00:00", "23:59:59"]}
holidays: []
"""
ALWAYS_CLOSED = """timezone: Europe/Warsaw
weekly: {mon: ["08:00", "08:00:01"]}
holidays: []
"""


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def redis_client(base_settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(base_settings.redis_url, decode_responses=True)
    client.ping()  # the tests need a real Redis: `bot/assistant test` starts one if none answers
    yield client
    client.close()


@pytest.fixture(scope="session")
def hours_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hours") / "business_hours.yml"
    path.write_text(ALWAYS_OPEN)
    return path


@pytest.fixture(scope="session")
def articles_dir(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of kb_articles that tests may edit while the assistant runs."""
    path = tmp_path_factory.mktemp("kb") / "kb_articles"
    shutil.copytree(base_settings.articles_dir, path)
    return path


@pytest.fixture(scope="session")
def stack_settings(base_settings: Settings, hours_file: Path, articles_dir: Path) -> Settings:
    return with_secrets(
        on_free_ports(
            base_settings,
            redis_prefix="test" + secrets.token_hex(4),
            business_hours_file=hours_file,
            articles_dir=articles_dir,
        )
    )


@pytest.fixture(scope="session")
def graph_api() -> Iterator[GraphStandIn]:
    """Meta's Graph API, replaced by a recording and checking server on loopback."""
    stand_in = GraphStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="session")
def stack(
    stack_settings: Settings,
    redis_client: redis.Redis,
    graph_api: GraphStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Rasa server, action server and agent service as real processes (Messenger and WhatsApp on, test secrets)."""
    model = ensure_trained(stack_settings, process_env(stack_settings))
    running = Stack(stack_settings, model, tmp_path_factory.mktemp("logs"), env=channel_env(graph_api.url))
    try:
        running.start()
        yield running
    finally:
        running.stop()
        for key in redis_client.scan_iter(f"{stack_settings.redis_prefix}:*"):
            redis_client.delete(key)


@pytest.fixture()
def business_hours(hours_file: Path) -> Iterator[Path]:
    """Tests switch hours with business_hours.write_text(ALWAYS_CLOSED); reset afterwards."""
    yield hours_file
    hours_file.write_text(ALWAYS_OPEN)


@pytest.fixture()
async def http() -> AsyncIterator:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session
