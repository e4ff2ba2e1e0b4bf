"""Personal data is removed from the questions kept for the editors."""

from __future__ import annotations

import logging

import pytest

from bot.redaction import redact, redact_log_message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jan.kowalski+shop@example.com please", "write to [email] please"),
        ("my card 4111 1111 1111 1111 was charged twice", "my card [card] was charged twice"),
        ("zadzwońcie pod +48 601 234 567", "zadzwońcie pod [phone]"),
        ("sunați-mă la 0721 234 567", "sunați-mă la [phone]"),
        ("мой номер 8 (912) 345-67-89", "мой номер [phone]"),
        ("IBAN PL61109010140000071219812874", "IBAN PL[number]"),
    ],
)
def test_personal_data_is_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "where is order BC-5531209?",
        "a TV for 2000 zł, delivered on 2026-11-20",
        "call us between 8 and 20, Monday to Friday",
    ],
)
def test_what_helps_to_read_the_question_stays(text: str) -> None:
    assert redact(text) == text


def test_log_records_lose_personal_data_and_secrets(caplog: pytest.LogCaptureFixture) -> None:
    import bot  # noqa: F401 - importing the package installs the redaction

    with caplog.at_level(logging.INFO):
        logging.getLogger("sanic.access").info(
            "GET /socket.io/?token=s3cr3t-abc&EIO=4 from customer %s", "anna@example.org"
        )
        logging.getLogger("aiohttp.client").warning("retrying with Authorization: Bearer EAAG.xyz-123")
    assert [r.getMessage() for r in caplog.records] == [
        "GET /socket.io/?token=[secret]&EIO=4 from customer [email]",
        "retrying with Authorization: Bearer [secret]",
    ]


def test_secrets_in_urls_are_removed() -> None:
    assert redact_log_message("hub.verify_token=abc&hub.challenge=42") == "hub.verify_token=[secret]&hub.challenge=42"
