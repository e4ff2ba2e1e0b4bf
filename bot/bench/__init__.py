"""Benchmarks of the real running stack: `bot/assistant bench <name>`."""

from __future__ import annotations

import sys

BENCHMARKS = {"embedding": "bot.bench.embedding", "handoff": "bot.bench.handoff", "load": "bot.bench.load"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: bot/assistant bench {{{','.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(BENCHMARKS[argv[0]]).main(argv[1:])
