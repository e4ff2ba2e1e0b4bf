"""Removing personal data from free text before it is stored or logged.

`redact(text)` replaces, in this order:
- email addresses with [email];
- card numbers (13-19 digits, spaces or dashes allowed, passing the Luhn check) with [card];
- phone numbers found by libphonenumber (international, or national in Poland, Romania,
  Russia, the UK) with [phone];
- any other run of 9 or more digits (account numbers, unusual phone formats) with [number].
Order numbers (BC-1234567), prices, dates and short numbers stay: they help to read the question.
`install_log_redaction()` applies the same, and removes tokens and secrets, to every log
record of the process (bot/__init__.py installs it in every process of ours).
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


# Secrets that travel in URLs and headers (a logged request line, an error with its URL).
SECRET_PARAM = re.compile(
    r"\b(token|access_token|auth_token|session_token|hub\.verify_token|password|secret|signature)=([^&\s\"']+)",
    re.IGNORECASE,
)
BEARER = re.compile(r"\bBearer\s+[\w.~+/=-]+", re.IGNORECASE)


def redact_log_message(message: str) -> str:
    """A log line without personal data and without secrets."""
    message = SECRET_PARAM.sub(lambda m: f"{m.group(1)}=[secret]", message)
    return redact(BEARER.sub("Bearer [secret]", message))


def install_log_redaction() -> None:
    """Redact every log record of this process, whichever logger or handler it goes through.

    A record factory rather than a handler filter: Rasa, Sanic and aiohttp configure their
    own handlers, and a filter on one handler would miss the others.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacting", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return record
        cleaned = redact_log_message(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
