"""`bot/assistant eval [--quick] [--only SETS]`: measure understanding, retrieval and escalation.

Sets: heldout (our held-out set through the trained Rasa model and the production
decision code), devset (our development set, the same way: messages that may be read
to choose a change, bot/eval/devset.yml), clinc150, banking77, hint3 (the config.yml pipeline trained on
each public intent set, bot/eval/public_intents.py), allegro and xquad (the
public retrieval sets). All of them by default; --quick: devset only (the quick look while
choosing a change; the held-out set once it is chosen);
--only a,b: just those, keeping the other sets' figures from the previous
results.json (each set records when and at which commit it was measured).
Writes docs/eval/report.md, results.json and PNG plots.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bot.embeddings.encoder import get_encoder, model_location
from bot.eval import heldout_eval, plots
from bot.eval.bot_reply import TrainedBot
from bot.eval.heldout import DEVSET_FILE, HELDOUT_FILE, load_heldout
from bot.eval.report import write_report
from bot.eval.run_info import fallback_threshold, run_info
from bot.kb.articles import ArticleLibrary, load_articles
from bot.kb.decision import Thresholds
from bot.kb.index import as_embedded, load_or_build_entries
from bot.settings import LANGUAGES, Settings


def evaluate_messages(
    settings: Settings, model_path: Path, messages_file: Path, plots_dir: Path | None
) -> dict[str, object]:
    """A labelled set of customer messages (held-out or development) through the trained model;
    the escalation and threshold plots are drawn into `plots_dir` (the held-out set's only)."""
    library = ArticleLibrary(load_articles(settings.articles_dir))
    languages_of = {article_id: library.languages(article_id) for article_id in library.ids}
    messages = load_heldout(messages_file, set(library.ids))
    thresholds = Thresholds.load(settings.thresholds_file)
    bot = TrainedBot(model_path, settings.project_dir / "nlu_data" / "rules.yml", thresholds)
    try:
        started = time.perf_counter()
        replies = [
            bot.reply(bot.parse(m.text, m.language)) for m in tqdm(messages, desc=messages_file.name, unit="msg")
        ]
        seconds = time.perf_counter() - started
    finally:
        bot.close()
    pairs = list(zip(messages, replies, strict=True))
    encoder = get_encoder(settings)
    entries = load_or_build_entries(settings.articles_dir, encoder, settings.cache_dir)
    articles = [p for p in pairs if p[0].kind == "article"]
    asked, languages_seen = [m.text for m, _ in articles], [reply.language for _, reply in articles]
    asked_vectors = encoder.encode(as_embedded(asked, languages_seen, [False] * len(asked)))  # as the bot embeds them
    removed = heldout_eval.own_language_removed(articles, asked_vectors, entries)
    removed_of = {id(m): ranked for (m, _), ranked in zip(articles, removed, strict=True)}

    def summary(group: list[heldout_eval.Pair]) -> dict[str, object]:
        return heldout_eval.summary(group, languages_of, [removed_of[id(m)] for m, _ in group if id(m) in removed_of])

    per_language = {lang: summary([p for p in pairs if p[0].language == lang]) for lang in LANGUAGES}
    overall = summary(pairs)
    table = heldout_eval.confusion(pairs)
    answer_curve = heldout_eval.answer_threshold_curve(pairs, np.round(np.arange(0.0, 0.61, 0.01), 2))
    escalation_curve = heldout_eval.escalation_threshold_curve(pairs, np.round(np.arange(0.0, 1.0, 0.02), 2))
    if plots_dir is not None:
        plots.escalation_confusion(table, overall["escalation"], plots_dir / "escalation_confusion.png")
        plots.threshold_curves(
            answer_curve,
            thresholds.answer,
            escalation_curve,
            fallback_threshold(settings.project_dir / "config.yml"),
            plots_dir / "threshold_tradeoffs.png",
        )
    return {
        "file_sha256": hashlib.sha256(messages_file.read_bytes()).hexdigest()[:16],
        "per_language": per_language,
        "all": overall,
        "by_tag": heldout_eval.by_tag(pairs),
        "confusion": table,
        "curves": {"answer_threshold": answer_curve, "intent_threshold_escalation": escalation_curve},
        "seconds_per_message": seconds / len(messages),
        "messages": [
            {
                "text": m.text,
                "language": m.language,
                "expected": list(m.expected),
                "intent": m.intent,
                "outcome": heldout_eval.outcome(m, r),
                **r.as_dict(),
            }
            for m, r in pairs
        ],
    }


SETS = ("heldout", "devset", "clinc150", "banking77", "hint3", "allegro", "xquad")
RESULT_KEYS = {"allegro": "allegro_faq"}  # set name -> key in results.json
PUBLIC_DATA = {"clinc150": "clinc150", "banking77": "banking77", "hint3": "hint3",
               "allegro": "poleval2022_allegro_faq", "xquad": "xquad"}  # fmt: skip


def selected_sets(only: str | None, quick: bool) -> list[str]:
    """The sets to run, in SETS order; an unknown name is an error."""
    if only is None:
        return ["devset"] if quick else list(SETS)
    names = [name.strip().lower().replace("-", "_") for name in only.split(",") if name.strip()]
    names = ["allegro" if name == "allegro_faq" else name for name in names]
    unknown = sorted(set(names) - set(SETS))
    if unknown or not names:
        raise ValueError(f"unknown set(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(SETS)}")
    return [name for name in SETS if name in names]


def previous_results(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _measured(run: dict[str, object], seconds: float) -> dict[str, object]:
    return {key: run[key] for key in ("date", "commit", "uncommitted_changes")} | {"wall_seconds": round(seconds, 1)}


def _run_set(name: str, settings: Settings, model_path: Path, data: Path, out: Path) -> dict[str, object]:
    config_file = settings.project_dir / "config.yml"
    if name == "heldout":
        return evaluate_messages(settings, model_path, HELDOUT_FILE, out)
    if name == "devset":
        return evaluate_messages(settings, model_path, DEVSET_FILE, None)
    if name in ("clinc150", "banking77", "hint3"):
        from bot.eval import public_intents

        if name == "clinc150":
            return public_intents.clinc150(data, settings, out, config_file)
        if name == "banking77":
            return public_intents.banking77(data, settings, config_file)
        return public_intents.hint3(data, settings, out, config_file)
    from bot.eval import public_retrieval

    encoder = get_encoder(settings)
    if name == "allegro":
        return public_retrieval.allegro_faq(data, encoder, settings.cache_dir)
    return public_retrieval.xquad(data, encoder, settings.cache_dir)


def quiet_rasa_logs() -> None:
    """Warnings and errors only. Unconfigured, Rasa's structured log prints every parse at debug
    level (a line per message, with its text) to stdout, through the progress bars."""
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)


def main(settings: Settings, model_path: Path, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bot/assistant eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="only our development set (held-out: --only heldout)")
    parser.add_argument("--only", metavar="SETS", help=f"comma-separated, from: {', '.join(SETS)}")
    parser.add_argument("--data", type=Path, default=settings.project_dir.parent / "shared" / "data",
                        help="folder of the public sets (default: ../shared/data)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=settings.project_dir / "docs" / "eval", help="report folder")
    args = parser.parse_args(argv)
    try:
        sets = selected_sets(args.only, args.quick)
    except ValueError as error:
        parser.error(str(error))
    missing = [PUBLIC_DATA[n] for n in sets if n in PUBLIC_DATA and not (args.data / PUBLIC_DATA[n]).is_dir()]
    if missing:
        parser.error(f"{args.data} has no {', '.join(missing)}; give the public sets' folder with --data")
    quiet_rasa_logs()
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    location = model_location(settings)
    run = run_info(settings, model_path, location, HELDOUT_FILE)
    results: dict[str, object] = {**previous_results(results_file), "run": run}
    for name in sets:
        started = time.perf_counter()
        figures = _run_set(name, settings, model_path, args.data, args.out)
        results[RESULT_KEYS.get(name, name)] = {**figures, "measured": _measured(run, time.perf_counter() - started)}
        # after every set, so that an interrupted run keeps what it measured
        results_file.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    write_report(results, args.out / "report.md")
    print(f"==> wrote {args.out / 'report.md'}, results.json and plots ({', '.join(sets)})")
    return 0
