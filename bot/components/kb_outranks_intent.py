"""Rasa component: a message that closely matches an article is a question, whatever the intent classifier says.

The classifier learns our intents from nlu_data alone, and takes some short questions
for small talk (DIET, the classifier before, took "I forgot my password" for goodbye,
"наложка есть?" for affirm). The
retriever, which knows every article's sample questions, matches them well. When
its best score reaches `outranks_intent` (bot/config/thresholds.yml, computed by
`bot/assistant calibrate` from nlu_data's small-talk examples) and the classifier's intent
is one of OUTRANKABLE_INTENTS, the intent becomes `ask_question`; the classifier's verdict
is kept in the parse data as `intent_outranked` (with the article's score). Runs after the retriever and
the FallbackClassifier (a fallback already goes to the knowledge base).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT
from rasa.shared.nlu.training_data.message import Message

from bot.components.kb_retriever import KB
from bot.kb.decision import Thresholds, outranks
from bot.settings import Settings

QUESTION_INTENT = "ask_question"
OUTRANKED = "intent_outranked"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class KnowledgeBaseOutranksIntent(GraphComponent):
    def __init__(self, thresholds_file: Path) -> None:
        self.thresholds_file = thresholds_file

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> KnowledgeBaseOutranksIntent:
        return cls(Settings.from_env().thresholds_file)

    def process(self, messages: list[Message]) -> list[Message]:
        thresholds = Thresholds.load(self.thresholds_file)
        for message in messages:
            intent = message.get(INTENT) or {}
            candidates = (message.get(KB) or {}).get("candidates", [])
            if not outranks(str(intent.get("name")), candidates, thresholds):  # no text: no candidates
                continue
            message.set(OUTRANKED, {**intent, "kb_score": candidates[0]["score"]}, add_to_output=True)
            # Its confidence is the evidence it rests on: the article's score.
            message.set(INTENT, {"name": QUESTION_INTENT, "confidence": candidates[0]["score"]}, add_to_output=True)
        return messages
