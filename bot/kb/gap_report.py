"""The editors' report of what customers asked that the knowledge base did not answer well.

Recorded questions (bot/kb/gaps.py) are grouped by meaning across languages: each is
embedded with the bot's encoder, centred on its language's mean like the search index
does (without it, questions group by language, not by topic), and grouped by average
linkage with a cosine-distance cut. The cut was calibrated on the articles' own 1,064
titles and sample questions, taking each article as the true group: at 0.85 the
adjusted Rand index peaks at 0.38 (69 groups for 42 articles; 38% of same-article
pairs in different languages land in one group; uncentred vectors peak at 0.16).
So a group is a good lead, not a verdict: similar questions may still be split.

Two views:
- suggested new articles: the groups, largest first (representative question = the
  one closest to the rest of its group; languages; examples; what the bot answered);
- articles that attract the wrong questions: articles the bot answered with, after
  which the customer rated the answer unhelpful or the conversation was escalated.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.kb.gaps import GapRecord

GROUP_DISTANCE = 0.85
MAX_EXAMPLES = 5


@dataclass
class QuestionGroup:
    representative: str
    records: list[GapRecord]
    examples: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.records)

    @property
    def languages(self) -> Counter[str]:
        return Counter(r.language or "?" for r in self.records)

    @property
    def kinds(self) -> Counter[str]:
        return Counter(r.kind for r in self.records)

    @property
    def articles(self) -> Counter[str]:
        return Counter(r.article for r in self.records if r.article)


@dataclass
class WrongArticle:
    article_id: str
    records: list[GapRecord]

    @property
    def kinds(self) -> Counter[str]:
        return Counter(r.kind for r in self.records)

    @property
    def languages(self) -> Counter[str]:
        return Counter(r.language or "?" for r in self.records)

    @property
    def examples(self) -> list[str]:
        return list(dict.fromkeys(r.text for r in reversed(self.records)))[:MAX_EXAMPLES]


@dataclass
class GapReport:
    records: list[GapRecord]
    groups: list[QuestionGroup]
    wrong_articles: list[WrongArticle]


def group_labels(vectors: np.ndarray, distance: float = GROUP_DISTANCE) -> np.ndarray:
    """A group number per (centred, normalised) vector: average linkage, cut at `distance` (cosine)."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=int)
    if len(vectors) == 1:
        return np.zeros(1, dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage

    return fcluster(linkage(vectors, method="average", metric="cosine"), t=distance, criterion="distance") - 1


def _representative(vectors: np.ndarray) -> int:
    """The member most similar, on average, to the others."""
    return int(np.argmax((vectors @ vectors.T).sum(axis=1)))


def build_report(
    records: Sequence[GapRecord],
    embed: Callable[[list[str], list[str]], np.ndarray],
    distance: float = GROUP_DISTANCE,
) -> GapReport:
    """`embed(texts, languages)`: one centred, normalised vector per text (see KnowledgeIndex.centred)."""
    records = list(records)
    groups: list[QuestionGroup] = []
    if records:
        vectors = embed([r.text for r in records], [r.language for r in records])
        labels = group_labels(vectors, distance)
        for label in np.unique(labels):
            rows = np.flatnonzero(labels == label)
            members = [records[i] for i in rows]
            best = members[_representative(vectors[rows])]
            examples = [t for t in dict.fromkeys(m.text for m in reversed(members)) if t != best.text]
            groups.append(QuestionGroup(best.text, members, examples[: MAX_EXAMPLES - 1]))
    groups.sort(key=lambda g: (-g.size, -len({r.conversation for r in g.records}), g.representative))
    by_article: dict[str, list[GapRecord]] = {}
    for record in records:
        if record.article and record.kind in ("unhelpful", "escalated"):
            by_article.setdefault(record.article, []).append(record)
    wrong = sorted((WrongArticle(a, rs) for a, rs in by_article.items()), key=lambda w: (-len(w.records), w.article_id))
    return GapReport(records, groups, wrong)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {count}" for key, count in counter.most_common())


def format_report(report: GapReport, min_size: int = 2) -> str:
    if not report.records:
        return (
            "No questions recorded in this period: nothing went unanswered, only suggested, escalated"
            " or rated unhelpful."
        )
    first = dt.datetime.fromtimestamp(min(r.at for r in report.records)).strftime("%Y-%m-%d")
    last = dt.datetime.fromtimestamp(max(r.at for r in report.records)).strftime("%Y-%m-%d")
    lines = [
        f"{len(report.records)} questions from {first} to {last} ({_counts(Counter(r.kind for r in report.records))}), "
        f"{len(report.groups)} groups by meaning.",
        "",
        f"Suggested new articles (groups of {min_size} or more questions, largest first):",
    ]
    shown = [g for g in report.groups if g.size >= min_size]
    for rank, group in enumerate(shown, 1):
        lines.append(f'{rank:3}. "{group.representative}"')
        lines.append(f"     {group.size} questions; languages: {_counts(group.languages)}; {_counts(group.kinds)}")
        if group.articles:
            lines.append(f"     the bot answered with: {_counts(group.articles)}")
        lines.extend(f"       - {example}" for example in group.examples)
    if not shown:
        lines.append("     (none yet)")
    single = len(report.groups) - len(shown)
    if single:
        lines.append(f"     ... and {single} smaller groups (all of them in --csv)")
    lines += ["", "Articles that attract the wrong questions (answered, then rated unhelpful or escalated):"]
    for rank, wrong in enumerate(report.wrong_articles, 1):
        lines.append(
            f"{rank:3}. {wrong.article_id}: {len(wrong.records)} questions ({_counts(wrong.kinds)}); "
            f"languages: {_counts(wrong.languages)}"
        )
        lines.extend(f"       - {example}" for example in wrong.examples)
    if not report.wrong_articles:
        lines.append("     (none)")
    return "\n".join(lines)


def _cell(value: object) -> object:
    """Customers' text must not run as a spreadsheet formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


CSV_COLUMNS = ("report", "rank", "size", "representative", "languages", "kinds", "articles", "examples")


def write_csv(report: GapReport, path: Path) -> None:
    """One row per question group (report=new_article) and per article (report=wrong_article)."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for rank, group in enumerate(report.groups, 1):
            writer.writerow(
                map(
                    _cell,
                    (
                        "new_article",
                        rank,
                        group.size,
                        group.representative,
                        _counts(group.languages),
                        _counts(group.kinds),
                        _counts(group.articles),
                        " | ".join(group.examples),
                    ),
                )
            )
        for rank, wrong in enumerate(report.wrong_articles, 1):
            writer.writerow(
                map(
                    _cell,
                    (
                        "wrong_article",
                        rank,
                        len(wrong.records),
                        wrong.examples[0],
                        _counts(wrong.languages),
                        _counts(wrong.kinds),
                        wrong.article_id,
                        " | ".join(wrong.examples[1:]),
                    ),
                )
            )
