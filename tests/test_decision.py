from __future__ import annotations

from bot.kb.decision import Thresholds, decide
from bot.settings import Settings

T = Thresholds(answer=0.86, choose_margin=0.005)


def c(article_id: str, score: float) -> dict:
    return {"article_id": article_id, "score": score}


def test_clear_winner_is_answered() -> None:
    decision = decide([c("a", 0.91), c("b", 0.88)], T)
    assert decision.kind == "answer" and decision.articles[0]["article_id"] == "a"


def test_two_close_candidates_are_offered_as_a_choice() -> None:
    decision = decide([c("a", 0.902), c("b", 0.899), c("x", 0.85)], T)
    assert decision.kind == "choose"
    assert [a["article_id"] for a in decision.articles] == ["a", "b"]


def test_a_close_runner_up_is_offered_even_below_the_answer_threshold() -> None:
    # The best is good enough to answer, but the data cannot tell it from the runner-up:
    # answering with the best alone would be a coin toss (bot/eval/calibrate.py measures it).
    decision = decide([c("a", 0.862), c("b", 0.858)], T)
    assert decision.kind == "choose" and [a["article_id"] for a in decision.articles] == ["a", "b"]
    assert decide([c("a", 0.862), c("b", 0.856)], T).kind == "answer"  # just outside the margin


def test_weak_match_is_no_match() -> None:
    assert decide([c("a", 0.84)], T).kind == "no_match"
    assert decide([], T).kind == "no_match"


def test_a_match_below_the_answer_threshold_but_within_the_offer_band_suggests_the_two_best() -> None:
    banded = Thresholds(answer=0.86, choose_margin=0.005, offer=0.80)
    decision = decide([c("a", 0.84), c("b", 0.70), c("x", 0.65)], banded)
    assert decision.kind == "suggest" and [a["article_id"] for a in decision.articles] == ["a", "b"]
    assert decide([c("a", 0.84)], banded).articles == [c("a", 0.84)]  # a one-article index: just that one
    assert decide([c("a", 0.79), c("b", 0.78)], banded).kind == "no_match"
    assert decide([c("a", 0.87), c("b", 0.70)], banded).kind == "answer"  # the band changes nothing above `answer`


def test_project_thresholds_load() -> None:
    thresholds = Thresholds.load(Settings().thresholds_file)
    assert 0 < thresholds.answer < 1 and 0 <= thresholds.choose_margin < 0.2
    assert 0 < thresholds.offer <= thresholds.answer <= thresholds.outranks_intent
