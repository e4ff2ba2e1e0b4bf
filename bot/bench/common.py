"""What the benchmarks share: their own stack (free ports, own Redis prefix, always-open
hours), an agent login, percentiles and what produced the figures."""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import time
from pathlib import Path

import aiohttp

from bot.escalations import connect
from bot.settings import Settings
from bot.stack import on_free_ports, with_secrets
from handoff.accounts import AccountError, Accounts

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS_OPEN = "timezone: UTC\nholidays: []\nweekly:\n" + "".join(f'  {d}: ["00:00", "23:59:59"]\n' for d in DAYS)
BENCH_AGENT = ("bench", "bench-password-" + "x" * 8)


def percentiles(values: list[float]) -> dict[str, float]:
    """n, p50, p95, p99, max and mean (nearest rank, rounded to 0.1); {"n": 0} when empty."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "n": len(values),
        "p50": at(0.5),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(values), 1),
    }


def bench_settings(tmp: Path) -> Settings:
    """Settings of a stack of our own: free ports, a fresh Redis prefix, hours always open."""
    hours = tmp / "hours.yml"
    hours.write_text(ALWAYS_OPEN)
    return with_secrets(
        on_free_ports(Settings.from_env(), redis_prefix="bench" + secrets.token_hex(4), business_hours_file=hours)
    )


def cleanup(settings: Settings) -> None:
    """Delete every Redis key under the benchmark's own prefix."""
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    for key in client.scan_iter(f"{settings.redis_prefix}:*"):
        client.delete(key)
    client.close()


async def agent_token(http: aiohttp.ClientSession, base: str, settings: Settings) -> str:
    """Create the benchmark's agent account (once) and log it in; returns the bearer token."""
    redis = connect(settings.redis_url)
    username, password = BENCH_AGENT
    try:
        await Accounts(redis, settings.redis_prefix, 3600).create(username, password, "agent")
    except AccountError:
        pass
    finally:
        await redis.close()
    async with http.post(base + "/api/login", json={"username": username, "password": password}) as r:
        return (await r.json())["token"]


def cpu_count() -> str:
    return subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()


def utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def python_loop_ms() -> float:
    """How fast this machine runs Python: the best of five timings of `sum(range(10**6))`, in ms.

    The serving processes are mostly Python, so figures from two machines compare only
    together with this one (27-30 ms on the machine of 2026-12-02's last runs).
    """
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        sum(range(10**6))
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)
