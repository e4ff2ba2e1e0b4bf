"""Rasa component: finds the knowledge-base articles closest to the message.

It reuses the sentence embedding the featurizer already put on the message and
adds `kb: {"candidates": [{"article_id", "score", "matched"}, ...]}` to the parse
data. What to do with the candidates (answer, offer choices, ask to rephrase,
escalate) is decided by the action server, which knows the conversation.
The index follows the article files while the server runs (bot/kb/live.py).
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.language_detector import LANGUAGE
from bot.components.sentence_featurizer import FEATURIZER_ALIAS
from bot.kb.live import LiveKnowledgeBase, shared_knowledge_base
from bot.settings import Settings

KB = "kb"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class KnowledgeBaseRetriever(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"top_k": 5, "featurizer": FEATURIZER_ALIAS}

    def __init__(self, config: dict[str, Any], knowledge: LiveKnowledgeBase) -> None:
        self.top_k = int(config["top_k"])
        self.featurizer = str(config["featurizer"])
        self.knowledge = knowledge

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> KnowledgeBaseRetriever:
        return cls(config, shared_knowledge_base(Settings.from_env(), with_index=True))

    def process(self, messages: list[Message]) -> list[Message]:
        index = self.knowledge.index  # one version for the whole batch
        for message in messages:
            if not message.get(TEXT):
                continue
            _, sentence = message.get_dense_features(TEXT, [self.featurizer])
            if sentence is None:
                raise RuntimeError(f"KnowledgeBaseRetriever needs the '{self.featurizer}' featurizer before it")
            language = (message.get(LANGUAGE) or {}).get("code")
            candidates = index.search(sentence.features[0], language, self.top_k)
            message.set(KB, {"candidates": [c.as_dict() for c in candidates]}, add_to_output=True)
        return messages
