"""Retrieval and classification metrics on plain Python data.

`ranked` is a list of ids best first; `relevant` the ids that count as right
(graded relevance for NDCG: a mapping id -> gain).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def recall_at_k(ranked: Sequence[str], relevant: set[str] | Mapping[str, float], k: int) -> float:
    """1.0 when a relevant id is among the first `k` (the usual single-answer "hit@k")."""
    return 1.0 if any(item in relevant for item in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: set[str] | Mapping[str, float]) -> float:
    """1/rank of the first relevant id, 0.0 when none is ranked."""
    for position, item in enumerate(ranked, start=1):
        if item in relevant:
            return 1.0 / position
    return 0.0


def ndcg_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int) -> float:
    """Normalised discounted cumulative gain with the standard log2(rank + 1) discount."""
    dcg = sum(gains.get(item, 0.0) / math.log2(position + 1) for position, item in enumerate(ranked[:k], start=1))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(position + 1) for position, gain in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class BinaryScores:
    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, truth: Sequence[bool], predicted: Sequence[bool]) -> BinaryScores:
        pairs = list(zip(truth, predicted, strict=True))
        return cls(
            tp=sum(t and p for t, p in pairs),
            fp=sum(p and not t for t, p in pairs),
            fn=sum(t and not p for t, p in pairs),
            tn=sum(not t and not p for t, p in pairs),
        )

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def mcc(self) -> float | None:
        """Matthews correlation coefficient (None when a row or column of the matrix is empty)."""
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return (tp * tn - fp * fn) / denominator if denominator else None

    def as_dict(self) -> dict[str, object]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }
