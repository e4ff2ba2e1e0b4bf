"""Embedding benchmark of every backend: `bot/assistant bench embedding`.

Each backend (SUPPORTBOT_EMBEDDING_BACKEND: onnx-int8, onnx, torch) runs in a fresh
process of its own per thread count, started with the serving processes' thread
settings (bot.stack.serving_env), so that load time and memory are that backend's
alone. It measures:
- load time: bot.embeddings.encoder.get_encoder in the fresh process (imports included;
  the ONNX exports are built before, as setup does);
- memory: the process's RSS after loading and after the run, and whether torch got loaded;
- latency of one customer message, embedded alone as the featurizer does: p50/p95 over
  --messages held-out messages (bot/eval/heldout.yml, cycled), after --warm-up messages,
  with 1 and with 2 threads;
- KB Recall@1 per language on the held-out set's article questions, through the
  production retrieval (language choice, the cached index, KnowledgeIndex.search),
  scored by the evaluation's own bot.eval.heldout_eval.ranking.
The machine may be shared: the load average and the CPU other processes used during
each run are reported with the figures. Writes docs/bench/embedding.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.bench.common import load_average, percentiles, python_loop_ms, utc_now
from bot.bench.load import CLK_TCK, machine_ticks, rss_kb
from bot.eval.run_info import commit, machine, uncommitted_changes
from bot.settings import EMBEDDING_BACKENDS, LANGUAGES, PROJECT_DIR, Settings

TARGET_P50_MS = 15.0
# A backend may lose at most one point of Recall@1 on the whole held-out set against torch
# (issue #3's rule). Per language it is reported, not required: with 62-69 questions a
# language, one question is 1.4-1.6 points.
RECALL_TOLERANCE = 0.01
REFERENCE = "torch"
THREADS = (1, 2)


# --- one backend, in its own process -------------------------------------------------


def held_out_texts(count: int) -> list[str]:
    from bot.eval.heldout import load_heldout

    texts = [m.text for m in load_heldout()]
    return [texts[i % len(texts)] for i in range(count)]


def recall_per_language(settings: Settings, encoder: Any) -> dict[str, dict[str, object]]:
    """Recall@1/3, MRR@5 of the held-out article questions, per language and in all."""
    from bot.eval.heldout import HELDOUT_FILE, load_heldout
    from bot.eval.heldout_eval import ranking
    from bot.kb.articles import load_articles
    from bot.kb.index import load_or_build_index
    from bot.language import choose_language

    ids = {a.id for a in load_articles(settings.articles_dir)}
    questions = [m for m in load_heldout(HELDOUT_FILE, ids) if m.kind == "article"]
    index = load_or_build_index(settings.articles_dir, encoder, settings.cache_dir)
    ranked = {}
    for m in questions:
        # As the pipeline does: the language detector (browser hint for short messages), then the retriever.
        language = choose_language(m.text, None, m.language).language
        found = index.search(encoder.encode([m.text])[0], language, k=5)
        ranked[m] = ([c.article_id for c in found], set(m.expected))
    by_language = {lang: ranking([r for m, r in ranked.items() if m.language == lang]) for lang in LANGUAGES}
    return {**by_language, "all": ranking(list(ranked.values()))}


def worker(messages: int, warm_up: int, with_recall: bool) -> dict[str, Any]:
    from bot.embeddings.encoder import get_encoder

    settings = Settings.from_env()
    texts = held_out_texts(messages)
    baseline_kb = rss_kb(os.getpid())
    started = time.perf_counter()
    encoder = get_encoder(settings)
    load_s = time.perf_counter() - started
    loaded_kb = rss_kb(os.getpid())
    for text in texts[:warm_up]:
        encoder.encode([text])
    latencies = []
    for text in texts:
        started = time.perf_counter()
        encoder.encode([text])
        latencies.append((time.perf_counter() - started) * 1000)
    result: dict[str, Any] = {
        "backend": settings.embedding_backend,
        "threads": settings.threads_per_message,
        "key": encoder.key,
        "load_s": round(load_s, 2),
        "rss_mb_before_load": round(baseline_kb / 1024, 1),
        "rss_mb_loaded": round(loaded_kb / 1024, 1),
        "rss_mb_after_run": round(rss_kb(os.getpid()) / 1024, 1),
        "torch_loaded": "torch" in sys.modules,
        "latency_ms": percentiles(latencies),
    }
    if with_recall:
        result["recall"] = recall_per_language(settings, encoder)
    return result


# --- the runs ------------------------------------------------------------------------


def run_worker(settings: Settings, backend: str, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    from bot.stack import process_env, serving_env

    run_settings = replace(settings, embedding_backend=backend, threads_per_message=threads)
    env = {**process_env(run_settings), **serving_env(run_settings)}
    command = [sys.executable, "-m", "bot.bench.embedding", "--worker", "--messages", str(args.messages)]
    command += ["--warm-up", str(args.warm_up)] + (["--recall"] if threads == THREADS[0] else [])
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before, _ = machine_ticks()
    started = time.monotonic()
    out = subprocess.run(command, env=env, cwd=settings.project_dir, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"error: the {backend} run with {threads} thread(s) failed:\n{out.stderr[-3000:]}")
    wall = time.monotonic() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    machine_cpu = (machine_ticks()[0] - busy_before) / CLK_TCK
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 1)
    result["load_average_after"] = load_average()
    # What the rest of the machine used meanwhile, in cores: near 0 on a quiet machine.
    result["other_cpu_cores"] = round(max(0.0, machine_cpu - own_cpu) / wall, 2)
    return result


def choose_default(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest backend (1-thread p50, as served) whose Recall@1 on the whole set is within a point of torch's."""
    recall = {r["backend"]: r["recall"] for r in results if "recall" in r}
    reference = recall.get(REFERENCE)
    eligible = {}
    for backend, figures in recall.items():
        losses = {lang: reference[lang]["recall@1"] - figures[lang]["recall@1"] for lang in LANGUAGES if reference}
        worst = max(losses, key=losses.__getitem__) if losses else None
        loss_all = reference["all"]["recall@1"] - figures["all"]["recall@1"] if reference else None
        eligible[backend] = {
            "loss_all": round(loss_all, 4) if loss_all is not None else None,
            "max_loss": round(losses[worst], 4) if worst else None,
            "max_loss_language": worst,
            "eligible": loss_all is not None and loss_all <= RECALL_TOLERANCE + 1e-9,
        }
    p50 = {r["backend"]: r["latency_ms"]["p50"] for r in results if r["threads"] == THREADS[0]}
    candidates = [b for b in p50 if eligible.get(b, {}).get("eligible")]
    return {"choice": min(candidates, key=p50.__getitem__) if candidates else None, "by_backend": eligible}


def run(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from bot.embeddings.encoder import ensure_backend

    for backend in args.backends:  # the exports, as setup builds them, before anything is timed
        ensure_backend(replace(settings, embedding_backend=backend))
    load_before, loop_ms = load_average(), python_loop_ms()
    results = []
    for backend in args.backends:
        for threads in THREADS:
            print(f"==> {backend}, {threads} thread(s)", flush=True)
            results.append(run_worker(settings, backend, threads, args))
            print(
                f"    p50 {results[-1]['latency_ms']['p50']} ms, load {results[-1]['load_average_after']}", flush=True
            )
    return {
        "commit": commit(PROJECT_DIR),
        "uncommitted_changes": uncommitted_changes(PROJECT_DIR),
        "date": utc_now(),
        "machine": machine(),
        "python_loop_ms": loop_ms,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "settings": {
            "embedding_model": settings.embedding_model,
            "configured_backend": settings.embedding_backend,
            "messages": args.messages,
            "warm_up": args.warm_up,
            "threads": list(THREADS),
        },
        "target_p50_ms": TARGET_P50_MS,
        "results": results,
        "default": choose_default(results),
    }


# --- the report ----------------------------------------------------------------------


def _percent(value: object) -> str:
    return f"{float(value) * 100:.1f}%" if isinstance(value, (int, float)) else "—"


def _signed_points(loss: float | None) -> str:
    """A Recall@1 loss against the reference as a signed change in points."""
    if loss is None:
        return "—"
    return "no change" if abs(loss) < 5e-4 else f"{-loss * 100:+.1f} points"


def question_counts(data: dict[str, Any]) -> dict[str, object]:
    recall = next((r["recall"] for r in data["results"] if "recall" in r), {})
    return {lang: recall[lang]["n"] for lang in LANGUAGES if lang in recall}


def report(data: dict[str, Any], out_dir: Path) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "embedding.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    s = data["settings"]
    lines = [
        "# Embedding latency, memory and retrieval per backend",
        "",
        f"`bot/assistant bench embedding` at commit {data['commit']}"
        f"{' (with uncommitted changes)' if data['uncommitted_changes'] else ''}, {data['date']}, on "
        f"{data['machine']}; model {s['embedding_model']}; {s['messages']} held-out messages one at a time "
        f"after {s['warm_up']} for warm-up. Load average (1, 5, 15 min) before: {data['load_average_before']}, "
        f"after: {data['load_average_after']} (our own runs add about one per thread). Machine speed: "
        f"`sum(range(10**6))` takes {data.get('python_loop_ms', '?')} ms (best of 5, before the run).",
        "",
        "| backend | threads | p50 ms | p95 ms | p99 ms | load s | RSS MB loaded | RSS MB after | torch loaded "
        "| other processes' CPU (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        lat = r["latency_ms"]
        lines.append(
            f"| {r['backend']} | {r['threads']} | {lat['p50']} | {lat['p95']} | {lat['p99']} | {r['load_s']} | "
            f"{r['rss_mb_loaded']} | {r['rss_mb_after_run']} | {'yes' if r['torch_loaded'] else 'no'} | "
            f"{r['other_cpu_cores']} |"
        )
    default = data["default"]
    lines += [
        "",
        "KB Recall@1 on the held-out set's article questions (production retrieval), per language "
        f"({', '.join(f'{lang}: {n}' for lang, n in question_counts(data).items())} questions):",
        "",
        f"| backend | {' | '.join(LANGUAGES)} | all | Recall@3 all | MRR@5 all | all vs {REFERENCE} "
        f"| worst language vs {REFERENCE} |",
        f"|---|{'---|' * len(LANGUAGES)}---|---|---|---|---|",
    ]
    for r in data["results"]:
        if "recall" not in r:
            continue
        rec = r["recall"]
        judged = default["by_backend"][r["backend"]]
        loss = judged["max_loss"]
        worst = "—" if loss is None else f"−{loss * 100:.1f} points ({judged['max_loss_language']})"
        worst = "no loss" if loss is not None and loss <= 0 else worst
        lines.append(
            f"| {r['backend']} | {' | '.join(_percent(rec[lang]['recall@1']) for lang in LANGUAGES)} | "
            f"{_percent(rec['all']['recall@1'])} | {_percent(rec['all']['recall@3'])} | "
            f"{rec['all']['mrr@5']:.3f} | {_signed_points(judged.get('loss_all'))} | {worst} |"
        )
    served = [r for r in data["results"] if r["backend"] == default["choice"] and r["threads"] == THREADS[0]]
    verdict = (
        f"p50 {served[0]['latency_ms']['p50']} ms with 1 thread: "
        f"{'met' if served[0]['latency_ms']['p50'] <= data['target_p50_ms'] else 'MISSED'}"
        if served
        else "no backend qualifies"
    )
    lines += [
        "",
        f"Fastest backend within {RECALL_TOLERANCE * 100:.0f} point of {REFERENCE}'s Recall@1 on the whole set: "
        f"**{default['choice']}** (target: p50 ≤ {data['target_p50_ms']:.0f} ms; {verdict}).",
    ]
    text = "\n".join(lines) + "\n"
    (out_dir / "embedding.md").write_text(text, encoding="utf-8")
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bot/assistant bench embedding", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default=",".join(EMBEDDING_BACKENDS), help="comma-separated (default: all)")
    parser.add_argument("--messages", type=int, default=500, help="timed messages per run (default 500)")
    parser.add_argument("--warm-up", type=int, default=30, help="untimed messages first (default 30)")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one run, JSON on stdout
    parser.add_argument("--recall", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.messages, args.warm_up, args.recall)))
        return 0
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(args.backends) - set(EMBEDDING_BACKENDS))
    if unknown or not args.backends or args.messages < 1:
        parser.error(f"--backends from {', '.join(EMBEDDING_BACKENDS)} (unknown: {unknown}); --messages ≥ 1")
    print(report(run(Settings.from_env(), args), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
