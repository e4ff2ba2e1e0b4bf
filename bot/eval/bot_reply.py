"""What the production bot does with one message, from the trained Rasa model.

The message goes through the real NLU pipeline (config.yml: language detection,
embedding, intent classifier, knowledge-base retrieval, fallback) loaded in-process with
Rasa's Agent. Which action follows an intent is read from the project's rules
(nlu_data/rules.yml), and what action_kb_answer does with the candidates is
bot.kb.decision.decide with the configured thresholds, so the evaluation follows
the production code paths rather than a copy of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.kb.decision import Thresholds, decide

HANDOFF_ACTION = "action_handoff"
KB_ACTION = "action_kb_answer"
OUT_OF_SCOPE_ACTION = "utter_out_of_scope"  # says what the bot can do and offers a person


def intent_actions(rules_file: Path) -> dict[str, str]:
    """intent -> the action the rules run right after it (rules that open a conversation turn)."""
    data = yaml.safe_load(rules_file.read_text(encoding="utf-8")) or {}
    mapping: dict[str, str] = {}
    for rule in data.get("rules") or []:
        steps = rule.get("steps") or []
        if rule.get("condition") or len(steps) < 2 or "action" not in steps[1]:
            continue
        first = steps[0]
        alternatives = first.get("or", [])
        intents = [first["intent"]] if "intent" in first else [s["intent"] for s in alternatives if "intent" in s]
        for intent in intents:
            mapping.setdefault(intent, steps[1]["action"])
    return mapping


@dataclass(frozen=True)
class BotReply:
    """One message's understanding and the bot's reply kind.

    kind: answer (one article), choose (two close articles as buttons), suggest
    (the two best as buttons, neither good enough to answer with), rephrase (no
    article is good enough: asks again, a second miss goes to a person), human
    (handoff now), out_of_scope (says so, offers a person), other (small talk).
    """

    intent: str
    confidence: float
    classifier_intent: str  # the classifier's best intent before the fallback threshold
    classifier_confidence: float
    language: str
    candidates: list[dict[str, Any]]
    kind: str
    articles: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "classifier_intent": self.classifier_intent,
            "classifier_confidence": round(self.classifier_confidence, 4),
            "language": self.language,
            "kind": self.kind,
            "articles": list(self.articles),
            "candidates": [(c["article_id"], c["score"]) for c in self.candidates],
        }


def reply_kind(
    intent: str, candidates: list[dict[str, Any]], actions: dict[str, str], thresholds: Thresholds
) -> tuple[str, tuple[str, ...]]:
    action = actions.get(intent)
    if action == HANDOFF_ACTION:
        return "human", ()
    if action == OUT_OF_SCOPE_ACTION:
        return "out_of_scope", ()
    if action == KB_ACTION:
        decision = decide(candidates, thresholds)
        kind = "rephrase" if decision.kind == "no_match" else decision.kind
        return kind, tuple(c["article_id"] for c in decision.articles)
    return "other", ()


class TrainedBot:
    """The project's trained Rasa model, loaded in-process."""

    def __init__(self, model_path: Path, rules_file: Path, thresholds: Thresholds) -> None:
        from rasa.core.agent import Agent

        self.model_path = model_path
        self.agent = Agent.load(str(model_path))
        self.actions = intent_actions(rules_file)
        self.thresholds = thresholds
        self._loop = asyncio.new_event_loop()

    def parse(self, text: str, language_hint: str | None = None) -> dict[str, Any]:
        """Rasa's parse data; the hint plays the browser's language (used for short messages)."""
        from rasa.core.channels.channel import UserMessage

        message = UserMessage(text, metadata={"language": language_hint} if language_hint else None)
        return self._loop.run_until_complete(self.agent.processor.parse_message(message))

    def reply(self, parse_data: dict[str, Any]) -> BotReply:
        intent = parse_data.get("intent") or {}
        candidates = (parse_data.get("kb") or {}).get("candidates", [])
        name = str(intent.get("name"))
        ranking = [r for r in parse_data.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
        best = ranking[0] if ranking else intent
        kind, articles = reply_kind(name, candidates, self.actions, self.thresholds)
        return BotReply(
            intent=name,
            confidence=float(intent.get("confidence") or 0.0),
            classifier_intent=str(best.get("name")),
            classifier_confidence=float(best.get("confidence") or 0.0),
            language=str((parse_data.get("language") or {}).get("code")),
            candidates=candidates,
            kind=kind,
            articles=articles,
        )

    def close(self) -> None:
        self._loop.close()
