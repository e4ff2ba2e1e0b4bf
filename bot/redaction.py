"""Removing personal data from free text before it is stored or logged.

`redact(text)` replaces, in this order:
- email addresses with [email];
- card numbers (13-19 digits, spaces or dashes allowed, passing the Luhn check) with [card];
- phone numbers found by libphonenumber (international, or national in Poland, Romania,
  Russia, the UK) with [phone];
- any other run of 9 or more digits (account numbers, unusual phone formats) with [number].
Order numbers (BC-1234567), prices, dates and short numbers stay: they help to read the question.
`RedactingFilter` applies the same to log records.
"""

from __future__ import annotations

import logging
import re

import phonenumbers

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE | re.UNICODE)
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
LONG_NUMBER = re.compile(r"\+?\d(?:[\s().-]{0,2}\d){8,}")
PHONE_REGIONS = ("PL", "RO", "RU", "GB")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _cards(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if _luhn_valid(digits) else match.group()


def _phones(text: str) -> str:
    for region in PHONE_REGIONS:
        spans = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, region)]
        for start, end in reversed(spans):
            text = text[:start] + "[phone]" + text[end:]
    return text


def redact(text: str) -> str:
    """The text with emails, card numbers, phone numbers and other long numbers replaced by placeholders."""
    text = EMAIL.sub("[email]", text)
    text = CARD.sub(_cards, text)
    text = _phones(text)
    return LONG_NUMBER.sub("[number]", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (formatted with its arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
