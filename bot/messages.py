"""Texts the code composes (handoff notices, contact requests...), in four languages.

The dialogue's own responses are in domain.yml; these are the ones sent by the
action server and the agent service. bot/messages.yml holds every translation.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from bot.settings import LANGUAGES

MESSAGES_FILE = Path(__file__).with_name("messages.yml")


@lru_cache(maxsize=1)
def _messages() -> dict[str, dict[str, str]]:
    messages = yaml.safe_load(MESSAGES_FILE.read_text(encoding="utf-8"))
    for name, texts in messages.items():
        missing = [lang for lang in LANGUAGES if lang not in texts]
        if missing:
            raise ValueError(f"{MESSAGES_FILE}: '{name}' has no text for {', '.join(missing)}")
    return messages


def message(name: str, language: str | None, **values: str) -> str:
    """The message in `language` (English if unknown), with {placeholders} filled."""
    texts = _messages()[name]
    return texts.get(language or "en", texts["en"]).format(**values)
