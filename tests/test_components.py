"""Our Rasa components on real messages: language, tokens, one embedding, KB candidates."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.embedding_intent_classifier import EmbeddingIntentClassifier
from bot.components.kb_outranks_intent import KnowledgeBaseOutranksIntent
from bot.components.kb_retriever import KnowledgeBaseRetriever
from bot.components.language_detector import LanguageDetector
from bot.components.sentence_featurizer import FEATURIZER_ALIAS, SentenceEmbeddingFeaturizer
from bot.components.tokenizer import MultilingualTokenizer
from bot.embeddings.encoder import get_encoder
from bot.kb.decision import Thresholds
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

    def run(text: str, tracker: DialogueStateTracker | None = None, intent: str | None = None) -> Message:
        messages = [Message(data={TEXT: text, **({"intent": intent} if intent else {})})]
        messages = components[0].process(messages, tracker)
        for component in components[1:]:
            messages = component.process(messages)
        return messages[0]

    return run, encoder


def test_message_gets_language_tokens_features_and_candidates(pipeline) -> None:
    run, encoder = pipeline
    before = encoder.texts
    message = run("Jak mogę zwrócić zamówiony produkt?")
    assert encoder.texts - before == 1  # one embedding, shared by the intent classifier and the retriever
    assert message.get("language")["code"] == "pl"
    assert {"entity": "language", "value": "pl"}.items() <= message.get(ENTITIES)[0].items()
    assert [t.text for t in message.get(TOKENS_NAMES[TEXT])][:3] == ["Jak", "mogę", "zwrócić"]
    _, sentence = message.get_dense_features(TEXT, [FEATURIZER_ALIAS])
    assert sentence.features.shape == (1, 384)
    assert message.get("kb")["candidates"][0]["article_id"] == "returns-how-to"


def test_a_message_typed_without_diacritics_is_embedded_with_them(pipeline) -> None:
    run, encoder = pipeline
    message = run("czy mozna placic przy odbiorze gotowka")
    _, sentence = message.get_dense_features(TEXT, [FEATURIZER_ALIAS])
    restored = encoder.encoder.encode(["czy można płacić przy odbiorze gotówką"])[0]
    assert np.allclose(sentence.features[0], restored, atol=1e-5)
    assert message.get(TEXT) == "czy mozna placic przy odbiorze gotowka"  # the text itself stays as written
    assert message.get("kb")["candidates"][0]["article_id"] == "cash-on-delivery"


def test_short_message_takes_the_language_from_the_tracker(pipeline) -> None:
    run, _ = pipeline
    tracker = DialogueStateTracker.from_events("c1", [SlotSet("language", "ru")])
    assert run("ok", tracker).get("language")["code"] == "ru"


@pytest.mark.parametrize(
    ("intent", "score", "becomes"),
    [
        ("goodbye", 0.75, "ask_question"),  # "buy now pay later": the classifier says goodbye, an article matches
        ("out_of_scope", 0.48, "ask_question"),  # the threshold itself is enough
        ("affirm", 0.47, "affirm"),  # below it: the classifier's verdict stands
        ("request_human", 0.95, "request_human"),  # asking for a person is never outranked
        ("complain", 0.95, "complain"),  # nor frustration, nor "forget me"
        ("forget_me", 0.95, "forget_me"),
    ],
)
def test_a_close_article_match_outranks_small_talk_but_never_a_request_for_a_person(
    tmp_path, intent: str, score: float, becomes: str
) -> None:
    thresholds = tmp_path / "thresholds.yml"
    thresholds.write_text("answer: 0.35\nchoose_margin: 0.075\noutranks_intent: 0.48\noffer: 0.3\n", encoding="utf-8")
    candidates = [{"article_id": "pay-later", "score": score, "matched": "buy now pay later"}]
    message = Message(data={TEXT: "buy now pay later", "intent": {"name": intent, "confidence": 0.99},
                            "kb": {"candidates": candidates}})  # fmt: skip
    KnowledgeBaseOutranksIntent(thresholds).process([message])
    assert message.get("intent")["name"] == becomes
    if becomes != intent:
        assert message.get("intent")["confidence"] == score  # the evidence it rests on
        assert message.get("intent_outranked") == {"name": intent, "confidence": 0.99, "kb_score": score}
    else:
        assert message.get("intent_outranked") is None


def test_thresholds_from_an_older_calibration_ask_for_a_new_one(tmp_path) -> None:
    thresholds = tmp_path / "thresholds.yml"
    thresholds.write_text("answer: 0.35\nchoose_margin: 0.075\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lacks outranks_intent, offer: run `bot/assistant calibrate`"):
        Thresholds.load(thresholds)
    thresholds.write_text("answer: 0.35\nchoose_margin: 0.075\noutranks_intent: 0.5\noffer: 0.3\n", encoding="utf-8")
    loaded = Thresholds.load(thresholds)  # an edit is seen without a restart
    assert (loaded.outranks_intent, loaded.offer) == (0.5, 0.3)


def test_intent_classifier_learns_from_the_embedding_and_comes_back_from_storage(pipeline, tmp_path) -> None:
    run, _ = pipeline
    examples = {
        "request_human": ["I want to talk to a person", "connect me with an agent", "can I speak to someone real"],
        "thank": ["thanks a lot", "thank you", "great, thanks for the help"],
        "greet": ["hello", "hi there", "good morning"],
    }
    data = TrainingData([run(text, intent=intent) for intent, texts in examples.items() for text in texts])
    storage = LocalModelStorage(tmp_path)
    resource = Resource("intent_classifier")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {**EmbeddingIntentClassifier.get_default_config(), "C": 50.0}
    trained = EmbeddingIntentClassifier.create(config, storage, resource, context)
    # Rasa's own classifier ignores both settings: C 1.0, class weights "balanced"
    assert (trained.clf.C, trained.clf.class_weight) == (50.0, None)
    trained.train(data)
    loaded = EmbeddingIntentClassifier.load(config, storage, resource, context)

    # Polish and Russian: in none of the examples, found through the multilingual embedding
    for text, intent in [("chcę rozmawiać z konsultantem", "request_human"), ("спасибо большое", "thank")]:
        message = loaded.process([run(text)])[0]
        assert message.get("intent")["name"] == intent
        ranking = message.get("intent_ranking")
        assert [r["name"] for r in ranking][0] == intent and len(ranking) == 3
        assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-6
    empty = Message(data={TEXT: ""})  # no text, no embedding: left alone instead of failing
    assert loaded.process([empty])[0].get("intent") is None

    # the character n-grams came back too: the same confidences as before saving
    probe = "can i talk to a human please"
    before, after = trained.process([run(probe)])[0], loaded.process([run(probe)])[0]
    assert loaded.lexical is not None and loaded.lexical.vocabulary_ == trained.lexical.vocabulary_
    assert before.get("intent_ranking") == after.get("intent_ranking")
    embedding_only = EmbeddingIntentClassifier.create({**config, "lexical_weight": 0}, storage, resource, context)
    embedding_only.train(data)
    assert embedding_only.lexical is None
    assert embedding_only.process([run(probe)])[0].get("intent_ranking") != before.get("intent_ranking")


def test_a_saved_intent_classifier_holding_an_unexpected_type_is_refused(tmp_path) -> None:
    import skops.io as sio

    storage = LocalModelStorage(tmp_path)
    resource = Resource("intent_classifier")
    with storage.write_to(resource) as model_dir:
        sio.dump({"classifier": collections.OrderedDict(), "lexical": None}, model_dir / "intent_classifier.skops")
    context = ExecutionContext(GraphSchema({}), "test")
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="OrderedDict"):
        EmbeddingIntentClassifier.load(EmbeddingIntentClassifier.get_default_config(), storage, resource, context)
