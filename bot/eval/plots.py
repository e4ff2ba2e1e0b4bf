"""PNG plots of the evaluation (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402


def escalation_confusion(table: dict[str, dict[str, int]], escalation: dict[str, object], path: Path) -> None:
    """Left: handed to a person or not, against the label. Right: every reply outcome per expected kind."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [1, 3]})
    binary = np.array([[escalation["tp"], escalation["fn"]], [escalation["fp"], escalation["tn"]]])
    _matrix(left, binary, ["needs a human", "does not"], ["handed over", "kept by the bot"])
    left.set_title("Escalation")
    rows = list(table)
    columns = list(next(iter(table.values())))
    _matrix(right, np.array([[table[r][c] for c in columns] for r in rows]), rows, columns)
    right.set_title("Bot reply by expected kind (held-out set)")
    plt.setp(right.get_xticklabels(), rotation=25, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _matrix(ax: plt.Axes, values: np.ndarray, rows: list[str], columns: list[str]) -> None:
    ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    top = values.max() or 1
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")


def threshold_curves(
    answer: dict[str, list[float]],
    answer_threshold: float,
    escalation: dict[str, list[float | None]],
    fallback_threshold: float,
    path: Path,
) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.plot(answer["threshold"], answer["answered"], label="questions answered")
    left.plot(answer["threshold"], answer["right_first"], label="answered with the right article")
    left.plot(answer["threshold"], answer["oos_answered"], label="out-of-scope messages above threshold")
    left.axvline(answer_threshold, color="grey", linestyle="--", label=f"configured {answer_threshold}")
    left.set_xlabel("answer threshold (retrieval score)")
    left.set_ylabel("share of messages")
    left.set_title("Knowledge-base answer threshold")
    left.legend(fontsize=8)
    for name in ("precision", "recall", "f1"):
        right.plot(escalation["threshold"], [np.nan if v is None else v for v in escalation[name]], label=name)
    right.axvline(fallback_threshold, color="grey", linestyle="--", label=f"configured {fallback_threshold}")
    right.set_xlabel("intent confidence threshold (FallbackClassifier)")
    right.set_title("Escalation (request_human / complain)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rate_curve(curve: dict[str, list[float]], x: str, title: str, path: Path, marks: dict[str, float]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in curve.items():
        if name != x:
            ax.plot(curve[x], values, label=name.replace("_", " "))
    for label, value in marks.items():
        ax.axvline(value, color="grey", linestyle="--", label=label)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _oos_axes(ax: plt.Axes, curves: dict[str, dict[str, list]], chosen: float) -> None:
    styles = {"in_scope_accuracy": "in-scope accuracy", "oos_recall": "OOS recall", "mcc": "MCC"}
    for (split, curve), dash in zip(curves.items(), ("--", "-", ":"), strict=False):
        for (key, label), color in zip(styles.items(), ("tab:blue", "tab:orange", "tab:green"), strict=True):
            values = [np.nan if v is None else v for v in curve[key]]
            ax.plot(curve["threshold"], values, dash, color=color, label=f"{label} ({split})")
    ax.axvline(chosen, color="grey", linestyle="-.", label=f"chosen {chosen:.2f}")
    ax.set_xlabel("threshold on the intent classifier's confidence (below: out of scope)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)


def oos_tradeoff(curves: dict[str, dict[str, list]], chosen: float, title: str, path: Path) -> None:
    """In-scope accuracy, OOS recall and MCC against the threshold, one line style per split."""
    fig, ax = plt.subplots(figsize=(8, 5))
    _oos_axes(ax, curves, chosen)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def oos_tradeoff_grid(
    curves: dict[str, dict[str, dict[str, list]]], chosen: dict[str, float], title: str, path: Path
) -> None:
    """One oos_tradeoff panel per bot."""
    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.8), squeeze=False)
    for ax, (name, bot_curves) in zip(axes[0], curves.items(), strict=True):
        _oos_axes(ax, bot_curves, chosen[name])
        ax.set_title(name)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
