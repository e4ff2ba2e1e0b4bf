"""The calibration's data and search (bot/eval/calibrate.py), on synthetic candidates: no model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.eval import calibrate
from bot.eval.calibrate import (
    UTILITY_TOLERANCE,
    Outcomes,
    Searched,
    best_thresholds,
    cross_validated,
    first_near_best,
    smoothed,
    translation_groups,
)
from bot.kb.decision import Thresholds, decide
from bot.kb.index import Candidate


def searched(kind: str, scores: list[float], right: str | None = "a") -> Searched:
    ids = ["a", "b", "c"][: len(scores)]
    candidates = [{"article_id": i, "score": s} for i, s in zip(ids, scores, strict=True)]
    return Searched(kind, candidates, frozenset({right} if right else set()))


def test_the_array_decisions_are_those_of_decide() -> None:
    rng = np.random.default_rng(0)
    items = []
    for _ in range(400):
        first = float(rng.uniform(0, 0.6))
        scores = [first, first - float(rng.uniform(0, 0.15))][: int(rng.integers(1, 3))]
        items.append(searched("in_scope", scores, str(rng.choice(["a", "b", "x"]))))
    outcomes = Outcomes(items)
    for answer, margin, offer in [(0.3, 0.05, 0.2), (0.3, 0.05, math.inf), (0.25, 0.0, 0.25), (0.4, 0.1, 0.1)]:
        thresholds = Thresholds(answer, margin, offer=offer)
        answered, choose, suggest = outcomes.decisions(thresholds)
        kinds = [decide(item.candidates, thresholds).kind for item in items]
        assert [k == "answer" for k in kinds] == answered.tolist()
        assert [k == "choose" for k in kinds] == choose.tolist()
        assert [k == "suggest" for k in kinds] == suggest.tolist()
        assert "suggest" in kinds or offer >= answer


def test_a_band_below_answer_is_chosen_only_when_its_suggestions_are_mostly_right() -> None:
    confident = [searched("in_scope", [0.45, 0.1])] * 50
    out_of_scope = [searched("out_of_scope", [0.12, 0.1], None)] * 40
    mostly_right = [searched("in_scope", [0.3, 0.05], right) for right in ["a"] * 6 + ["b"] * 2 + ["x"] * 2]
    chosen, _ = best_thresholds(Outcomes(confident + out_of_scope + mostly_right * 3))
    assert 0.3 < chosen.answer <= 0.45 and 0.12 < chosen.offer <= 0.3  # suggested (80% right), not answered
    mostly_wrong = [searched("in_scope", [0.3, 0.05], right) for right in ["a"] * 3 + ["x"] * 7]
    chosen, _ = best_thresholds(Outcomes(confident + out_of_scope + mostly_wrong * 3))
    assert chosen.answer > 0.3 and chosen.offer > 0.3  # neither answered nor suggested: asked to rephrase


def test_near_ties_go_to_the_first_candidate() -> None:
    # Candidates come smallest margin / fewest offers first: a gain within the tolerance does not buy a choice.
    assert first_near_best([0.3, 0.3887, 0.3888, 0.38]) == 1
    assert first_near_best([0.3887 - 2 * UTILITY_TOLERANCE, 0.3888]) == 1
    assert first_near_best([0.5, 0.5]) == 0


def test_the_answer_value_is_chosen_on_its_neighbourhood() -> None:
    # A lone spike loses to a broad plateau: the spike moves with the folds' seed, the plateau does not.
    values = [0.1, 0.1, 0.5, 0.1, 0.1, 0.38, 0.4, 0.4, 0.4, 0.38, 0.1]
    assert int(np.argmax(values)) == 2 and int(np.argmax(smoothed(values, steps=2))) == 7
    assert smoothed([1.0, 2.0, 3.0], steps=1).tolist() == [1.5, 2.0, 2.5]  # fewer neighbours at the ends
    assert smoothed([1.0, 2.0, 3.0], steps=0).tolist() == [1.0, 2.0, 3.0]


def test_a_question_and_its_translations_form_one_group() -> None:
    ids = ["a", "a", "a", "a", "a", "a", "b"]
    languages = ["en", "en", "en", "pl", "pl", "pl", "en"]
    passages = [False, False, True, False, False, True, False]
    entries = (np.zeros((7, 2)), ids, languages, ["t"] * 7, passages)
    assert translation_groups(entries) == ["a #0", "a #1", "a body", "a #0", "a #1", "a body", "b #0"]


def test_cross_validation_holds_a_question_out_with_its_translations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each text is searched in an index that has neither it nor its translations, but has every body."""
    ids = [aid for aid in ("a", "b", "c") for _ in range(2 * 3 + 2)]
    languages, texts, passages = [], [], []
    for aid in ("a", "b", "c"):
        for language in ("en", "pl"):
            languages += [language] * 4
            texts += [f"{aid} {k} {language}" for k in range(3)] + [f"{aid} body {language}"]
            passages += [False, False, False, True]
    vectors = np.arange(len(texts), dtype=np.float32)[:, None]  # a text's vector is its row number
    seen: dict[str, set[str]] = {}

    class Recorder:
        def __init__(self, _vectors, _ids, _languages, index_texts, _passages) -> None:  # noqa: ANN001
            self.texts = set(index_texts)

        def search(self, vector: np.ndarray, language: str, k: int) -> list[Candidate]:  # noqa: ARG002
            seen[texts[int(vector[0])]] = self.texts
            return [Candidate("a", 0.5, ""), Candidate("b", 0.4, "")]

    monkeypatch.setattr(calibrate, "KnowledgeIndex", Recorder)
    results = cross_validated((vectors, ids, languages, texts, passages), folds=3, seed=1)
    askable = [t for t, p in zip(texts, passages, strict=True) if not p]
    assert sorted(seen) == sorted(askable) and len(results) == len(askable)
    for text, index_texts in seen.items():
        article, k, _ = text.split()
        assert not {f"{article} {k} en", f"{article} {k} pl"} & index_texts
        assert {t for t, p in zip(texts, passages, strict=True) if p} <= index_texts
        assert len(index_texts) > len(texts) / 2  # the other folds are in
