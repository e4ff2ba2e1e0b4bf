"""Our Rasa components on real messages: language, tokens, one embedding, KB candidates."""

from __future__ import annotations

import pytest
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.kb_retriever import KnowledgeBaseRetriever
from bot.components.language_detector import LanguageDetector
from bot.components.sentence_featurizer import FEATURIZER_ALIAS, SentenceEmbeddingFeaturizer
from bot.components.tokenizer import MultilingualTokenizer
from bot.embeddings.encoder import get_encoder
from bot.kb.live import LiveKnowledgeBase
from bot.settings import Settings


class CountingEncoder:
    """The real encoder, counting how many texts it embeds."""

    def __init__(self, encoder) -> None:
        self.encoder, self.texts = encoder, 0

    def encode(self, texts: list[str]):
        self.texts += len(texts)
        return self.encoder.encode(texts)


@pytest.fixture(scope="module")
def pipeline():
    settings = Settings.from_env()
    encoder = CountingEncoder(get_encoder(settings))
    knowledge = LiveKnowledgeBase(settings.articles_dir, get_encoder(settings), settings.cache_dir)
    components = [
        LanguageDetector(),
        MultilingualTokenizer(MultilingualTokenizer.get_default_config()),
        SentenceEmbeddingFeaturizer(SentenceEmbeddingFeaturizer.get_default_config(), "featurizer", encoder),
        KnowledgeBaseRetriever(KnowledgeBaseRetriever.get_default_config(), knowledge),
    ]

    def run(text: str, tracker: DialogueStateTracker | None = None) -> Message:
        messages = [Message(data={TEXT: text})]
        messages = components[0].process(messages, tracker)
        for component in components[1:]:
            messages = component.process(messages)
        return messages[0]

    return run, encoder


def test_message_gets_language_tokens_features_and_candidates(pipeline) -> None:
    run, encoder = pipeline
    before = encoder.texts
    message = run("Jak mogę zwrócić zamówiony produkt?")
    assert encoder.texts - before == 1  # one embedding, shared by DIET and the retriever
    assert message.get("language")["code"] == "pl"
    assert {"entity": "language", "value": "pl"}.items() <= message.get(ENTITIES)[0].items()
    assert [t.text for t in message.get(TOKENS_NAMES[TEXT])][:3] == ["Jak", "mogę", "zwrócić"]
    _, sentence = message.get_dense_features(TEXT, [FEATURIZER_ALIAS])
    assert sentence.features.shape == (1, 384)
    assert message.get("kb")["candidates"][0]["article_id"] == "returns-how-to"


def test_short_message_takes_the_language_from_the_tracker(pipeline) -> None:
    run, _ = pipeline
    tracker = DialogueStateTracker.from_events("c1", [SlotSet("language", "ru")])
    assert run("ok", tracker).get("language")["code"] == "ru"
