"""What to do with the knowledge-base candidates for one message.

The thresholds live in bot/config/thresholds.yml: embedding scores of this
model are compressed (related ~0.89-0.93, unrelated ~0.78-0.83), so they are
measured on data, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml


@dataclass(frozen=True)
class Thresholds:
    answer: float  # the best article scores at least this: answer with it
    choose_margin: float  # the runner-up is this close and also answerable: offer both

    @classmethod
    def load(cls, path: Path) -> Thresholds:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(answer=float(data["answer"]), choose_margin=float(data["choose_margin"]))


@dataclass(frozen=True)
class Decision:
    kind: Literal["answer", "choose", "no_match"]
    articles: list[dict]  # the candidates to show: one for answer, two for choose


def decide(candidates: list[dict], thresholds: Thresholds) -> Decision:
    """candidates: [{"article_id", "score", ...}] best first, as the retriever gives them."""
    if not candidates or candidates[0]["score"] < thresholds.answer:
        return Decision("no_match", [])
    best = candidates[0]
    if len(candidates) > 1:
        second = candidates[1]
        if second["score"] >= thresholds.answer and best["score"] - second["score"] < thresholds.choose_margin:
            return Decision("choose", [best, second])
    return Decision("answer", [best])
