"""What to do with the knowledge-base candidates for one message.

The thresholds live in bot/config/thresholds.yml, computed by `bot/assistant
calibrate` from data (bot/eval/calibrate.py), never guessed: the scale of the
retriever's scores depends on the model and on the scoring.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

KEYS = ("answer", "choose_margin", "outranks_intent", "offer")  # the thresholds file's keys

# Intents a strong knowledge-base match outranks (bot/components/kb_outranks_intent.py).
# The intent classifier, trained on our intents' examples only, takes some short questions for
# small talk (DIET did: "buy now pay later" for goodbye, "My payment failed, what should I do?" for out of
# scope). Asking for a person, complaining, "forget me" and feedback are never outranked:
# those are the customer's own words about the conversation, not a question.
OUTRANKABLE_INTENTS = ("greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "out_of_scope")


@dataclass(frozen=True)
class Thresholds:
    answer: float  # the best article scores at least this: answer with it
    choose_margin: float  # the best is answerable and the runner-up this close: offer both
    outranks_intent: float = math.inf  # the best article scores at least this: a question, whatever the intent
    offer: float = math.inf  # the best article scores at least this, but below `answer`: suggest the two best

    @classmethod
    def load(cls, path: Path) -> Thresholds:
        """The thresholds file as it is now (read again only when it changes)."""
        stat = path.stat()
        return _load(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int, size: int) -> Thresholds:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [key for key in KEYS if key not in data]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: run `bot/assistant calibrate`")
    return Thresholds(**{key: float(data[key]) for key in KEYS})


@dataclass(frozen=True)
class Decision:
    kind: Literal["answer", "choose", "suggest", "no_match"]
    articles: list[dict]  # the candidates to show: one for answer, two for choose and suggest (one if only one)


def decide(candidates: list[dict], thresholds: Thresholds) -> Decision:
    """candidates: [{"article_id", "score", ...}] best first, as the retriever gives them.

    answer: one clear match. choose: a match good enough to answer, but the runner-up is too
    close to pick one. suggest: no match good enough to answer, but the best is likely enough that
    showing the two best beats asking the customer to rephrase. no_match: ask again.
    """
    if not candidates or candidates[0]["score"] < min(thresholds.answer, thresholds.offer):
        return Decision("no_match", [])
    if candidates[0]["score"] < thresholds.answer:
        return Decision("suggest", candidates[:2])
    best = candidates[0]
    if len(candidates) > 1 and best["score"] - candidates[1]["score"] < thresholds.choose_margin:
        return Decision("choose", [best, candidates[1]])
    return Decision("answer", [best])


def outranks(intent: str, candidates: list[dict], thresholds: Thresholds) -> bool:
    """Whether the best article is so close a match that the message is taken for a question despite `intent`."""
    return intent in OUTRANKABLE_INTENTS and bool(candidates) and candidates[0]["score"] >= thresholds.outranks_intent
