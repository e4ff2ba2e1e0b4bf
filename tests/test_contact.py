from __future__ import annotations

import pytest

from bot.contact import normalise_contact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Anna.Kowalska@Example.com", "anna.kowalska@example.com"),
        ("  jan@firma.pl. ", "jan@firma.pl"),
        ("+48 600 100 200", "+48600100200"),
        ("600-100-200", "+48600100200"),
        ("+40 712 345 678", "+40712345678"),
    ],
)
def test_accepts_emails_and_phone_numbers(text: str, expected: str) -> None:
    assert normalise_contact(text) == expected


@pytest.mark.parametrize("text", ["tomorrow", "anna@", "12345", "call me maybe", ""])
def test_rejects_anything_else(text: str) -> None:
    assert normalise_contact(text) is None
