"""The public intent sets' pure parts: loading, conversion to Rasa data, metrics, threshold choice, report.

No model is trained here; the training and parsing run in `bot/assistant eval`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from sklearn.metrics import matthews_corrcoef

from bot.eval.command import selected_sets
from bot.eval.intent_sets import (
    OUT_OF_SCOPE,
    Prediction,
    balanced_objective,
    choose_threshold,
    decide,
    load_clinc150,
    load_hint3,
    lowest_threshold_reaching,
    mcc_objective,
    multiclass_mcc,
    nlu_yaml,
    oos_scores,
    pseudo_oos_folds,
    threshold_curve,
)
from bot.eval.metrics import BinaryScores
from bot.eval.public_intents import best_classifier_intent, config_fallback
from bot.eval.report import write_report
from bot.eval.report_public import target_pct, verdict
from bot.settings import PROJECT_DIR


def test_multiclass_mcc_matches_sklearn_and_the_binary_formula() -> None:
    truth = ["a", "a", "b", "b", "c", "c", "c", OUT_OF_SCOPE]
    predicted = ["a", "b", "b", "b", "c", OUT_OF_SCOPE, "a", OUT_OF_SCOPE]
    assert multiclass_mcc(truth, predicted) == pytest.approx(matthews_corrcoef(truth, predicted))
    binary_truth = [True, True, True, False, False, False, False, False]
    binary_predicted = [True, True, False, True, False, False, False, False]
    expected = BinaryScores.of(binary_truth, binary_predicted).mcc
    assert multiclass_mcc([str(t) for t in binary_truth], [str(p) for p in binary_predicted]) == pytest.approx(expected)


def test_multiclass_mcc_is_zero_when_undefined_and_one_when_perfect() -> None:
    assert multiclass_mcc(["a", "a"], ["a", "a"]) == 0.0
    assert multiclass_mcc(["a", "b"], ["c", "c"]) == 0.0
    assert multiclass_mcc(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        multiclass_mcc(["a"], [])


def test_hint3_mcc_is_not_zero_when_nothing_is_sent_out_of_scope() -> None:
    # The authors' sweeps report MCC > 0 at OOS recall 0: it is the multi-class MCC.
    truth = ["a", "b", OUT_OF_SCOPE, OUT_OF_SCOPE]
    predicted = ["a", "b", "a", "b"]
    assert oos_scores(truth, predicted)["oos_recall"] == 0.0
    assert multiclass_mcc(truth, predicted) > 0


def test_oos_scores_follow_the_papers_definitions() -> None:
    truth = ["a", "a", "b", "b", OUT_OF_SCOPE, OUT_OF_SCOPE, OUT_OF_SCOPE, OUT_OF_SCOPE]
    predicted = ["a", OUT_OF_SCOPE, "b", "a", OUT_OF_SCOPE, OUT_OF_SCOPE, "a", OUT_OF_SCOPE]
    scores = oos_scores(truth, predicted)
    assert (scores["n"], scores["in_scope_n"], scores["oos_n"]) == (8, 4, 4)
    assert scores["in_scope_accuracy"] == pytest.approx(2 / 4)  # the one sent out of scope counts as wrong
    assert scores["oos_recall"] == pytest.approx(3 / 4)
    assert scores["oos_precision"] == pytest.approx(3 / 4)
    assert scores["accuracy"] == pytest.approx(5 / 8)  # out of scope is one more label
    assert oos_scores(["a"], ["a"])["oos_recall"] is None


def _predictions() -> list[Prediction]:
    return [
        Prediction("a", "a", 0.9),
        Prediction("b", "b", 0.6),
        Prediction("a", "b", 0.3),
        Prediction(OUT_OF_SCOPE, "a", 0.4),
        Prediction(OUT_OF_SCOPE, "b", 0.2),
        Prediction(OUT_OF_SCOPE, OUT_OF_SCOPE, 0.95),  # trained with an out_of_scope intent
    ]


def test_decide_sends_low_confidence_and_the_out_of_scope_intent_out_of_scope() -> None:
    assert decide(_predictions(), 0.0) == ["a", "b", "b", "a", "b", OUT_OF_SCOPE]
    assert decide(_predictions(), 0.5) == ["a", "b", OUT_OF_SCOPE, OUT_OF_SCOPE, OUT_OF_SCOPE, OUT_OF_SCOPE]
    assert decide(_predictions(), 0.6)[1] == "b"  # at the threshold: kept


def test_choose_threshold_maximises_the_objective_and_prefers_the_lowest_on_ties() -> None:
    # in-scope accuracy + OOS recall: 0.0 -> 2/3 + 1/3, 0.25 and 0.35 -> 2/3 + 2/3, 0.5 -> 2/3 + 1, 0.7 -> 1/3 + 1
    assert choose_threshold(_predictions(), balanced_objective, [0.0, 0.25, 0.35, 0.5, 0.7]) == 0.5
    assert choose_threshold(_predictions(), balanced_objective, [0.0, 0.35, 0.25]) == 0.35  # first best in grid order
    assert choose_threshold(_predictions(), balanced_objective, [0.25, 0.35]) == 0.25
    flat = [Prediction("a", "a", 0.9), Prediction("b", "b", 0.8)]
    assert choose_threshold(flat, balanced_objective, [0.0, 0.5, 0.7]) == 0.0  # all tie
    assert choose_threshold(_predictions(), mcc_objective, [0.0, 0.5, 0.7]) == 0.5


def test_lowest_threshold_reaching_an_oos_recall() -> None:
    # OOS recall: 0.0 -> 1/3, 0.25 and 0.35 -> 2/3, 0.5 and 0.7 -> 1
    assert lowest_threshold_reaching(_predictions(), 0.6, [0.0, 0.25, 0.35, 0.5, 0.7]) == 0.25
    assert lowest_threshold_reaching(_predictions(), 1.0, [0.0, 0.25, 0.35, 0.5, 0.7]) == 0.5
    assert lowest_threshold_reaching(_predictions(), 1.0, [0.0, 0.25]) == 0.25  # none reaches it: the highest


def test_threshold_curve_has_one_point_per_threshold() -> None:
    curve = threshold_curve(_predictions(), [0.0, 0.5, 1.0])
    assert curve["threshold"] == [0.0, 0.5, 1.0]
    assert curve["oos_recall"] == pytest.approx([1 / 3, 1.0, 1.0])
    assert curve["in_scope_accuracy"][-1] == 0.0


def test_pseudo_oos_folds_hold_out_every_intent_once() -> None:
    examples = [(f"{intent} {n}", intent) for intent in "abcdefghij" for n in range(7)] + [("k 0", "k")]
    intents = set("abcdefghijk")
    unseen_count = dict.fromkeys(intents, 0)
    for train, tuning in pseudo_oos_folds(examples, folds=5, seed=1):
        trained = {label for _, label in train}
        unseen = {text.split()[0] for text, label in tuning if label == OUT_OF_SCOPE}
        assert not trained & unseen
        assert trained | unseen == intents  # an in-scope intent never loses all its examples ("k" has one)
        assert {label for _, label in tuning if label != OUT_OF_SCOPE} <= trained
        restored = train + [(text, text.split()[0]) for text, _ in tuning]
        assert sorted(restored) == sorted(examples)  # every example used once, labels kept for in-scope ones
        for intent in unseen:
            unseen_count[intent] += 1
    assert set(unseen_count.values()) == {1}


def test_loaders_relabel_out_of_scope_and_clean_whitespace(tmp_path: Path) -> None:
    clinc = tmp_path / "clinc150"
    clinc.mkdir()
    data = {"train": [["what  is\nmy balance ", "balance"]], "oos_test": [["sing me a song", "oos"]]}
    (clinc / "data_full.json").write_text(json.dumps(data), encoding="utf-8")
    splits = load_clinc150(clinc)
    assert splits["train"] == [("what is my balance", "balance")]
    assert splits["oos_test"] == [("sing me a song", OUT_OF_SCOPE)]
    for split in ("train", "test"):
        folder = tmp_path / "hint3" / "dataset" / "v1" / split
        folder.mkdir(parents=True)
        (folder / f"curekart_{split}.csv").write_text(
            'sentence,label\n"order\nstatus?",ORDER_STATUS\nhello there,NO_NODES_DETECTED\n,EMPTY\n', encoding="utf-8"
        )
    hint3 = load_hint3(tmp_path / "hint3", "curekart")
    assert hint3["test"] == [("order status?", "ORDER_STATUS"), ("hello there", OUT_OF_SCOPE)]


def test_nlu_yaml_round_trips_awkward_texts() -> None:
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    examples = [
        ("what's my balance: now?", "balance"),
        ('- "quoted" # not a comment', "balance"),
        ("zażółć gęślą jaźń", "polish"),
        ("100% sure & {curly}", "polish"),
    ]
    data = RasaYAMLReader().reads(nlu_yaml(examples))
    assert sorted((m.get("text"), m.get("intent")) for m in data.intent_examples) == sorted(examples)


def test_best_classifier_intent_skips_the_fallback() -> None:
    parse = {
        "intent": {"name": "nlu_fallback", "confidence": 0.5},
        "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.5}, {"name": "a", "confidence": 0.31}],
    }
    assert best_classifier_intent(parse) == ("a", 0.31)
    assert best_classifier_intent({"intent": {"name": "b", "confidence": 0.9}}) == ("b", 0.9)


def test_config_fallback_reads_the_production_config() -> None:
    fallback = config_fallback(PROJECT_DIR / "config.yml")
    assert 0 < fallback["threshold"] < 1
    assert 0 <= fallback["ambiguity_threshold"] < 1


def test_selected_sets() -> None:
    assert selected_sets(None, quick=True) == ["devset"]  # the set one may look at while choosing a change
    assert selected_sets(None, quick=False)[:2] == ["heldout", "devset"]
    assert selected_sets("devset", quick=False) == ["devset"]
    assert selected_sets("xquad, clinc150,allegro_faq", quick=False) == ["clinc150", "allegro", "xquad"]
    with pytest.raises(ValueError):
        selected_sets("clinc151", quick=False)


def test_verdict_says_met_or_by_how_much() -> None:
    assert verdict(0.97, 0.96) == "met"
    assert verdict(0.955, 0.96) == "**missed by 0.5 points**"
    assert verdict(0.64, 0.64, percent=False, strictly=True) == "**missed by 0.00 points** (0.000)"
    assert verdict(2864 / 3080, 0.93) == "**missed by 0.01 points**"  # not "0.0"
    assert (target_pct(2864 / 3080, 0.93), target_pct(0.955, 0.96), target_pct(0.9301, 0.93)) == (
        "92.99%",
        "95.5%",
        "93.0%",
    )  # a miss is never rounded up to its target
    assert verdict(0.6, 0.64, percent=False, strictly=True) == "**missed by 4.0 points** (0.040)"
    assert verdict(None, 0.5) == "not measured"


def _scores(in_scope: float, recall: float, mcc: float = 0.5, threshold: float = 0.4) -> dict[str, object]:
    return {
        "threshold": threshold,
        "n": 10,
        "in_scope_n": 6,
        "oos_n": 4,
        "accuracy": 0.5,
        "in_scope_accuracy": in_scope,
        "oos_recall": recall,
        "oos_precision": 0.5,
        "mcc": mcc,
    }


def test_report_renders_public_sets_without_the_heldout_section(tmp_path: Path) -> None:
    model = {
        "model": "m-1",
        "training_examples": 10,
        "intents": 2,
        "train_seconds": 60.0,
        "reused_cached_model": True,
        "ms_per_message": 20.0,
        "config_fallback": {"threshold": 0.5, "ambiguity_threshold": 0.1},
    }
    measured = {"date": "2026-01-01", "commit": "abc", "uncommitted_changes": False, "wall_seconds": 90}
    bot = {
        "threshold": 0.4,
        "tuning": _scores(0.8, 0.7),
        "test": _scores(0.6, 0.5, mcc=0.61),
        "test_with_config_fallback": _scores(0.6, 0.4),
        "test_best_threshold_in_hindsight": _scores(0.6, 0.6),
        "tuning_seconds": 30.0,
        **model,
    }
    results = {
        "run": {
            "commit": "abc",
            "uncommitted_changes": False,
            "date": "d",
            "python": "3.10",
            "machine": "m",
            "rasa_model": "r",
            "embedding_model": "e",
            "thresholds": {"answer": 0.2, "choose_margin": 0.03},
            "fallback_threshold": 0.5,
            "heldout_sha256": "h",
        },
        "clinc150": {
            "setting": "s",
            "threshold": 0.4,
            "val": _scores(0.95, 0.7),
            "test": _scores(0.9, 0.8),
            "target_threshold": 0.3,
            "val_at_target_threshold": _scores(0.96, 0.6),
            "test_at_target_threshold": _scores(0.97, 0.55),
            "test_without_threshold": _scores(0.98, 0.0),
            "test_with_config_fallback": _scores(0.9, 0.6),
            "plot": "clinc150_tradeoff.png",
            "measured": measured,
            **model,
        },
        "banking77": {"test_n": 10, "accuracy": 0.925, "accuracy_with_config_fallback": 0.9, **model},
        "hint3": {"setting": "s", "plot": "hint3_tradeoff.png", "curekart": bot},
    }
    path = tmp_path / "report.md"
    write_report(results, path)
    text = path.read_text(encoding="utf-8")
    assert "## Public sets" in text and "## Our held-out set" not in text
    # the targets are judged at the threshold shaped like them, not at the balanced one
    assert "| CLINC150 in-scope accuracy ≥ 96% (threshold reaching 60% OOS recall on val) | 97.0% | met |" in text
    assert "| CLINC150 OOS recall ≥ 60% (same threshold) | 55.0% | **missed by 5.0 points** |" in text
    assert "| BANKING77 accuracy ≥ 93% | 92.5% | **missed by 0.5 points** |" in text
    assert "| HINT3 curekart MCC > 0.64 | 0.610 | **missed by 3.0 points** (0.030) |" in text
    assert "0.5 (ambiguity 0.1)" in text


def test_report_shows_the_development_set_apart_and_judges_targets_on_the_held_out_set(tmp_path: Path) -> None:
    measured = json.loads((PROJECT_DIR / "docs" / "eval" / "results.json").read_text(encoding="utf-8"))
    devset = copy.deepcopy(measured["heldout"]) | {"file_sha256": "d0d0"}
    for summary in [*devset["per_language"].values(), devset["all"]]:
        summary["kb"]["recall@1"] = 0.5
    path = tmp_path / "report.md"
    write_report({"run": measured["run"], "heldout": measured["heldout"], "devset": devset}, path)
    text = path.read_text(encoding="utf-8")
    targets = text.split("## Targets")[1].split("\n## ")[0]
    assert "Recall@1" in targets and "50.0%" not in targets
    development = text.split("## Our development set")[1].split("\n## ")[0]
    assert "sha256 d0d0" in development
    assert "| KB Recall@1 | 50.0% | 50.0% | 50.0% | 50.0% | 50.0% |" in development
    assert "Messages the bot did not handle as labelled" in development


def test_a_cached_eval_model_is_not_reused_with_another_backend() -> None:
    from dataclasses import replace

    from bot.eval.public_intents import model_key
    from bot.settings import Settings

    settings = Settings.from_env()
    config = settings.project_dir / "config.yml"
    examples = [("where is my parcel", "track"), ("cancel my order", "cancel")]
    keys = {backend: model_key(replace(settings, embedding_backend=backend), config, examples)
            for backend in ("onnx-int8", "onnx", "torch")}  # fmt: skip
    assert len(set(keys.values())) == 3  # the classifier is trained on the vectors it is served with
    assert model_key(settings, config, examples) == model_key(settings, config, list(examples))


def test_the_eval_prints_rasas_warnings_but_not_a_debug_line_per_parse() -> None:
    """In its own process: the eval configures logging for the whole process."""
    import subprocess
    import sys

    script = (
        "import structlog\n"
        "from bot.eval.command import quiet_rasa_logs\n"
        "quiet_rasa_logs()\n"
        "log = structlog.get_logger('rasa.core.processor')\n"
        "log.debug('processor.message.parse', parse_data_text='my order BC-1234567')\n"
        "log.warning('model.outdated')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=True
    )
    assert "model.outdated" in done.stdout
    assert "processor.message.parse" not in done.stdout + done.stderr
