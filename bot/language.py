"""Which of our four languages a customer message is written in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lingua import Language, LanguageDetectorBuilder

from bot.settings import LANGUAGES

_LINGUA = {Language.ENGLISH: "en", Language.POLISH: "pl", Language.ROMANIAN: "ro", Language.RUSSIAN: "ru"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Letters only one of our languages uses settle short messages ("cześć", "mulțumesc").
_MARKERS = {
    "ru": re.compile(r"[а-яё]", re.IGNORECASE),
    "pl": re.compile(r"[ąćęłńóśźż]", re.IGNORECASE),
    "ro": re.compile(r"[ăâîșşțţ]", re.IGNORECASE),
}
MIN_WORDS = 3  # below this, statistics on letters are unreliable
MIN_SHORT_CONFIDENCE = 0.9


@dataclass(frozen=True)
class Detection:
    language: str
    confidence: float
    reliable: bool  # False: too short to tell; the caller keeps the conversation's language


@lru_cache(maxsize=1)
def _detector():  # noqa: ANN202 - lingua's type
    return LanguageDetectorBuilder.from_languages(*_LINGUA).with_preloaded_language_models().build()


def detect(text: str) -> Detection:
    words = _WORD.findall(text)
    if not words:
        return Detection("en", 0.0, False)
    marked = [lang for lang, pattern in _MARKERS.items() if pattern.search(text)]
    if len(marked) == 1 and len(words) < MIN_WORDS:
        return Detection(marked[0], 1.0, True)
    values = _detector().compute_language_confidence_values(" ".join(words))
    best = values[0]
    language = _LINGUA[best.language]
    reliable = len(words) >= MIN_WORDS or best.value >= MIN_SHORT_CONFIDENCE and sum(map(len, words)) >= 8
    return Detection(language, float(best.value), reliable)


def choose_language(text: str, conversation_language: str | None, hint: str | None = None) -> Detection:
    """The detected language, or the conversation's when the message is too short to tell."""
    detection = detect(text)
    if detection.reliable:
        return detection
    fallback = next((lang for lang in (conversation_language, hint) if lang in LANGUAGES), None)
    return Detection(fallback or detection.language, detection.confidence, False)
