"""Our own held-out set (bot/eval/heldout.yml) and development set (devset.yml): loading and checking them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.language import _WORD, MIN_WORDS
from bot.settings import LANGUAGES

HELDOUT_FILE = Path(__file__).with_name("heldout.yml")
DEVSET_FILE = Path(__file__).with_name("devset.yml")  # same format; may be read to choose a change
HUMAN = "human"
OUT_OF_SCOPE = "out_of_scope"
HUMAN_INTENTS = ("request_human", "complain")
TAGS = ("typo", "no_diacritics", "long", "mixed", "translit")


class HeldOutError(ValueError):
    """A held-out entry that cannot be used; the message names the entry and the fix."""


@dataclass(frozen=True)
class HeldOutMessage:
    text: str
    language: str
    expected: tuple[str, ...]  # article ids (best first), or (HUMAN,) or (OUT_OF_SCOPE,)
    intent: str  # the intent a right understanding gives
    tags: tuple[str, ...]

    @property
    def kind(self) -> str:
        """article, human or out_of_scope."""
        return self.expected[0] if self.expected[0] in (HUMAN, OUT_OF_SCOPE) else "article"

    @property
    def words(self) -> int:
        return len(_WORD.findall(self.text))

    @property
    def short(self) -> bool:
        return self.words < MIN_WORDS


def load_heldout(path: Path = HELDOUT_FILE, article_ids: set[str] | None = None) -> list[HeldOutMessage]:
    """Parse and check the set; with `article_ids`, every expected article must exist."""
    entries = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("messages") or []
    messages = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: message {number} ({entry.get('text', '')!r})"
        expect = entry.get("expect")
        expected = tuple(expect) if isinstance(expect, list) else (expect,)
        if not entry.get("text") or entry.get("lang") not in LANGUAGES or not all(expected):
            raise HeldOutError(f"{where}: needs text, lang (one of {', '.join(LANGUAGES)}) and expect")
        if expected[0] == HUMAN:
            intent = entry.get("intent")
            if intent not in HUMAN_INTENTS:
                raise HeldOutError(f"{where}: 'human' needs intent: {' or '.join(HUMAN_INTENTS)}")
        elif expected[0] == OUT_OF_SCOPE:
            intent = "out_of_scope"
        else:
            unknown = [a for a in expected if article_ids is not None and a not in article_ids]
            if unknown or HUMAN in expected or OUT_OF_SCOPE in expected:
                raise HeldOutError(f"{where}: unknown article id(s) {unknown or expected}")
            intent = "ask_question"
        tags = tuple(entry.get("tags") or ())
        if set(tags) - set(TAGS):
            raise HeldOutError(f"{where}: unknown tags {sorted(set(tags) - set(TAGS))}; known: {', '.join(TAGS)}")
        messages.append(HeldOutMessage(str(entry["text"]), entry["lang"], expected, intent, tags))
    if not messages:
        raise HeldOutError(f"{path}: no messages")
    return messages
