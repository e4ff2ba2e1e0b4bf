"""action_kb_answer: answer from the knowledge base, offer a choice, or ask again."""

from __future__ import annotations

import json
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import redis, start_handoff
from bot.kb.articles import ArticleLibrary
from bot.kb.decision import Thresholds, decide
from bot.kb.gaps import record_unanswered
from bot.kb.live import shared_knowledge_base
from bot.kb.render import LANGUAGE_NAMES, answer_text
from bot.messages import message
from bot.settings import Settings

SETTINGS = Settings.from_env()
REPEAT_WINDOW = 2  # the customer's last two messages before this one


def library() -> ArticleLibrary:
    """The articles as they are now: edits take effect within seconds (bot/kb/live.py)."""
    return shared_knowledge_base(SETTINGS, with_index=False).library


def _chosen_article(tracker: Tracker) -> dict[str, Any] | None:
    """A click on one of the offered articles: /ask_question{"kb_article": "<id>"}."""
    article_id = next(tracker.get_latest_entity_values("kb_article"), None)
    if not article_id:
        return None
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        for candidate in (event.get("parse_data") or {}).get("kb", {}).get("candidates", []):
            if candidate["article_id"] == article_id:
                return candidate
    return {"article_id": article_id, "score": 1.0}


def answered_again(tracker: Tracker, article_id: str) -> bool:
    """Whether the bot's latest answer (to one of the customer's REPEAT_WINDOW messages before) was this article.

    Asked again ("no, I mean how do I return it") and matched to the same article, the customer
    is not helped by it: the same text once more would be a bot loop. Another article in between,
    or a handoff (an agent has been there since), means it is not a repeat.
    """
    earlier_messages = -1  # the latest user event is the message being answered
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            earlier_messages += 1
            if earlier_messages >= REPEAT_WINDOW:
                return False
        elif event.get("event") == "bot":
            custom = (event.get("data") or {}).get("custom") or {}
            if "handoff" in custom or (event.get("metadata") or {}).get("agent"):
                return False  # people have been here since (a hand-back answering this message, too)
            if earlier_messages >= 0 and "kb_article" in custom:  # the latest answer before this message
                return custom["kb_article"] == article_id
    return False


def feedback_buttons(article_id: str, language: str) -> list[dict[str, str]]:
    """👍/👎 under an answer; the votes are kept per article (actions/feedback.py)."""
    entity = json.dumps({"kb_article": article_id})
    return [
        {"title": message("feedback_yes", language), "payload": "/feedback_helpful" + entity},
        {"title": message("feedback_no", language), "payload": "/feedback_unhelpful" + entity},
    ]


class ActionKnowledgeAnswer(Action):
    def name(self) -> str:
        return "action_kb_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        return await answer_latest_message(dispatcher, tracker)


async def answer_latest_message(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
    """Answer the customer's latest message from the knowledge base (or offer a choice, or ask again)."""
    language = tracker.get_slot("language") or "en"
    articles = library()
    chosen = _chosen_article(tracker)
    if chosen:
        decision_kind, shown = "answer", [chosen]
    else:
        candidates = (tracker.latest_message.get("kb") or {}).get("candidates", [])
        decision = decide(candidates, Thresholds.load(SETTINGS.thresholds_file))
        decision_kind, shown = decision.kind, decision.articles

    # Two articles offered, the first the one that did not help: a repeat too (the buttons
    # would offer the same text once more).
    if decision_kind != "no_match" and not chosen and answered_again(tracker, shown[0]["article_id"]):
        dispatcher.utter_message(text=message("kb_answered_again", language))
        return await start_handoff(dispatcher, tracker, "repeated_question")

    if decision_kind == "answer":
        candidate = shown[0]
        article = articles.get(candidate["article_id"], language)
        if article is None:  # the index knows an article whose files were just removed
            decision_kind = "no_match"
        else:
            if article.language != language:
                dispatcher.utter_message(
                    text=message("kb_other_language", language, article_language=LANGUAGE_NAMES[article.language])
                )
            dispatcher.utter_message(
                text=answer_text(article),
                buttons=feedback_buttons(article.id, language),
                json_message={
                    "kb_article": article.id,
                    "score": round(float(candidate["score"]), 4),
                    "language": article.language,
                },
            )
            return [SlotSet("misunderstandings", 0)]

    if decision_kind in ("choose", "suggest"):
        buttons = []
        for candidate in shown:
            article = articles.get(candidate["article_id"], language)
            if article:
                payload = "/ask_question" + json.dumps({"kb_article": article.id})
                buttons.append({"title": article.title, "payload": payload})
        # choose: the best is good enough to answer with, but the runner-up is too close to tell
        # apart; suggest: the best we have, not good enough to answer with, so it counts as a miss
        # too (a suggestion and then no match goes to a person).
        dispatcher.utter_message(text=message(f"kb_{decision_kind}", language), buttons=buttons)
        if decision_kind == "choose":
            return []
        await record_unanswered(redis(), SETTINGS.redis_prefix, tracker.sender_id, tracker.latest_message, "suggested")
        return [SlotSet("misunderstandings", float(tracker.get_slot("misunderstandings") or 0) + 1)]

    await record_unanswered(redis(), SETTINGS.redis_prefix, tracker.sender_id, tracker.latest_message)
    misunderstandings = float(tracker.get_slot("misunderstandings") or 0) + 1
    if misunderstandings >= 2:
        return await start_handoff(dispatcher, tracker, "low_confidence")
    dispatcher.utter_message(text=message("ask_rephrase", language))
    return [SlotSet("misunderstandings", misunderstandings)]
