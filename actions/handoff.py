"""Handing a conversation to people: action_handoff and the after-hours contact form."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ConversationPaused, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from redis.asyncio import Redis

from bot.business_hours import BusinessHours
from bot.contact import normalise_contact
from bot.escalations import Escalation, EscalationStore, connect, conversation_turns
from bot.kb.gaps import record_escalation
from bot.messages import message
from bot.profiles import Profiles, mask_contact
from bot.settings import Settings

SETTINGS = Settings.from_env()
REASON_BY_INTENT = {"request_human": "customer_request", "affirm": "customer_request", "complain": "frustration"}
_redis = None


def redis() -> Redis:
    global _redis
    if _redis is None:
        _redis = connect(SETTINGS.redis_url)
    return _redis


def store() -> EscalationStore:
    return EscalationStore(redis(), SETTINGS.redis_prefix)


def profiles() -> Profiles:
    return Profiles(redis(), SETTINGS.redis_prefix)


async def start_handoff(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str) -> list[dict]:
    """Record the escalation, tell the customer what happens next, and pause the bot."""
    turns, offered = conversation_turns(tracker.events)
    hours = BusinessHours.load(SETTINGS.business_hours_file)
    now = dt.datetime.now(dt.timezone.utc)
    is_open = hours.is_open(now)
    language = tracker.get_slot("language") or "en"
    await profiles().observe(tracker.sender_id)  # a WhatsApp number links the customer's other conversations
    escalation = await store().open(
        Escalation(
            conversation_id=tracker.sender_id,
            reason=reason,
            after_hours=not is_open,
            language=language,
            channel=tracker.get_latest_input_channel() or "unknown",
            turns=turns,
            articles_offered=offered,
        )
    )
    await record_escalation(redis(), SETTINGS.redis_prefix, tracker.sender_id, tracker.events)
    payload = {"handoff": {"status": "waiting" if is_open else "offline", "id": escalation.id, "reason": reason}}
    events: list[dict] = [SlotSet("handoff_id", escalation.id), SlotSet("misunderstandings", 0)]
    if is_open:
        dispatcher.utter_message(text=message("handoff_waiting", language), json_message=payload)
        return [*events, ConversationPaused()]
    next_open = hours.next_opening(now)
    payload["handoff"]["next_open"] = next_open.isoformat()
    text = message("handoff_offline", language, next_open=next_open.strftime("%Y-%m-%d %H:%M"))
    dispatcher.utter_message(text=text, json_message=payload)
    profile = await profiles().profile_of(tracker.sender_id)
    if profile and profile.contacts:  # a returning customer: don't ask again for what we know
        await store().set_contact(escalation.id, profile.contacts[-1])
        dispatcher.utter_message(text=message("contact_known", language, contact=mask_contact(profile.contacts[-1])))
        return [*events, ConversationPaused()]
    # The contact form asks for an email or phone; action_contact_saved then pauses.
    return [*events, SlotSet("contact", None), FollowupAction("contact_form")]


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        return await start_handoff(dispatcher, tracker, REASON_BY_INTENT.get(intent, "customer_request"))


class ValidateContactForm(FormValidationAction):
    def name(self) -> str:
        return "validate_contact_form"

    def validate_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        contact = normalise_contact(str(value or ""))
        # A contact wins over the intent: the classifier has no examples of e-mail addresses and may call
        # one a "no" ("Anna.Nowak@Example.com": deny 0.51).
        if contact is None and (tracker.latest_message.get("intent") or {}).get("name") == "deny":
            return {"contact": "none"}
        if contact is None:
            dispatcher.utter_message(text=message("invalid_contact", tracker.get_slot("language")))
        return {"contact": contact}


class ActionAskContact(Action):
    """The contact form's question (forms call action_ask_<slot>)."""

    def name(self) -> str:
        return "action_ask_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        dispatcher.utter_message(text=message("ask_contact", tracker.get_slot("language")))
        return []


class ActionContactSaved(Action):
    def name(self) -> str:
        return "action_contact_saved"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        contact = tracker.get_slot("contact")
        escalation_id = tracker.get_slot("handoff_id")
        if escalation_id:
            await store().set_contact(escalation_id, None if contact == "none" else contact)
        if contact and contact != "none":
            await profiles().add_contact(tracker.sender_id, contact)
        name = "contact_skipped" if contact == "none" else "contact_saved"
        dispatcher.utter_message(text=message(name, tracker.get_slot("language")))
        # The contact is kept on the escalation, not in the bot's slots.
        return [SlotSet("contact", None), ConversationPaused()]
