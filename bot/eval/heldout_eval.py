"""Figures on the held-out set from the bot's replies (pure functions, no model)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bot.eval.bot_reply import BotReply
from bot.eval.heldout import HUMAN, HUMAN_INTENTS, OUT_OF_SCOPE, TAGS, HeldOutMessage
from bot.eval.metrics import BinaryScores, mean, recall_at_k, reciprocal_rank
from bot.kb.index import Entries, KnowledgeIndex
from bot.language import detect

Pair = tuple[HeldOutMessage, BotReply]
OUTCOMES = ("answer right", "answer wrong", "choice with right", "choice without right", "suggestion with right",
            "suggestion without right", "rephrase", "out-of-scope reply", "human", "other")  # fmt: skip
OFFERED_RIGHT = ("choice with right", "suggestion with right")
SHOWN_WRONG = ("answer wrong", "choice without right", "suggestion without right")


def outcome(message: HeldOutMessage, reply: BotReply) -> str:
    """The bot's reply to the message, judged against the label."""
    if reply.kind == "answer":
        return "answer right" if reply.articles[0] in message.expected else "answer wrong"
    if reply.kind in ("choose", "suggest"):
        found = "with right" if set(reply.articles) & set(message.expected) else "without right"
        return f"{'choice' if reply.kind == 'choose' else 'suggestion'} {found}"
    return {"rephrase": "rephrase", "out_of_scope": "out-of-scope reply", "human": "human"}.get(reply.kind, "other")


def retrieval(pairs: Sequence[Pair]) -> dict[str, object]:
    return ranking([([c["article_id"] for c in r.candidates], set(m.expected)) for m, r in pairs])


def ranking(ranked: Sequence[tuple[Sequence[str], set[str]]]) -> dict[str, object]:
    """Recall@1, Recall@3 and MRR@5 of (article ids best first, right ids) pairs."""
    return {
        "n": len(ranked),
        "recall@1": mean([recall_at_k(ids, rel, 1) for ids, rel in ranked]),
        "recall@3": mean([recall_at_k(ids, rel, 3) for ids, rel in ranked]),
        "mrr@5": mean([reciprocal_rank(ids[:5], rel) for ids, rel in ranked]),
    }


def cross_language(message: HeldOutMessage, languages_of: dict[str, list[str]]) -> bool:
    """The best expected article does not exist in the message's language."""
    return message.kind == "article" and message.language not in languages_of.get(message.expected[0], [])


def own_language_removed(
    pairs: Sequence[Pair], queries: np.ndarray, entries: Entries
) -> list[tuple[list[str], set[str]]]:
    """Every article question as a cross-language one: rankings from the index without the expected articles'
    versions in the message's language (the rest of the index as in production, centred on the detected language).

    `queries` are the messages' vectors, `entries` the index's (load_or_build_entries).
    """
    vectors, ids, languages, texts, passages = entries
    id_of, language_of, text_of, passage_of = (np.asarray(column) for column in (ids, languages, texts, passages))
    ranked = []
    for (message, reply), query in zip(pairs, queries, strict=True):
        keep = ~(np.isin(id_of, message.expected) & (language_of == message.language))
        index = KnowledgeIndex(
            vectors[keep], list(id_of[keep]), list(language_of[keep]), list(text_of[keep]), list(passage_of[keep])
        )
        ranked.append(([c.article_id for c in index.search(query, reply.language)], set(message.expected)))
    return ranked


def language_detection(pairs: Sequence[Pair]) -> dict[str, object]:
    """bot.language.detect on messages of three words or more (mixed and transliterated ones left out)."""
    eligible = [m for m, _ in pairs if not m.short and not {"mixed", "translit"} & set(m.tags)]
    wrong = [m for m in eligible if detect(m.text).language != m.language]
    return {
        "n": len(eligible),
        "accuracy": 1 - len(wrong) / len(eligible) if eligible else None,
        "wrong": [{"text": m.text, "expected": m.language, "detected": detect(m.text).language} for m in wrong],
    }


def summary(
    pairs: Sequence[Pair],
    languages_of: dict[str, list[str]],
    removed: Sequence[tuple[list[str], set[str]]] = (),
) -> dict[str, object]:
    """The figures of one group of messages; `removed`: its article questions' own_language_removed rankings."""
    articles = [(m, r) for m, r in pairs if m.kind == "article"]
    outcomes = [outcome(m, r) for m, r in articles]
    escalation = BinaryScores.of([m.kind == HUMAN for m, _ in pairs], [r.kind == "human" for _, r in pairs])
    oos = [(m, r) for m, r in pairs if m.kind == OUT_OF_SCOPE]
    return {
        "messages": len(pairs),
        "intent_accuracy": mean([float(r.intent == m.intent) for m, r in pairs]),
        "kb": retrieval(articles),
        "kb_same_language": retrieval([p for p in articles if not cross_language(p[0], languages_of)]),
        "kb_cross_language": retrieval([p for p in articles if cross_language(p[0], languages_of)]),
        "kb_own_language_removed": ranking(removed),
        "answered_right": mean([float(o == "answer right") for o in outcomes]),
        "answered_or_offered_right": mean([float(o == "answer right" or o in OFFERED_RIGHT) for o in outcomes]),
        "suggested": mean([float(o.startswith("suggestion")) for o in outcomes]),
        "answered_wrong": mean([float(o in SHOWN_WRONG) for o in outcomes]),
        "escalation": escalation.as_dict(),
        "out_of_scope": {
            "n": len(oos),
            "recognised": mean([float(r.kind == "out_of_scope") for _, r in oos]),
            "answered_with_article": mean([float(r.kind in ("answer", "choose", "suggest")) for _, r in oos]),
        },
        "language_detection": language_detection(pairs),
    }


def by_tag(pairs: Sequence[Pair]) -> dict[str, dict[str, object]]:
    """Knowledge-base retrieval on article questions per tag (and short messages)."""
    groups: dict[str, list[Pair]] = {tag: [] for tag in (*TAGS, "short")}
    for message, reply in pairs:
        if message.kind != "article":
            continue
        for tag in message.tags:
            groups[tag].append((message, reply))
        if message.short:
            groups["short"].append((message, reply))
    return {tag: retrieval(group) for tag, group in groups.items() if group}


def confusion(pairs: Sequence[Pair]) -> dict[str, dict[str, int]]:
    """expected kind -> the bot's reply outcome -> count."""
    table = {kind: dict.fromkeys(OUTCOMES, 0) for kind in ("article", HUMAN, OUT_OF_SCOPE)}
    for message, reply in pairs:
        table[message.kind][outcome(message, reply)] += 1
    return table


def answer_threshold_curve(pairs: Sequence[Pair], grid: np.ndarray) -> dict[str, list[float]]:
    """How the answer threshold trades questions answered against wrong answers and answered out-of-scope."""
    top = [(m, r.candidates[0] if r.candidates else None) for m, r in pairs]
    questions = [(c["score"], c["article_id"] in m.expected) for m, c in top if m.kind == "article" and c]
    oos = [c["score"] for m, c in top if m.kind == OUT_OF_SCOPE and c]
    curve: dict[str, list[float]] = {"threshold": [], "answered": [], "right_first": [], "oos_answered": []}
    for t in grid:
        answered = [right for score, right in questions if score >= t]
        curve["threshold"].append(float(t))
        curve["answered"].append(len(answered) / len(questions) if questions else 0.0)
        curve["right_first"].append(sum(answered) / len(questions) if questions else 0.0)
        curve["oos_answered"].append(sum(s >= t for s in oos) / len(oos) if oos else 0.0)
    return curve


def escalation_threshold_curve(pairs: Sequence[Pair], grid: np.ndarray) -> dict[str, list[float | None]]:
    """Escalation precision/recall/F1 if the intent confidence threshold (config.yml fallback) were `t`."""
    curve: dict[str, list[float | None]] = {"threshold": [], "precision": [], "recall": [], "f1": []}
    truth = [m.kind == HUMAN for m, _ in pairs]
    for t in grid:
        predicted = [r.classifier_intent in HUMAN_INTENTS and r.classifier_confidence >= t for _, r in pairs]
        scores = BinaryScores.of(truth, predicted)
        curve["threshold"].append(float(t))
        curve["precision"].append(scores.precision)
        curve["recall"].append(scores.recall)
        curve["f1"].append(scores.f1)
    return curve
