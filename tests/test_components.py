"""Our Rasa components on real messages: language, tokens, one embedding, KB candidates."""

from __future__ import annotations

import pytest
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

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


@pytest.mark.parametrize(
    ("intent", "score", "becomes"),
    [
        ("goodbye", 0.75, "ask_question"),  # "buy now pay later": DIET says goodbye, an article matches closely
        ("out_of_scope", 0.48, "ask_question"),  # the threshold itself is enough
        ("affirm", 0.47, "affirm"),  # below it: DIET's verdict stands
        ("request_human", 0.95, "request_human"),  # asking for a person is never outranked
        ("complain", 0.95, "complain"),  # nor frustration, nor "forget me"
        ("forget_me", 0.95, "forget_me"),
    ],
)
def test_a_close_article_match_outranks_small_talk_but_never_a_request_for_a_person(
    tmp_path, intent: str, score: float, becomes: str
) -> None:
    thresholds = tmp_path / "thresholds.yml"
    thresholds.write_text("answer: 0.35\nchoose_margin: 0.075\noutranks_intent: 0.48\n", encoding="utf-8")
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


def test_thresholds_without_outranks_intent_ask_for_calibration(tmp_path) -> None:
    thresholds = tmp_path / "thresholds.yml"
    thresholds.write_text("answer: 0.35\nchoose_margin: 0.075\n", encoding="utf-8")
    with pytest.raises(ValueError, match="outranks_intent: run `bot/assistant calibrate`"):
        Thresholds.load(thresholds)
    thresholds.write_text("answer: 0.35\nchoose_margin: 0.075\noutranks_intent: 0.5\n", encoding="utf-8")
    assert Thresholds.load(thresholds).outranks_intent == 0.5  # an edit is seen without a restart
