"""The after-hours contact form's validation: what the customer typed decides, not only the intent."""

from __future__ import annotations

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import ValidateContactForm


def _tracker(text: str, intent: str) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.51}}
    return Tracker("c1", {"language": "en"}, latest, [], False, None, {"name": "contact_form"}, None)


@pytest.mark.parametrize(
    ("text", "intent", "contact"),
    [
        ("Anna.Nowak@Example.com", "deny", "anna.nowak@example.com"),  # an address taken for a "no" is kept
        ("Anna.Nowak@Example.com", "nlu_fallback", "anna.nowak@example.com"),
        ("no thanks", "deny", "none"),  # a real "no" skips the form
    ],
)
def test_a_contact_wins_over_the_intent(text: str, intent: str, contact: str) -> None:
    dispatcher = CollectingDispatcher()
    slots = ValidateContactForm().validate_contact(text, dispatcher, _tracker(text, intent), {})
    assert slots == {"contact": contact}
    assert dispatcher.messages == []


def test_neither_a_contact_nor_a_no_asks_again() -> None:
    dispatcher = CollectingDispatcher()
    text = "tomorrow maybe"
    slots = ValidateContactForm().validate_contact(text, dispatcher, _tracker(text, "affirm"), {})
    assert slots == {"contact": None}
    assert "doesn't look like an email" in dispatcher.messages[0]["text"]
