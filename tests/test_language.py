from __future__ import annotations

import pytest

from bot.language import choose_language, detect


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Where is my order, it was supposed to arrive yesterday?", "en"),
        ("Gdzie jest moja paczka, miała być wczoraj?", "pl"),
        ("gdzie jest moja paczka mialabyc wczoraj", "pl"),
        ("Unde este coletul meu, trebuia să ajungă ieri?", "ro"),
        ("unde este coletul meu trebuia sa ajunga ieri", "ro"),
        ("Где моя посылка, она должна была прийти вчера?", "ru"),
        ("cześć", "pl"),
        ("mulțumesc", "ro"),
        ("спасибо", "ru"),
    ],
)
def test_detects_the_four_languages(text: str, language: str) -> None:
    detection = detect(text)
    assert detection.language == language
    assert detection.reliable


@pytest.mark.parametrize("text", ["ok", "?", "hi", "👍"])
def test_short_messages_keep_the_conversation_language(text: str) -> None:
    assert choose_language(text, "ro").language == "ro"
    assert not choose_language(text, "ro").reliable


def test_browser_hint_is_used_before_the_guess_for_a_first_short_message() -> None:
    assert choose_language("ok", None, hint="ru").language == "ru"
    assert choose_language("ok", None, hint="de").language in {"en", "pl", "ro", "ru"}
