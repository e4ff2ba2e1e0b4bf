"""Rasa dense featurizer: one sentence-transformers embedding per message.

The same vector serves intent classification and knowledge-base search
(KnowledgeBaseRetriever reads it back from the message's features), so each
customer message is encoded once. A Polish or Romanian message is embedded with the
diacritics its writer left out put back (bot/diacritics.py); LanguageDetector runs first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.language_detector import LANGUAGE
from bot.diacritics import restore_diacritics
from bot.embeddings.encoder import Encoder, get_encoder
from bot.settings import Settings

FEATURIZER_ALIAS = "sentence_embedding"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "alias": FEATURIZER_ALIAS}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        pass

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """The model, backend and diacritics restoration: without them Rasa's training cache would take
        this node's output for unchanged and restore an intent model trained on other vectors."""
        from bot.diacritics import identity
        from bot.embeddings.encoder import backend_for

        return f"{backend_for(Settings.from_env()).key}-{identity()}"

    def __init__(self, config: dict[str, Any], name: str, encoder: Encoder) -> None:
        super().__init__(name, config)
        self.encoder = encoder

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        return cls(config, execution_context.node_name, get_encoder(Settings.from_env()))

    def _featurize(self, messages: list[Message]) -> None:
        with_text = [m for m in messages if m.get(TEXT)]
        if not with_text:
            return
        vectors = self.encoder.encode([restore_diacritics(m.get(TEXT), _language(m)) for m in with_text])
        for message, vector in zip(with_text, vectors, strict=True):
            self.add_features_to_message(None, np.expand_dims(vector, 0), TEXT, message)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        self._featurize(messages)
        return messages


def _language(message: Message) -> str | None:
    language = message.get(LANGUAGE)
    return language.get("code") if isinstance(language, dict) else None
