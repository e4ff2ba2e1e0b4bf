"""The content editors' command line: `bot/assistant kb validate|index|stale|try|gaps`.

None of these starts Redis or trains Rasa; `gaps` reads the records from Redis at REDIS_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.kb.articles import (
    ARTICLE_ID,
    REQUIRED_FIELDS,
    Article,
    ArticleError,
    article_files,
    read_article,
    split_front_matter,
)
from bot.kb.decision import Thresholds, decide
from bot.kb.index import KnowledgeIndex
from bot.settings import LANGUAGES, Settings

REQUIRED_LANGUAGES = ("en", "pl")
QUESTIONS_PER_LANGUAGE = (4, 8)  # kb_articles/README.md
ANY_KB_LINK = re.compile(r"\]\(kb:([^)]*)\)")

Level = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Issue:
    level: Level
    path: Path | None
    message: str

    def format(self, root: Path) -> str:
        where = f"{_shown(self.path, root)}: " if self.path else ""
        return f"{self.level.upper():7} {where}{self.message}"


def _shown(path: Path, root: Path) -> str:
    """A path as the editor types it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --- validate -------------------------------------------------------------------


def check_files(articles_dir: Path) -> tuple[list[Article], list[Issue]]:
    """Parse every article file: the valid articles, and the problems of the rest (all of them per file)."""
    issues: list[Issue] = []
    articles: list[Article] = []
    if not articles_dir.is_dir():
        return [], [Issue("error", articles_dir, "the articles folder does not exist")]
    for folder in sorted(p for p in articles_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.name.endswith("~"):
                continue
            if path.suffix != ".md":
                issues.append(Issue("warning", path, "not an article (only <lang>.md files are read); ignored"))
            elif path.stem not in LANGUAGES:
                issues.append(Issue("error", path, f"the file name must be a language code: {', '.join(LANGUAGES)}"))
    ids_by_folder: dict[str, list[Path]] = defaultdict(list)
    for path in article_files(articles_dir):
        if path.stem not in LANGUAGES:
            continue
        try:
            meta, _ = split_front_matter(path.read_text(encoding="utf-8"), path)
        except (ArticleError, UnicodeDecodeError):
            meta = None
        if isinstance(meta, dict):
            unknown = sorted(set(meta) - set(REQUIRED_FIELDS))
            if unknown:
                issues.append(
                    Issue("warning", path, f"unknown front matter field(s) {', '.join(unknown)} (a typo?); ignored")
                )
            if isinstance(meta.get("id"), str):
                ids_by_folder[meta["id"]].append(path)
        try:
            articles.append(read_article(path))
        except ArticleError as exc:
            issues.extend(Issue("error", path, problem) for problem in exc.problems)
    for article_id, paths in sorted(ids_by_folder.items()):
        folders = sorted({p.parent for p in paths})
        if len(folders) > 1:
            where = ", ".join(_shown(p, articles_dir) for p in paths)
            issues.append(Issue("error", None, f"duplicate id {article_id!r}: declared by {where}"))
    if not articles and not issues:
        issues.append(Issue("error", articles_dir, "no articles (expected <id>/<lang>.md files)"))
    return articles, issues


def check_articles(articles: list[Article], folders: set[str]) -> list[Issue]:
    """Links, translations, sample questions: everything that needs the articles side by side."""
    issues: list[Issue] = []
    ids = {a.id for a in articles}
    for article in articles:
        for target in ANY_KB_LINK.findall(article.body):
            if not ARTICLE_ID.fullmatch(target):
                issues.append(
                    Issue("error", article.path, f"malformed link (kb:{target}): write [title](kb:article-id)")
                )
            elif target not in ids:
                known = "its files do not load" if target in folders else "no such article"
                issues.append(Issue("error", article.path, f"broken link kb:{target} ({known})"))
            elif target == article.id:
                issues.append(Issue("warning", article.path, "links to itself"))
        low, high = QUESTIONS_PER_LANGUAGE
        if not low <= len(article.questions) <= high:
            issues.append(
                Issue("warning", article.path, f"{len(article.questions)} sample questions; {low}-{high} work best")
            )
        if article.review_by < article.updated:
            issues.append(Issue("warning", article.path, f"review_by {article.review_by} is before updated"))
    by_id: dict[str, set[str]] = defaultdict(set)
    paths: dict[str, Path] = {}
    for article in articles:
        by_id[article.id].add(article.language)
        paths.setdefault(article.id, article.path.parent)
    for article_id, languages in sorted(by_id.items()):
        missing = [lang for lang in REQUIRED_LANGUAGES if lang not in languages]
        if missing:
            issues.append(Issue("error", paths[article_id], f"missing translation: {', '.join(missing)} (required)"))
        optional = [lang for lang in LANGUAGES if lang not in languages and lang not in REQUIRED_LANGUAGES]
        if optional:
            issues.append(
                Issue("info", paths[article_id], f"no {', '.join(optional)} translation (customers get en with a note)")
            )
    owners: dict[tuple[str, str], list[tuple[Article, str]]] = defaultdict(list)
    for article in articles:
        for question in article.questions:
            owners[(article.language, question.casefold())].append((article, question))
    for same in owners.values():
        if len({a.id for a, _ in same}) > 1:
            where = ", ".join(sorted({a.id for a, _ in same}))
            issues.append(
                Issue(
                    "warning", same[0][0].path, f"sample question {same[0][1]!r} belongs to several articles: {where}"
                )
            )
    return issues


def check_conflicts(
    index: KnowledgeIndex, articles: list[Article], embed: Callable[[list[str], list[str]], object]
) -> list[Issue]:
    """Sample questions whose best search result is another article (the bot would answer them with it)."""
    issues = []
    questions = [(article, q) for article in articles for q in article.questions]
    vectors = embed([q for _, q in questions], [article.language for article, _ in questions])
    for (article, question), vector in zip(questions, vectors, strict=True):
        found = index.search(vector, article.language, k=len(index.ids))
        if found[0].article_id == article.id:
            continue
        own = next(c for c in found if c.article_id == article.id)
        issues.append(
            Issue(
                "warning",
                article.path,
                f"conflict: {question!r} finds {found[0].article_id} first ({found[0].score:.3f}; "
                f"this article {own.score:.3f}, rank {found.index(own) + 1})",
            )
        )
    return issues


def validate(settings: Settings, conflicts: bool = True) -> list[Issue]:
    articles, issues = check_files(settings.articles_dir)
    folders = (
        {p.name for p in settings.articles_dir.iterdir() if p.is_dir()} if settings.articles_dir.is_dir() else set()
    )
    issues += check_articles(articles, folders)
    if conflicts and articles:
        from bot.embeddings.encoder import get_encoder
        from bot.kb.live import LiveKnowledgeBase

        knowledge = LiveKnowledgeBase(settings.articles_dir, get_encoder(settings), settings.cache_dir)
        issues += check_conflicts(knowledge.index, articles, knowledge.embed)
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(issues, key=lambda i: (order[i.level], str(i.path or ""), i.message))


def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    started = time.monotonic()
    issues = validate(settings, conflicts=not args.no_conflicts)
    for issue in issues:
        if issue.level != "info" or args.verbose:
            print(issue.format(settings.articles_dir))
    counts = {level: sum(i.level == level for i in issues) for level in ("error", "warning", "info")}
    files = len(article_files(settings.articles_dir)) if settings.articles_dir.is_dir() else 0
    hidden = "" if args.verbose or not counts["info"] else " (-v shows them)"
    print(
        f"\n{files} article files in {_shown(settings.articles_dir, settings.articles_dir)}: "
        f"{counts['error']} errors, {counts['warning']} warnings, {counts['info']} notes{hidden} "
        f"({time.monotonic() - started:.1f} s)"
    )
    if counts["error"]:
        print("Errors stop an article from being served: the running assistant keeps its last good version.")
        return 1
    return 1 if args.strict and counts["warning"] else 0


# --- index ----------------------------------------------------------------------


def cmd_index(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bot.embeddings.encoder import get_encoder
    from bot.kb.articles import load_articles
    from bot.kb.index import IndexEntries, index_cache_path, known_vectors

    try:
        articles = load_articles(settings.articles_dir)
    except ArticleError as exc:
        print(f"error: {exc}\n(bot/assistant kb validate lists every problem)", file=sys.stderr)
        return 1
    started = time.monotonic()
    encoder = get_encoder(settings)
    entries = IndexEntries.of(articles)
    known = {} if args.full else known_vectors(settings.cache_dir, encoder)
    todo = entries.missing(known)
    with tqdm(total=todo, unit="text", desc="embedding", disable=None) as bar:
        vectors = entries.vectors(encoder, known, bar.update)
    path = index_cache_path(settings.cache_dir, settings.articles_dir, encoder)
    entries.save(path, vectors)
    entries.index(vectors)  # the same checks the assistant makes when loading it
    print(
        f"index: {len(entries.ids)} entries from {len(articles)} article files "
        f"({todo} embedded, {len(entries.ids) - todo} reused) "
        f"in {time.monotonic() - started:.1f} s -> {path}"
    )
    return 0


# --- stale ----------------------------------------------------------------------


@dataclass(frozen=True)
class StaleArticle:
    article: Article
    review_overdue_days: int | None  # days since review_by, if it has passed
    age_days: int | None  # days since updated, if older than the limit


def parse_age(text: str) -> dt.timedelta:
    """'180d', '26w', '6m' (30-day months), '1y' (365 days)."""
    match = re.fullmatch(r"\s*(\d+)\s*([dwmy])\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a number and d/w/m/y, like 180d or 6m, got {text!r}")
    return dt.timedelta(days=int(match.group(1)) * {"d": 1, "w": 7, "m": 30, "y": 365}[match.group(2)])


def stale_articles(articles: list[Article], today: dt.date, older_than: dt.timedelta) -> list[StaleArticle]:
    """Articles past review_by or not updated for `older_than`, most overdue first."""
    found = []
    for article in articles:
        overdue = (today - article.review_by).days if article.review_by < today else None
        age = (today - article.updated).days if today - article.updated > older_than else None
        if overdue is not None or age is not None:
            found.append(StaleArticle(article, overdue, age))
    return sorted(found, key=lambda s: (-(s.review_overdue_days or 0), -(s.age_days or 0), str(s.article.path)))


def cmd_stale(settings: Settings, args: argparse.Namespace) -> int:
    articles, issues = check_files(settings.articles_dir)
    found = stale_articles(articles, args.today, args.older_than)
    if args.owner:
        found = [s for s in found if s.article.owner == args.owner]
    by_owner: dict[str, list[StaleArticle]] = defaultdict(list)
    for item in found:
        by_owner[item.article.owner].append(item)
    for owner in sorted(by_owner, key=lambda o: (-len(by_owner[o]), o)):
        print(f"{owner} ({len(by_owner[owner])})")
        for item in by_owner[owner]:
            a = item.article
            reasons = []
            if item.review_overdue_days is not None:
                reasons.append(f"review was due {a.review_by} ({item.review_overdue_days} days ago)")
            if item.age_days is not None:
                reasons.append(f"not updated since {a.updated} ({item.age_days} days)")
            print(f"  {_shown(a.path, settings.articles_dir)}  {a.title}: {'; '.join(reasons)}")
    unreadable = {i.path for i in issues if i.level == "error" and i.path}
    limit = f"{args.older_than.days} days"
    print(
        f"\n{len(found)} of {len(articles)} article files are stale on {args.today} "
        f"(past review_by, or not updated for {limit})."
    )
    if unreadable:
        print(f"{len(unreadable)} files could not be read; bot/assistant kb validate lists them.")
    return 0


# --- try ------------------------------------------------------------------------


def cmd_try(settings: Settings, args: argparse.Namespace) -> int:
    from bot.diacritics import restore_diacritics
    from bot.embeddings.encoder import get_encoder
    from bot.kb.live import LiveKnowledgeBase
    from bot.kb.render import LANGUAGE_NAMES
    from bot.language import choose_language

    encoder = get_encoder(settings)
    knowledge = LiveKnowledgeBase(settings.articles_dir, encoder, settings.cache_dir)
    for error in knowledge.errors().values():
        print(f"note: {error} (not served)")
    detection = choose_language(args.question, args.language, None)
    language = detection.language
    how = "detected" if detection.reliable else ("the conversation's" if args.language else "best guess, too short")
    query = encoder.encode([restore_diacritics(args.question, language)])[0]  # as the Rasa pipeline embeds it
    candidates = knowledge.index.search(query, language, args.k)
    thresholds = Thresholds.load(settings.thresholds_file)
    library = knowledge.library
    print(f"language: {language} ({how})\n")
    print(f"  {'score':>6}  {'article':<28} closest title or sample question")
    for rank, candidate in enumerate(candidates, 1):
        mark = "" if candidate.score >= thresholds.answer else "  (below the answer threshold)"
        mark = "  (below the answer and suggestion thresholds)" if candidate.score < thresholds.offer else mark
        print(f"{rank}. {candidate.score:6.3f}  {candidate.article_id:<28} {candidate.matched}{mark}")
    print(
        f"\nthresholds ({_shown(settings.thresholds_file, settings.project_dir)}): answer {thresholds.answer}, "
        f"choose_margin {thresholds.choose_margin}, offer {thresholds.offer}"
    )
    decision = decide([c.as_dict() for c in candidates], thresholds)

    def shown(article_id: str) -> str:
        article = library.get(article_id, language)
        if article is None:
            return article_id
        note = "" if article.language == language else f", in {LANGUAGE_NAMES[article.language]} with a note"
        return f'{article_id} "{article.title}"{note}'

    if decision.kind == "answer":
        print(f"the bot answers with {shown(decision.articles[0]['article_id'])}")
    elif decision.kind == "choose":
        print("the bot offers a choice: " + " / ".join(shown(a["article_id"]) for a in decision.articles))
    elif decision.kind == "suggest":
        print("not sure: the bot suggests " + " / ".join(shown(a["article_id"]) for a in decision.articles))
    else:
        print("no match: the bot asks to rephrase (the second time in a row, it hands over to a person)")
    print(
        "(this is the knowledge-base step; before it, the intent classifier handles greetings, "
        "requests for a person and out-of-scope messages)"
    )
    return 0


# --- gaps -----------------------------------------------------------------------


def cmd_gaps(settings: Settings, args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    from bot.escalations import connect
    from bot.kb.gap_report import build_report, format_report, write_csv
    from bot.kb.gaps import GapStore

    async def load() -> list:
        redis = connect(settings.redis_url)
        try:
            return await GapStore(redis, settings.redis_prefix).records(time.time() - args.days * 86400, args.limit)
        finally:
            await redis.close()

    try:
        records = asyncio.run(load())
    except (RedisError, OSError) as exc:
        print(
            f"error: Redis at {settings.redis_url} does not answer ({exc}); the questions are kept there",
            file=sys.stderr,
        )
        return 1
    if records:
        from bot.embeddings.encoder import get_encoder
        from bot.kb.live import LiveKnowledgeBase

        knowledge = LiveKnowledgeBase(settings.articles_dir, get_encoder(settings), settings.cache_dir)
    report = build_report(records, lambda texts, languages: knowledge.centred(texts, languages), args.distance)
    print(f"last {args.days} days (Redis prefix {settings.redis_prefix}):")
    print(format_report(report, args.min_size))
    if args.csv:
        write_csv(report, args.csv)
        print(f"\nwritten to {args.csv}")
    return 0


# --- command line ---------------------------------------------------------------


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-23, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    from bot.kb.gap_report import GROUP_DISTANCE

    root = argparse.ArgumentParser(
        prog="bot/assistant kb",
        description="Tools for the knowledge-base editors (articles in SUPPORTBOT_ARTICLES_DIR).",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="validate|index|stale|try|gaps")
    validate_ = commands.add_parser("validate", help="check every article; exit 1 on errors")
    validate_.add_argument("--no-conflicts", action="store_true", help="skip the search check (no model loading)")
    validate_.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    validate_.add_argument("-v", "--verbose", action="store_true", help="also show notes (missing ro/ru translations)")
    index_ = commands.add_parser("index", help="rebuild the search index (embeds what changed)")
    index_.add_argument("--full", action="store_true", help="embed every text again, reusing nothing")
    stale = commands.add_parser("stale", help="articles past review_by or not updated for a while, by owner")
    stale.add_argument("--older-than", type=parse_age, default=parse_age("180d"), help="e.g. 90d, 26w, 6m, 1y (180d)")
    stale.add_argument("--owner", help="only this owner's articles")
    stale.add_argument("--today", type=_date, default=dt.date.today(), help="the day to judge from (today)")
    try_ = commands.add_parser("try", help="what the bot would find and do for a question")
    try_.add_argument("question")
    try_.add_argument("--language", choices=LANGUAGES, help="the conversation's language (used for short questions)")
    try_.add_argument("-k", type=int, default=5, help="how many articles to show (5)")
    gaps = commands.add_parser("gaps", help="what customers asked that we could not answer, grouped by meaning")
    gaps.add_argument("--days", type=float, default=90, help="look back this many days (90)")
    gaps.add_argument("--csv", type=Path, help="also write the whole report to this CSV file")
    gaps.add_argument("--min-size", type=int, default=2, help="smallest group to list as a suggestion (2)")
    gaps.add_argument("--limit", type=int, default=5000, help="group at most the latest N questions (5000)")
    gaps.add_argument("--distance", type=float, default=GROUP_DISTANCE, help=argparse.SUPPRESS)
    return root


COMMANDS = {"validate": cmd_validate, "index": cmd_index, "stale": cmd_stale, "try": cmd_try, "gaps": cmd_gaps}


def main(argv: list[str], settings: Settings | None = None) -> int:
    args = parser().parse_args(argv)
    logging.getLogger("bot.kb.live").setLevel(logging.CRITICAL)  # these commands report file problems themselves
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return COMMANDS[args.command](settings or Settings.from_env(), args)
