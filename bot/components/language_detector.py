"""Rasa component: detects the message language and sets the `language` slot.

Short messages ("ok", "?") keep the conversation's language (read from the
tracker, which Rasa passes to `process`), then the browser's hint in the
message metadata, then the detector's best guess.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ENTITIES, METADATA, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.language import choose_language

LANGUAGE = "language"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class LanguageDetector(GraphComponent):
    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageDetector:
        return cls()

    @staticmethod
    def _annotate(message: Message, conversation_language: str | None) -> None:
        text = message.get(TEXT)
        if not text:
            return
        metadata = message.get(METADATA) or {}
        hint = metadata.get("language") if isinstance(metadata, dict) else None
        detection = choose_language(text, conversation_language, hint)
        message.set(
            LANGUAGE,
            {"code": detection.language, "confidence": round(detection.confidence, 4), "detected": detection.reliable},
            add_to_output=True,
        )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._annotate(example, None)
        return training_data

    def process(self, messages: list[Message], tracker: DialogueStateTracker | None = None) -> list[Message]:
        conversation_language = tracker.get_slot(LANGUAGE) if tracker else None
        for message in messages:
            self._annotate(message, conversation_language)
            language = message.get(LANGUAGE)
            if language:
                # An entity, so that the `language` slot fills itself (from_entity mapping).
                entity = {
                    "entity": LANGUAGE,
                    "value": language["code"],
                    "start": 0,
                    "end": len(message.get(TEXT)),
                    "extractor": "LanguageDetector",
                }
                message.set(ENTITIES, [*message.get(ENTITIES, []), entity], add_to_output=True)
        return messages
