"""The public intent sets as plain data, and the out-of-scope metrics on them (pure functions, no model).

Every set becomes a list of (text, label) pairs; out-of-scope examples get the
label OUT_OF_SCOPE whatever the set calls them (CLINC150 "oos", HINT3
"NO_NODES_DETECTED"). Metrics follow the papers:
- CLINC150 (Larson et al. 2019): in-scope accuracy = share of in-scope queries
  given their right intent (a query sent to out-of-scope counts as wrong);
  out-of-scope recall = share of out-of-scope queries sent to out-of-scope.
- HINT3 (Arora et al. 2020): accuracy over all queries with out-of-scope as one
  more label, in-scope accuracy and out-of-scope recall as above, and the
  multi-class Matthews correlation coefficient over all labels (the authors'
  results files give an MCC at thresholds where OOS recall is 0, so it is not
  the binary in/out MCC).
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # rasa is slow to import; the functions below import it when they run
    from rasa.shared.nlu.training_data.training_data import TrainingData

OUT_OF_SCOPE = "out_of_scope"
HINT3_BOTS = ("sofmattress", "powerplay11", "curekart")
HINT3_OOS = "NO_NODES_DETECTED"
THRESHOLD_GRID = np.round(np.arange(0.0, 1.0001, 0.01), 2)

Example = tuple[str, str]  # (text, label)


def _clean(text: str) -> str:
    """One line, single spaces (Rasa's YAML lists one example per line)."""
    return " ".join(text.split())


def _examples(rows: Sequence[Sequence[str]], oos_names: frozenset[str]) -> list[Example]:
    cleaned = [(_clean(text), OUT_OF_SCOPE if label in oos_names else label) for text, label in rows]
    return [(text, label) for text, label in cleaned if text]


def load_clinc150(folder: Path) -> dict[str, list[Example]]:
    """data_full.json: splits train/val/test (in-scope) and oos_train/oos_val/oos_test."""
    data = json.loads((folder / "data_full.json").read_text(encoding="utf-8"))
    return {split: _examples(rows, frozenset({"oos"})) for split, rows in data.items()}


def _csv_examples(path: Path, text_column: str, label_column: str, oos_names: frozenset[str]) -> list[Example]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(row[text_column], row[label_column]) for row in csv.DictReader(handle)]
    return _examples(rows, oos_names)


def load_banking77(folder: Path) -> dict[str, list[Example]]:
    return {
        split: _csv_examples(folder / f"{split}.csv", "text", "category", frozenset())
        for split in ("train", "test")
    }  # fmt: skip


def load_hint3(folder: Path, bot: str) -> dict[str, list[Example]]:
    """HINT3 v1, the version of the paper; the test sets mark out-of-scope as NO_NODES_DETECTED."""
    root = folder / "dataset" / "v1"
    return {
        split: _csv_examples(root / split / f"{bot}_{split}.csv", "sentence", "label", frozenset({HINT3_OOS}))
        for split in ("train", "test")
    }  # fmt: skip


def training_data(examples: Sequence[Example]) -> TrainingData:
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    return TrainingData([Message.build(text=text, intent=label) for text, label in examples])


def nlu_yaml(examples: Sequence[Example]) -> str:
    """Rasa 3 NLU training data (YAML) for the examples."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter

    return RasaYAMLWriter().dumps(training_data(examples))


def examples_digest(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for text, label in examples:
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


# --- predictions and metrics ---------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """One test message: its label, the classifier's best intent and confidence, the pipeline's intent."""

    label: str
    intent: str
    confidence: float
    pipeline_intent: str = ""  # after config.yml's FallbackClassifier (nlu_fallback below its threshold)


def decide(predictions: Sequence[Prediction], threshold: float) -> list[str]:
    """Out of scope below the threshold (or when out_of_scope is itself the best intent)."""
    return [OUT_OF_SCOPE if p.confidence < threshold else p.intent for p in predictions]


def multiclass_mcc(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Matthews correlation coefficient for K classes (Gorodkin's R_K, as sklearn's matthews_corrcoef).

    0.0 when it is undefined (all truths or all predictions one class).
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    samples = len(truth)
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    true_counts, predicted_counts = Counter(truth), Counter(predicted)
    labels = set(true_counts) | set(predicted_counts)
    covariance = correct * samples - sum(true_counts[k] * predicted_counts[k] for k in labels)
    spread_predicted = samples**2 - sum(c**2 for c in predicted_counts.values())
    spread_true = samples**2 - sum(c**2 for c in true_counts.values())
    denominator = (float(spread_predicted) * float(spread_true)) ** 0.5
    return covariance / denominator if denominator else 0.0


def _share(hits: Sequence[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


def oos_scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float | int | None]:
    pairs = list(zip(truth, predicted, strict=True))
    in_scope = [p == t for t, p in pairs if t != OUT_OF_SCOPE]
    out_of_scope = [p == OUT_OF_SCOPE for t, p in pairs if t == OUT_OF_SCOPE]
    sent_out = [t == OUT_OF_SCOPE for t, p in pairs if p == OUT_OF_SCOPE]
    return {
        "n": len(pairs),
        "in_scope_n": len(in_scope),
        "oos_n": len(out_of_scope),
        "accuracy": _share([p == t for t, p in pairs]),
        "in_scope_accuracy": _share(in_scope),
        "oos_recall": _share(out_of_scope),
        "oos_precision": _share(sent_out),
        "mcc": multiclass_mcc(truth, predicted) if pairs else None,
    }


def scores_at(predictions: Sequence[Prediction], threshold: float) -> dict[str, float | int | None]:
    return {"threshold": float(threshold), **oos_scores([p.label for p in predictions], decide(predictions, threshold))}


def pipeline_scores(predictions: Sequence[Prediction]) -> dict[str, float | int | None]:
    """The production pipeline's own decision: its FallbackClassifier's nlu_fallback counts as out of scope."""
    predicted = [OUT_OF_SCOPE if p.pipeline_intent == "nlu_fallback" else p.pipeline_intent for p in predictions]
    return oos_scores([p.label for p in predictions], predicted)


CURVE_KEYS = ("accuracy", "in_scope_accuracy", "oos_recall", "mcc")


def threshold_curve(predictions: Sequence[Prediction], grid: Sequence[float] = THRESHOLD_GRID) -> dict[str, list]:
    curve: dict[str, list] = {"threshold": [], **{key: [] for key in CURVE_KEYS}}
    for threshold in grid:
        scores = scores_at(predictions, float(threshold))
        curve["threshold"].append(float(threshold))
        for key in CURVE_KEYS:
            curve[key].append(scores[key])
    return curve


Objective = Callable[[dict[str, float | int | None]], float]


def balanced_objective(scores: dict[str, float | int | None]) -> float:
    """In-scope accuracy plus out-of-scope recall (each counts the same)."""
    return float(scores["in_scope_accuracy"] or 0.0) + float(scores["oos_recall"] or 0.0)


def mcc_objective(scores: dict[str, float | int | None]) -> float:
    return float(scores["mcc"] or 0.0)


def choose_threshold(
    predictions: Sequence[Prediction], objective: Objective, grid: Sequence[float] = THRESHOLD_GRID
) -> float:
    """The grid threshold with the best objective on these (tuning) predictions; the lowest one on ties."""
    best_threshold, best_value = float(grid[0]), -np.inf
    for threshold in grid:
        value = objective(scores_at(predictions, float(threshold)))
        if value > best_value + 1e-12:
            best_threshold, best_value = float(threshold), value
    return best_threshold


def lowest_threshold_reaching(
    predictions: Sequence[Prediction], oos_recall: float, grid: Sequence[float] = THRESHOLD_GRID
) -> float:
    """The lowest grid threshold at which these (tuning) predictions reach `oos_recall` (the highest if none does)."""
    for threshold in grid:
        if float(scores_at(predictions, float(threshold))["oos_recall"] or 0.0) >= oos_recall:
            return float(threshold)
    return float(grid[-1])


# --- tuning data for sets without out-of-scope examples ------------------------


def pseudo_oos_folds(
    examples: Sequence[Example], folds: int = 5, seed: int = 0
) -> list[tuple[list[Example], list[Example]]]:
    """Cross-validation folds that imitate unseen out-of-scope queries with held-out intents.

    Fold k leaves out one k-th of the intents entirely (their examples become
    OUT_OF_SCOPE tuning queries) and one k-th of every other intent's examples
    (in-scope tuning queries); it trains on the rest. An intent with a single
    example always stays in training when it is in scope.
    """
    by_intent: dict[str, list[str]] = defaultdict(list)
    for text, label in examples:
        by_intent[label].append(text)
    rng = random.Random(seed)
    intents = sorted(by_intent)
    rng.shuffle(intents)
    for intent in intents:
        rng.shuffle(by_intent[intent])
    result = []
    for k in range(folds):
        unseen = set(intents[k::folds])
        train: list[Example] = []
        tuning: list[Example] = []
        for intent in intents:
            texts = by_intent[intent]
            if intent in unseen:
                tuning.extend((text, OUT_OF_SCOPE) for text in texts)
                continue
            held = set(range(k % len(texts), len(texts), folds)) if len(texts) > 1 else set()
            for position, text in enumerate(texts):
                (tuning if position in held else train).append((text, intent))
        result.append((train, tuning))
    return result
