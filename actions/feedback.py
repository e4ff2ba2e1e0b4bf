"""Customers rate answers (👍/👎 under each knowledge-base answer) and the conversation (1-5)."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import SETTINGS, store
from bot.analytics import record_answer_feedback, record_rating
from bot.kb.gaps import record_unhelpful
from bot.messages import message


def answered_question(tracker: Tracker, article_id: str | None) -> tuple[str | None, str | None]:
    """The latest article the bot answered with (or `article_id`), and the customer's message it answered."""
    events = tracker.events
    for index in range(len(events) - 1, -1, -1):
        custom = (events[index].get("data") or {}).get("custom") or {}
        if (
            events[index].get("event") == "bot"
            and custom.get("kb_article")
            and article_id in (None, custom["kb_article"])
        ):
            question = next((e.get("text") for e in reversed(events[:index]) if e.get("event") == "user"), None)
            return custom["kb_article"], question
    return None, None


class ActionAnswerFeedback(Action):
    def name(self) -> str:
        return "action_answer_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        language = tracker.get_slot("language") or "en"
        helpful = (tracker.latest_message.get("intent") or {}).get("name") == "feedback_helpful"
        article_id, question = answered_question(tracker, next(tracker.get_latest_entity_values("kb_article"), None))
        if article_id:
            await record_answer_feedback(store().redis, SETTINGS.redis_prefix, tracker.sender_id, article_id, helpful)
            if not helpful and question:
                await record_unhelpful(
                    store().redis, SETTINGS.redis_prefix, tracker.sender_id, question, language, article_id
                )
        if helpful:
            dispatcher.utter_message(text=message("feedback_thanks", language))
        else:
            dispatcher.utter_message(
                text=message("feedback_sorry", language),
                buttons=[{"title": message("talk_to_person", language), "payload": "/request_human"}],
            )
        return []


class ActionRateConversation(Action):
    def name(self) -> str:
        return "action_rate_conversation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        language = tracker.get_slot("language") or "en"
        value = next(tracker.get_latest_entity_values("rating"), None)
        if value is None:  # typed: take a digit 1-5 from the message
            found = re.search(r"\b([1-5])\b", tracker.latest_message.get("text") or "")
            value = found.group(1) if found else None
        if value is None or not str(value).isdigit() or not 1 <= int(value) <= 5:
            dispatcher.utter_message(response="utter_ask_rating")
            return []
        await record_rating(store().redis, SETTINGS.redis_prefix, tracker.sender_id, int(value))
        dispatcher.utter_message(text=message("rating_thanks", language))
        return []
