"""When the same article again means the customer was not helped (actions/kb_answer.py: answered_again)."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker

from actions.kb_answer import answered_again


def user(text: str) -> dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": "ask_question"}}}


def answer(article_id: str) -> dict[str, Any]:
    return {"event": "bot", "text": "…", "data": {"custom": {"kb_article": article_id}}}


def bot(text: str = "…", **custom: Any) -> dict[str, Any]:
    return {"event": "bot", "text": text, "data": {"custom": custom} if custom else {}}


def tracker(events: list[dict[str, Any]]) -> Tracker:
    return Tracker("c1", {}, events[-1], events, False, None, None, None)


@pytest.mark.parametrize(
    ("events", "again"),
    [
        ([user("a"), answer("returns"), user("a again")], True),
        ([user("a"), answer("returns"), user("no"), bot("Anything else?"), user("a again")], True),
        ([user("a"), answer("returns"), user("b"), answer("payments"), user("a again")], False),  # another in between
        ([user("a"), answer("returns"), user("x"), bot(), user("y"), bot(), user("a again")], False),  # too long ago
        ([user("a"), answer("returns"), user("a again"), bot(handoff={"reason": "repeated_question"})], False),
        (
            [
                user("a"),
                answer("returns"),
                user("a again"),
                {"event": "bot", "text": "hi", "metadata": {"agent": "anna"}},
            ],
            False,
        ),  # fmt: skip
        ([user("first question")], False),
    ],
    ids=["right after", "after a no", "other article between", "three messages ago", "handed back", "agent", "first"],
)
def test_answered_again(events: list[dict[str, Any]], again: bool) -> None:
    assert answered_again(tracker(events), "returns") is again
