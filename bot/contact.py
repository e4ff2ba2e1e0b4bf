"""Validating the email or phone number a customer leaves for a callback."""

from __future__ import annotations

import re

import phonenumbers

EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)*\.[a-z]{2,}$", re.IGNORECASE | re.UNICODE)
DEFAULT_REGION = "PL"  # numbers without a country code are read as Polish


def normalise_contact(text: str) -> str | None:
    """An email (lower-cased) or a phone number in E.164 form, or None if it is neither."""
    candidate = text.strip().strip(".,;")
    if EMAIL.match(candidate):
        return candidate.lower()
    try:
        number = phonenumbers.parse(candidate, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None
