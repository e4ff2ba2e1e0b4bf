"""`bot/assistant calibrate`: the knowledge-base thresholds, computed from data.

Data (never the held-out set):
- in-scope: every article title and sample question, k-fold cross-validated
  (each is searched in an index built without it and without its translations),
  repeated with other folds and pooled;
- out-of-scope: nlu_data's `out_of_scope` examples, searched in the full index.
Each is searched as production does (its detected language, the index's scoring)
and the decision of bot/kb/decision.py is applied for every combination of
`answer`, `choose_margin` and `offer` on a grid. The best by mean utility is
written to the thresholds file. Utility of one message (UTILITY below): the right article answered +1,
offered among two +0.5 (one more click), a wrong article answered -1, two wrong
ones offered -0.5, an out-of-scope message answered -1 (offered: -0.5), and
asking to rephrase 0.

`outranks_intent` (bot/components/kb_outranks_intent.py): nlu_data's examples of
the intents a strong match outranks (small talk and out of scope) are searched
in the full index; the value is the lowest one on the grid, not below `answer`,
that at most OUTRANK_ERROR_RATE of them reach: those would be answered with an
article instead of the small talk they are.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from bot.embeddings.encoder import Encoder, get_encoder
from bot.eval import plots
from bot.eval.run_info import run_info
from bot.kb.decision import OUTRANKABLE_INTENTS, Thresholds
from bot.kb.index import Entries, KnowledgeIndex, as_embedded, load_or_build_entries
from bot.language import choose_language
from bot.settings import Settings

UTILITY = {
    ("in_scope", "answer", True): 1.0,
    ("in_scope", "choose", True): 0.5,
    ("in_scope", "answer", False): -1.0,
    ("in_scope", "choose", False): -0.5,
    ("out_of_scope", "answer", False): -1.0,
    ("out_of_scope", "choose", False): -0.5,
}
ANSWER_GRID = np.round(np.arange(0.0, 0.501, 0.005), 3)
OUTRANK_GRID = np.round(np.arange(0.0, 1.0001, 0.005), 3)
OUTRANK_ERROR_RATE = 0.01  # one small-talk message in a hundred taken for a question
MARGIN_GRID = np.round(np.arange(0.0, 0.2001, 0.0025), 4)
# Mean utilities closer than this are a tie (about 2 of the 4,758 pooled messages' worth):
# among near-ties the smallest choose margin and the fewest suggestions win, as a customer
# would rather have the answer than a choice the data cannot justify. The surface is flat:
# on 2026-12-06, margin 0.0875 scored 0.3887 and 0.125 0.3888, and 0.125 turned ordinary
# questions ("Jak mogę zwrócić zamówiony produkt?") into choices of two articles.
UTILITY_TOLERANCE = 0.0005
# The answer value is chosen on the mean utility over it and this many grid steps (0.005 each) on
# either side: on a flat surface the single best value moves with the folds' seed (on 2026-12-06,
# 0.365 with seed 0 and 0.34 with seed 100, ten repeats each), the best neighbourhood much less.
SMOOTHING_STEPS = 2


@dataclass(frozen=True)
class Searched:
    """One calibration message: its two best candidates and which articles are right."""

    kind: str  # in_scope or out_of_scope
    candidates: list[dict]
    right: frozenset[str]


def intent_examples(nlu_dir: Path, intents: tuple[str, ...]) -> list[str]:
    texts = []
    for path in sorted(nlu_dir.glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            if block.get("intent") in intents:
                texts += [line[2:].strip() for line in block["examples"].splitlines() if line.startswith("- ")]
    return texts


def as_asked(texts: list[str], encoder: Encoder) -> tuple[list[str], np.ndarray]:
    """Each text's detected language, and its vector as the bot embeds a customer's message."""
    languages = [choose_language(text, None).language for text in texts]
    return languages, encoder.encode(as_embedded(texts, languages, [False] * len(texts)))


def best_scores(languages: list[str], vectors: np.ndarray, index: KnowledgeIndex) -> np.ndarray:
    """The best article's score for each text, searched in its language."""
    return np.array([index.search(vector, language, k=1)[0].score
                     for language, vector in zip(languages, vectors, strict=True)])  # fmt: skip


def outrank_threshold(small_talk: np.ndarray, answer: float) -> float:
    """The lowest grid value, not below `answer`, that at most OUTRANK_ERROR_RATE of `small_talk` scores reach."""
    for value in OUTRANK_GRID:
        if value >= answer and np.mean(small_talk >= value) <= OUTRANK_ERROR_RATE:
            return float(value)
    return float(OUTRANK_GRID[-1])


def translation_groups(entries: Entries) -> list[str]:
    """Each text's group: its article and its place among that article's title and questions in its language.

    An article's files list the same questions in the same order in every language
    (kb_articles/README.md), so a group is one question and its translations.
    """
    _, ids, languages, _, passages = entries
    seen: Counter[tuple[str, str]] = Counter()
    groups = []
    for article_id, language, is_body in zip(ids, languages, passages, strict=True):
        groups.append(f"{article_id} body" if is_body else f"{article_id} #{seen[article_id, language]}")
        seen[article_id, language] += not is_body
    return groups


def cross_validated(entries: Entries, folds: int, seed: int) -> list[Searched]:
    """Each title and sample question searched in an index without it and without its translations.

    With its translations left in, a question finds itself in another language: right
    first 82% on our articles against 68% without them (5-fold, seed 0), and thresholds
    fitted to those inflated scores asked 19.0% of the questions held out this way to
    rephrase (README, "Quality figures").
    Bodies always stay in.
    """
    vectors, ids, languages, texts, passages = entries
    queries = [choose_language(text, None, hint).language for text, hint in zip(texts, languages, strict=True)]
    groups = np.asarray(translation_groups(entries))
    askable = np.flatnonzero(~np.asarray(passages, dtype=bool))
    shuffled = np.random.default_rng(seed).permutation(np.unique(groups[askable]))
    fold_of = {group: position % folds for position, group in enumerate(shuffled)}
    searched = []
    for fold in tqdm(range(folds), desc="cross-validation folds", unit="fold"):
        test = np.array([i for i in askable if fold_of[groups[i]] == fold])
        train = np.setdiff1d(np.arange(len(texts)), test)
        index = KnowledgeIndex(vectors[train], [ids[i] for i in train], [languages[i] for i in train],
                               [texts[i] for i in train], [passages[i] for i in train])  # fmt: skip
        for i in test:
            candidates = [c.as_dict() for c in index.search(vectors[i], queries[i], k=2)]
            searched.append(Searched("in_scope", candidates, frozenset({ids[i]})))
    return searched


class Outcomes:
    """The calibration messages as arrays, for scoring every threshold on the grid at numpy speed."""

    def __init__(self, searched: list[Searched]) -> None:
        def score(item: Searched, rank: int) -> float:
            return item.candidates[rank]["score"] if len(item.candidates) > rank else -np.inf

        def right(item: Searched, rank: int) -> bool:
            return len(item.candidates) > rank and item.candidates[rank]["article_id"] in item.right

        self.in_scope = np.array([item.kind == "in_scope" for item in searched])
        self.best, self.second = (np.array([score(item, rank) for item in searched]) for rank in (0, 1))
        self.right_first, self.right_second = (np.array([right(item, rank) for item in searched]) for rank in (0, 1))
        kinds = [item.kind for item in searched]
        first, either = self.right_first, self.right_first | self.right_second
        # Each message's utility if it is answered, and if two articles are offered (UTILITY).
        self.if_answered = np.array([UTILITY[k, "answer", bool(r)] for k, r in zip(kinds, first, strict=True)])
        self.if_offered = np.array([UTILITY[k, "choose", bool(r)] for k, r in zip(kinds, either, strict=True)])

    def decisions(self, thresholds: Thresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks of the messages bot/kb/decision.py's `decide` answers, offers a choice of two, and suggests two to
        (the same rules over arrays; tests/test_calibrate.py checks that they agree)."""
        confident = self.best >= thresholds.answer
        choose = confident & (self.best - self.second < thresholds.choose_margin)
        suggest = ~confident & (self.best >= thresholds.offer)
        return confident & ~choose, choose, suggest

    def utility(self, thresholds: Thresholds) -> float:
        answered, choose, suggest = self.decisions(thresholds)
        offered = choose | suggest
        return float(np.mean(np.where(answered, self.if_answered, 0.0) + np.where(offered, self.if_offered, 0.0)))

    def rates(self, thresholds: Thresholds) -> dict[str, float]:
        answered, choose, suggest = (mask[self.in_scope] for mask in self.decisions(thresholds))
        first, second = self.right_first[self.in_scope], self.right_second[self.in_scope]
        held_back = ~np.any(self.decisions(thresholds), axis=0)[~self.in_scope]
        return {
            "answered_or_offered": float(np.mean(answered | choose | suggest)),
            "right_article_first": float(np.mean(first)),
            "answered_right": float(np.mean(answered & first)),
            "answered_wrong": float(np.mean(answered & ~first)),
            "offered_choice": float(np.mean(choose)),
            "choice_rescued_wrong_first": float(np.sum(choose & ~first & second) / max(np.sum(choose), 1)),
            "suggested": float(np.mean(suggest)),
            "suggested_right": float(np.sum(suggest & (first | second)) / max(np.sum(suggest), 1)),
            "out_of_scope_held_back": float(np.mean(held_back)),
        }


def first_near_best(utilities: list[float]) -> int:
    """The first position whose utility ties with the best (within UTILITY_TOLERANCE)."""
    best = max(utilities)
    return next(i for i, value in enumerate(utilities) if value >= best - UTILITY_TOLERANCE)


def smoothed(values: list[float], steps: int = SMOOTHING_STEPS) -> np.ndarray:
    """Each value averaged with its neighbours up to `steps` grid positions away (fewer at the ends)."""
    array = np.asarray(values, dtype=float)
    return np.array([array[max(0, i - steps) : i + steps + 1].mean() for i in range(len(array))])


def best_thresholds(outcomes: Outcomes) -> tuple[Thresholds, float]:
    """The grid's best (answer, choose_margin, offer) by mean utility; near-ties go to the smallest
    margin and the fewest offers (UTILITY_TOLERANCE), and the answer value is the one whose
    neighbourhood scores best (SMOOTHING_STEPS).

    Messages scoring at least `answer` and those below it never share a decision, so the
    best margin for each answer value is found without a band, then the best band below it.
    Returns the chosen thresholds and their own (unsmoothed) mean utility.
    """
    per_answer: list[tuple[Thresholds, float]] = []
    for answer in tqdm(ANSWER_GRID, desc="threshold grid", unit="answer value"):
        by_margin = [outcomes.utility(Thresholds(float(answer), float(m))) for m in MARGIN_GRID]
        margin = MARGIN_GRID[first_near_best(by_margin)]
        offers = [np.inf, *(value for value in ANSWER_GRID[::-1] if value < answer)]  # fewest offers first
        candidates = [Thresholds(float(answer), float(margin), offer=float(value)) for value in offers]
        chosen = candidates[first_near_best([outcomes.utility(c) for c in candidates])]
        per_answer.append((chosen, outcomes.utility(chosen)))
    best = int(np.argmax(smoothed([value for _, value in per_answer])))
    return per_answer[best]


def outrank_rates(searched: list[Searched], small_talk_scores: np.ndarray, value: float) -> dict[str, float]:
    in_scope = [s for s in searched if s.kind == "in_scope"]
    reaching = [s for s in in_scope if s.candidates[0]["score"] >= value]
    return {
        "small_talk_taken_for_question": float(np.mean(small_talk_scores >= value)),
        "questions_reaching_it": len(reaching) / len(in_scope),
        "right_article_among_those": sum(s.candidates[0]["article_id"] in s.right for s in reaching)
        / max(len(reaching), 1),
    }


def write_thresholds(path: Path, chosen: Thresholds, figures: dict[str, float], info: dict, sizes: dict) -> None:
    dirty = " with uncommitted changes" if info.get("uncommitted_changes") else ""
    small_talk, reaching = figures["small_talk_taken_for_question"], figures["questions_reaching_it"]
    right = figures["right_article_among_those"]
    text = f"""\
# Knowledge-base decision thresholds on the retriever's score (0.7 x the mean of the
# cosines with an article's centroid and with its nearest title or question, + 0.3 x
# the cosine with its nearest body, after centring on the language mean; see bot/kb/index.py).
# Written by `bot/assistant calibrate` (bot/eval/calibrate.py); do not tune by hand.
# Computed {info["date"]} at commit {info["commit"]}{dirty}, embedding model {Path(info["embedding_model"]).name}:
# {sizes["folds"]}-fold cross-validation ({sizes["repeats"]} repeats) over the articles' {sizes["in_scope"]} titles and
# sample questions, each held out with its translations, plus nlu_data's {sizes["out_of_scope"]} out-of-scope
# examples (never the held-out set). Chosen by the best mean utility over a grid (right
# answer +1, right article among two offered +0.5, wrong answer -1, two wrong offered
# -0.5, out-of-scope answered -1, asking to rephrase 0). At these values:
#   {100 * figures["answered_or_offered"]:.1f}% of questions are answered or offered two articles; right article first
#   {100 * figures["right_article_first"]:.1f}%, answered right at once {100 * figures["answered_right"]:.1f}%, \
wrong {100 * figures["answered_wrong"]:.1f}%;
#   {100 * figures["offered_choice"]:.1f}% get a choice of two close answers, and \
{100 * figures["choice_rescued_wrong_first"]:.1f}% of those would have shown a wrong article first;
#   {100 * figures["suggested"]:.1f}% score below `answer` but at least `offer` and get the two best as \
suggestions, the right one among them for {100 * figures["suggested_right"]:.1f}%;
#   {100 * figures["out_of_scope_held_back"]:.1f}% of out-of-scope messages are held back (the classifier's out_of_scope
#   intent is the first guard).
# outranks_intent: the best article's score at which a message is a question even when the classifier
# calls it small talk or out of scope (the lowest value, not below `answer`, that at most
# {100 * OUTRANK_ERROR_RATE:.0f}% of nlu_data's {sizes["small_talk"]} small-talk and out-of-scope examples
# reach: {100 * small_talk:.1f}%). {100 * reaching:.1f}% of the cross-validated questions reach it,
# {100 * right:.1f}% of those with the right article first.
answer: {chosen.answer}
choose_margin: {chosen.choose_margin}
outranks_intent: {chosen.outranks_intent}
offer: {chosen.offer}
"""
    path.write_text(text, encoding="utf-8")


def main(settings: Settings, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bot/assistant calibrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="the first repeat's seed (the next ones count up)")
    parser.add_argument("--repeats", type=int, default=10, help="cross-validation repeats, pooled (a steadier choice)")
    parser.add_argument("--out", type=Path, default=settings.thresholds_file, help="thresholds file to write")
    parser.add_argument("--dry-run", action="store_true", help="print the result, do not write the thresholds")
    args = parser.parse_args(argv)
    encoder = get_encoder(settings)
    # Before this command writes its plots and JSON, which would count as uncommitted changes.
    info = run_info(settings, None, encoder.location, settings.project_dir / "bot" / "eval" / "heldout.yml")
    entries = load_or_build_entries(settings.articles_dir, encoder, settings.cache_dir)
    full_index = KnowledgeIndex(*entries)
    nlu_dir = settings.project_dir / "nlu_data" / "nlu"
    oos_texts = intent_examples(nlu_dir, ("out_of_scope",))
    out_of_scope = []
    oos_languages, oos_vectors = as_asked(oos_texts, encoder)
    for vector, language in zip(oos_vectors, oos_languages, strict=True):
        candidates = [c.as_dict() for c in full_index.search(vector, language, k=2)]
        out_of_scope.append(Searched("out_of_scope", candidates, frozenset()))
    searched = []
    for seed in range(args.seed, args.seed + args.repeats):  # out-of-scope once per repeat: the same mix as one
        searched += cross_validated(entries, args.folds, seed) + out_of_scope
    outcomes = Outcomes(searched)
    best, best_utility = best_thresholds(outcomes)
    small_talk = intent_examples(nlu_dir, OUTRANKABLE_INTENTS)
    small_talk_scores = best_scores(*as_asked(small_talk, encoder), full_index)
    best = dataclasses.replace(best, outranks_intent=outrank_threshold(small_talk_scores, best.answer))
    figures = outcomes.rates(best) | outrank_rates(searched, small_talk_scores, best.outranks_intent)
    curve: dict[str, list[float]] = {"answer_threshold": [], "mean_utility": []}
    for answer in ANSWER_GRID:
        at = dataclasses.replace(best, answer=float(answer))
        curve["answer_threshold"].append(float(answer))
        curve["mean_utility"].append(outcomes.utility(at))
        for name, value in outcomes.rates(at).items():
            if name != "right_article_first":
                curve.setdefault(name, []).append(value)
    out_dir = settings.project_dir / "docs" / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    plots.rate_curve(curve, "answer_threshold", "Calibration (cross-validated sample questions, out-of-scope examples)",
                     out_dir / "calibration.png", {f"chosen {best.answer}": best.answer})  # fmt: skip
    outrank_curve: dict[str, list[float]] = {"outranks_intent": [float(v) for v in OUTRANK_GRID]}
    for value in OUTRANK_GRID:
        for name, rate in outrank_rates(searched, small_talk_scores, float(value)).items():
            outrank_curve.setdefault(name, []).append(rate)
    chosen = {f"chosen {best.outranks_intent}": best.outranks_intent}
    plots.rate_curve(outrank_curve, "outranks_intent", "When an article outranks the small-talk intent",
                     out_dir / "calibration-outranks.png", chosen)  # fmt: skip
    sizes = {"folds": args.folds, "repeats": args.repeats, "in_scope": entries[4].count(False),
             "out_of_scope": len(oos_texts), "small_talk": len(small_talk)}  # fmt: skip
    result = {"run": info, "sizes": sizes, "chosen": best.__dict__, "mean_utility": best_utility, "figures": figures,
              "utility": {"|".join(map(str, k)): v for k, v in UTILITY.items()}, "curve": curve,
              "outrank_curve": outrank_curve,
              "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
    (out_dir / "calibration.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(
        f"==> answer {best.answer}, choose_margin {best.choose_margin}, offer {best.offer} "
        f"(mean utility {best_utility:.3f}), outranks_intent {best.outranks_intent}"
    )
    print("    " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in figures.items()))
    if not args.dry_run:
        write_thresholds(args.out, best, figures, info, sizes)
        print(f"==> wrote {args.out}")
    return 0
