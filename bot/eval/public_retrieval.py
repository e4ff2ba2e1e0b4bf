"""Public retrieval sets scored with our encoder and our index's scoring (bot.kb.index.KnowledgeIndex).

- PolEval 2022 allegro-faq (Polish FAQ): each passage is one "article"; NDCG@10.
- XQuAD en/ro/ru: question in one language, the 240 paragraphs of another; Recall@1.
  All three languages' paragraphs are in one index so that every language has
  its mean for centring, and only the target language's paragraphs are ranked.

The FAQ answers and the paragraphs are embedded as passages (Encoder.encode_passages), the
questions as queries: e5 is trained that way for question-to-passage search. Questions are
embedded as the bot embeds a customer's message, Polish and Romanian ones with their missing
diacritics put back (bot/diacritics.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bot.diacritics import restore_diacritics
from bot.embeddings.encoder import Encoder
from bot.eval.metrics import mean, ndcg_at_k, recall_at_k, reciprocal_rank
from bot.kb.index import KnowledgeIndex

XQUAD_LANGUAGES = ("en", "ro", "ru")


def cached_vectors(
    encoder: Encoder, texts: list[str], cache_dir: Path, label: str, passages: bool = False
) -> np.ndarray:
    """Encode `texts` (as questions, or as answer passages) once per model; later runs read the vectors from disk."""
    kind = "passage" if passages else "query"
    digest = hashlib.sha256("\x00".join([kind, *texts]).encode()).hexdigest()[:16]
    path = cache_dir / "eval-embeddings" / f"{label}-{encoder.key}-{digest}.npy"
    if path.exists():
        return np.load(path)
    encode = encoder.encode_passages if passages else encoder.encode
    chunks = []
    for start in tqdm(range(0, len(texts), 64), desc=f"embedding {label}", unit="batch"):
        chunks.append(encode(texts[start : start + 64]))
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def allegro_faq(data_dir: Path, encoder: Encoder, cache_dir: Path, k: int = 10) -> dict[str, object]:
    folder = data_dir / "poleval2022_allegro_faq"
    passages = _jsonl(folder / "passages.jl")
    questions = _jsonl(folder / "questions-test.jl")
    gains: dict[str, dict[str, float]] = defaultdict(dict)
    for line in (folder / "pairs-test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        question_id, passage_id, score = line.split("\t")
        gains[question_id][passage_id] = float(score)
    passage_ids = [str(p["id"]) for p in passages]
    index = KnowledgeIndex(
        cached_vectors(encoder, [p["text"] for p in passages], cache_dir, "allegro-passages", passages=True),
        passage_ids,
        ["pl"] * len(passages),
        [p["text"] for p in passages],
    )
    asked = [q for q in questions if str(q["id"]) in gains]
    asked_texts = [restore_diacritics(q["text"], "pl") for q in asked]
    query_vectors = cached_vectors(encoder, asked_texts, cache_dir, "allegro-questions")
    ndcg, recall, rr = [], [], []
    for question, vector in zip(asked, query_vectors, strict=True):
        ranked = [index.ids[i] for i in np.argsort(-index.scores(vector, "pl"))[:k]]
        relevant = gains[str(question["id"])]
        ndcg.append(ndcg_at_k(ranked, relevant, k))
        recall.append(recall_at_k(ranked, relevant, 1))
        rr.append(reciprocal_rank(ranked, relevant))
    return {
        "questions": len(asked),
        "passages": len(passages),
        f"ndcg@{k}": mean(ndcg),
        "recall@1": mean(recall),
        f"mrr@{k}": mean(rr),
    }


def xquad(data_dir: Path, encoder: Encoder, cache_dir: Path) -> dict[str, object]:
    paragraphs: dict[str, list[str]] = {}
    questions: dict[str, list[tuple[str, int]]] = {}  # language -> (question, paragraph number)
    for language in XQUAD_LANGUAGES:
        data = json.loads((data_dir / "xquad" / f"xquad.{language}.json").read_text(encoding="utf-8"))
        paragraphs[language], questions[language] = [], []
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                number = len(paragraphs[language])
                paragraphs[language].append(paragraph["context"])
                questions[language].extend((qa["question"], number) for qa in paragraph["qas"])
    ids, languages, texts, vectors = [], [], [], []
    for language in XQUAD_LANGUAGES:
        ids.extend(f"{language}:{n}" for n in range(len(paragraphs[language])))
        languages.extend([language] * len(paragraphs[language]))
        texts.extend(paragraphs[language])
        label = f"xquad-{language}-paragraphs"
        vectors.append(cached_vectors(encoder, paragraphs[language], cache_dir, label, passages=True))
    index = KnowledgeIndex(np.concatenate(vectors), ids, languages, texts)
    positions = {language: np.array([i for i, aid in enumerate(index.ids) if aid.startswith(f"{language}:")])
                 for language in XQUAD_LANGUAGES}  # fmt: skip
    pairs: dict[str, float | None] = {}
    for source in XQUAD_LANGUAGES:
        asked = [restore_diacritics(q, source) for q, _ in questions[source]]
        query_vectors = cached_vectors(encoder, asked, cache_dir, f"xquad-{source}-questions")
        for target in XQUAD_LANGUAGES:
            hits = []
            for (_, number), vector in zip(questions[source], query_vectors, strict=True):
                scores = index.scores(vector, source)[positions[target]]
                best = index.ids[positions[target][int(np.argmax(scores))]]
                hits.append(float(best == f"{target}:{number}"))
            pairs[f"{source}->{target}"] = mean(hits)
    cross = [v for key, v in pairs.items() if key[:2] != key[-2:] and v is not None]
    return {
        "questions_per_language": len(questions["en"]),
        "paragraphs_per_language": len(paragraphs["en"]),
        "recall@1": pairs,
        "cross_language_mean_recall@1": mean(cross),
    }
