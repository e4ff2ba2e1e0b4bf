"""The evaluation's metric functions on tiny inputs worked out by hand, and the held-out set's hygiene."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from bot.eval.bot_reply import intent_actions, reply_kind
from bot.eval.calibrate import outrank_threshold
from bot.eval.heldout import DEVSET_FILE, HELDOUT_FILE, HUMAN, OUT_OF_SCOPE, load_heldout
from bot.eval.metrics import BinaryScores, ndcg_at_k, recall_at_k, reciprocal_rank
from bot.kb.articles import load_articles
from bot.kb.decision import Thresholds
from bot.settings import LANGUAGES, PROJECT_DIR


def test_recall_at_k_counts_a_hit_within_the_first_k() -> None:
    ranked = ["a", "b", "c"]
    assert recall_at_k(ranked, {"b"}, 1) == 0.0
    assert recall_at_k(ranked, {"b"}, 2) == 1.0
    assert recall_at_k(ranked, {"x"}, 3) == 0.0
    assert recall_at_k(ranked, {"c", "a"}, 1) == 1.0  # any of several right answers


def test_reciprocal_rank_is_one_over_the_first_right_position() -> None:
    assert reciprocal_rank(["a", "b", "c"], {"c"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["a", "b", "c"], {"b", "c"}) == pytest.approx(1 / 2)
    assert reciprocal_rank(["a", "b"], {"z"}) == 0.0


def test_ndcg_matches_a_hand_computed_value() -> None:
    # relevant d1 (gain 1) at rank 2 and d2 (gain 1) at rank 4; ideal puts them at ranks 1 and 2
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["x", "d1", "y", "d2"], {"d1": 1.0, "d2": 1.0}, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["d1", "d2"], {"d1": 1.0, "d2": 1.0}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"d1": 1.0}, 2) == 0.0
    assert ndcg_at_k(["x", "d1"], {"d1": 1.0}, 1) == 0.0  # beyond the cut-off


def test_binary_scores_precision_recall_f1_mcc() -> None:
    truth = [True, True, True, False, False, False, False, False]
    predicted = [True, True, False, True, False, False, False, False]
    scores = BinaryScores.of(truth, predicted)
    assert (scores.tp, scores.fp, scores.fn, scores.tn) == (2, 1, 1, 4)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 / 3)
    assert scores.mcc == pytest.approx((2 * 4 - 1 * 1) / math.sqrt(3 * 3 * 5 * 5))
    assert BinaryScores.of([False], [False]).precision is None


def test_rules_route_intents_to_the_production_actions() -> None:
    actions = intent_actions(PROJECT_DIR / "nlu_data" / "rules.yml")
    assert actions["request_human"] == "action_handoff"
    assert actions["complain"] == "action_handoff"
    assert actions["ask_question"] == "action_kb_answer"
    assert actions["nlu_fallback"] == "action_kb_answer"
    thresholds = Thresholds(answer=0.3, choose_margin=0.05, offer=0.2)
    close = [{"article_id": "a", "score": 0.5}, {"article_id": "b", "score": 0.48}]
    assert reply_kind("ask_question", close, actions, thresholds) == ("choose", ("a", "b"))
    weak = [{"article_id": "a", "score": 0.25}, {"article_id": "b", "score": 0.1}]
    assert reply_kind("ask_question", weak, actions, thresholds) == ("suggest", ("a", "b"))
    assert reply_kind("nlu_fallback", [{"article_id": "a", "score": 0.1}], actions, thresholds) == ("rephrase", ())
    assert reply_kind("complain", close, actions, thresholds) == ("human", ())


def _normalised(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def _training_texts() -> set[str]:
    """The articles' titles and sample questions and nlu_data's examples, normalised."""
    seen = {_normalised(q) for a in load_articles(PROJECT_DIR / "kb_articles") for q in (a.title, *a.questions)}
    for path in (PROJECT_DIR / "nlu_data" / "nlu").glob("*.yml"):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            seen |= {_normalised(line[2:]) for line in (block.get("examples") or "").splitlines()}
    return seen


@pytest.mark.parametrize(("path", "in_all", "at_least"), [(HELDOUT_FILE, 300, 70), (DEVSET_FILE, 200, 50)])
def test_evaluation_sets_are_large_labelled_and_never_in_the_training_data(
    path: Path, in_all: int, at_least: int
) -> None:
    messages = load_heldout(path, {a.id for a in load_articles(PROJECT_DIR / "kb_articles")})
    assert len(messages) >= in_all  # issue #3: at least 300 held-out messages
    for language in LANGUAGES:
        mine = [m for m in messages if m.language == language]
        assert len(mine) >= at_least, language
        assert {m.kind for m in mine} == {"article", HUMAN, OUT_OF_SCOPE}, language
    seen = _training_texts()
    copied = [m.text for m in messages if _normalised(m.text) in seen]
    assert copied == [], f"{path.name}: evaluation messages must not be training data"


def test_the_development_set_shares_no_message_with_the_held_out_set() -> None:
    held_out = {_normalised(m.text) for m in load_heldout(HELDOUT_FILE)}
    assert [m.text for m in load_heldout(DEVSET_FILE) if _normalised(m.text) in held_out] == []


def test_heldout_loader_rejects_unknown_articles(tmp_path: Path) -> None:
    bad = tmp_path / "heldout.yml"
    bad.write_text('messages:\n  - {lang: en, expect: no-such-article, text: "hello"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="no-such-article"):
        load_heldout(bad, {"returns-how-to"})


def test_own_language_removed_takes_out_only_the_expected_articles_version_in_the_message_language() -> None:
    import numpy as np

    from bot.eval.bot_reply import BotReply
    from bot.eval.heldout import HeldOutMessage
    from bot.eval.heldout_eval import own_language_removed
    from bot.kb.index import KnowledgeIndex

    # The Polish "gifts" text is the query itself; its English text points elsewhere, and
    # "returns" (in both languages) lies between. With everything, "gifts" is found first;
    # without its Polish version, "returns" is, and "gifts" still comes second.
    e = np.eye(4, dtype=np.float32)
    vectors = np.stack([e[0] + e[3], e[1] + e[3], e[1] + e[2], e[2] + e[3], e[1] + e[2] + e[3]])
    ids = ["gifts", "gifts", "returns", "other", "returns"]
    languages = ["en", "pl", "en", "pl", "pl"]
    texts = [f"t{n}" for n in range(len(ids))]
    query = vectors[1]
    assert KnowledgeIndex(vectors, ids, languages, texts).search(query, "pl")[0].article_id == "gifts"
    message = HeldOutMessage("karta podarunkowa", "pl", ("gifts",), "ask_question", ())
    reply = BotReply("ask_question", 1.0, "ask_question", 1.0, "pl", [], "answer", ("gifts",))
    [(ranked, relevant)] = own_language_removed(
        [(message, reply)], query[None, :], (vectors, ids, languages, texts, [False] * len(ids))
    )
    assert relevant == {"gifts"}
    assert ranked[:2] == ["returns", "gifts"]
    assert sorted(ranked) == ["gifts", "other", "returns"]  # only the one row went


def test_outrank_threshold_lets_at_most_one_small_talk_message_in_a_hundred_through() -> None:
    small_talk = np.concatenate([np.full(197, 0.30), [0.50, 0.52, 0.61]])  # three of 200 (1.5%) score high
    value = outrank_threshold(small_talk, answer=0.35)
    assert value == 0.505  # the lowest grid value that only two of them (1%) reach
    assert outrank_threshold(np.full(100, 0.10), answer=0.35) == 0.35  # never below the answer threshold
