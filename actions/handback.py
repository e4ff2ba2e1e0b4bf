"""The bot takes a conversation back from people: action_hand_back and action_resolve.

The agent service runs these through Rasa's `execute` API, which holds the
conversation's lock: a customer message sent during the hand-back is handled either
before it (the agent sees it) or after it (the bot answers it), never both or neither.
A question the customer asked after the agent's last reply is answered right away.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationResumed, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.kb_answer import answer_latest_message
from bot.messages import message


def unanswered_question(tracker: Tracker) -> bool:
    """The customer's last message came after the agent's last reply and asks the knowledge base."""
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "bot" and (event.get("metadata") or {}).get("agent"):
            return False
        if kind == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            return intent == "ask_question"
    return False


async def return_to_bot(dispatcher: CollectingDispatcher, tracker: Tracker, farewell: str) -> list[dict[str, Any]]:
    if not tracker.is_paused() and not tracker.get_slot("handoff_id"):
        return []  # already with the bot: a repeated request changes nothing
    language = tracker.get_slot("language") or "en"
    events: list[dict[str, Any]] = [
        ConversationResumed(),
        SlotSet("handoff_id", None),
        SlotSet("misunderstandings", 0),
    ]
    dispatcher.utter_message(text=message(farewell, language))
    if unanswered_question(tracker):
        events += await answer_latest_message(dispatcher, tracker)
    elif farewell == "conversation_resolved":
        dispatcher.utter_message(response="utter_ask_rating")
    # Listen again, so the policies treat the next message as a new turn.
    return [*events, ActionExecuted("action_listen")]


class ActionHandBack(Action):
    def name(self) -> str:
        return "action_hand_back"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        return await return_to_bot(dispatcher, tracker, "back_to_bot")


class ActionResolve(Action):
    def name(self) -> str:
        return "action_resolve"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        return await return_to_bot(dispatcher, tracker, "conversation_resolved")
