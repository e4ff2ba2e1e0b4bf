"""The editors' command line (`bot/assistant kb ...`) on a copy of the real articles."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from bot.kb.editor import main as kb
from bot.settings import Settings

ARTICLES = Settings().articles_dir


@pytest.fixture()
def editor(tmp_path: Path):
    """Run `kb <args>` against a fresh copy of kb_articles: (exit code, output)."""
    articles = tmp_path / "kb_articles"
    shutil.copytree(ARTICLES, articles)
    settings = dataclasses.replace(Settings.from_env(), articles_dir=articles)

    def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
        code = kb(list(args), settings)
        return code, capsys.readouterr().out

    run.articles = articles  # type: ignore[attr-defined]
    return run


def front_matter(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8").split("---")[1])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_validate_passes_on_the_shipped_articles(editor, capsys) -> None:
    code, out = editor(capsys, "validate")
    assert code == 0, out
    assert "0 errors" in out


def test_validate_reports_each_problem_and_fails(editor, capsys) -> None:
    articles: Path = editor.articles
    edit(articles / "gift-cards" / "en.md", "owner: ", "ownr: ")  # schema: a required field missing
    edit(articles / "newsletter" / "en.md", "updated: ", "updated: last week #")
    shutil.copytree(articles / "instalments", articles / "instalments-copy")  # declares id instalments again
    edit(articles / "returns-how-to" / "en.md", "(kb:refunds-timing)", "(kb:refund-timings)")  # broken link
    (articles / "bank-transfer" / "pl.md").unlink()  # a required translation gone

    code, out = editor(capsys, "validate", "--no-conflicts")

    assert code == 1
    lines = out.splitlines()

    def reported(*words: str) -> bool:
        return any(line.startswith("ERROR") and all(w in line for w in words) for line in lines)

    assert reported("gift-cards/en.md", "front matter lacks owner")
    assert reported("newsletter/en.md", "'updated' must be a date")
    assert reported("duplicate id 'instalments'")
    assert reported("returns-how-to/en.md", "broken link kb:refund-timings")
    assert reported("bank-transfer", "missing translation: pl")
    summary = next(line for line in lines if " errors, " in line)
    assert int(summary.split(": ")[1].split(" errors")[0]) >= 5


def test_validate_finds_a_sample_question_that_retrieves_another_article(editor, capsys) -> None:
    # The newsletter article claims a question that plainly belongs to password resets.
    edit(
        editor.articles / "newsletter" / "en.md",
        "questions:\n",
        "questions:\n  - I forgot my password, how do I reset it?\n",
    )
    code, out = editor(capsys, "validate")
    conflicts = [line for line in out.splitlines() if "conflict:" in line]
    assert any(
        "newsletter/en.md" in line and "I forgot my password" in line and "password-reset" in line for line in conflicts
    ), out
    assert code == 0  # conflicts are warnings
    assert editor(capsys, "validate", "--strict")[0] == 1


def test_stale_groups_overdue_articles_by_owner(editor, capsys) -> None:
    edit(editor.articles / "gift-cards" / "en.md", "review_by: ", "review_by: 2026-01-10 #")
    today = dt.date(2026, 12, 1)
    overdue = {
        path.relative_to(editor.articles).as_posix(): front_matter(path)
        for path in editor.articles.glob("*/*.md")
        if front_matter(path)["review_by"] < today
    }
    code, out = editor(capsys, "stale", "--today", today.isoformat(), "--older-than", "5y")
    assert code == 0
    listed, owner = {}, None
    for line in out.split("\n\n")[0].splitlines():
        if line.startswith("  "):
            listed["/".join(Path(line.split()[0]).parts[-2:])] = owner
        else:
            owner = line.split(" (")[0]
    assert listed == {path: meta["owner"] for path, meta in overdue.items()}
    gift_cards = next(line for line in out.splitlines() if "gift-cards/en.md" in line)
    assert "review was due 2026-01-10 (325 days ago)" in gift_cards
    assert f"{len(overdue)} of" in out

    code, out = editor(capsys, "stale", "--today", "2030-01-01", "--older-than", "1y")
    files = len(list(editor.articles.glob("*/*.md")))
    assert f"{files} of {files} article files are stale" in out


def test_try_shows_the_top_articles_as_the_bot_sees_them(editor, capsys) -> None:
    code, out = editor(capsys, "try", "Jak mogę zwrócić produkt?", "-k", "3")
    assert code == 0
    ranked = [line for line in out.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert len(ranked) == 3
    assert "returns-how-to" in ranked[0]
    assert "language: pl" in out
    assert 'the bot answers with returns-how-to "Jak zwrócić produkt' in out or "offers a choice" in out


def test_index_rebuilds_embedding_only_what_changed(editor, capsys) -> None:
    edit(editor.articles / "gift-cards" / "en.md", "questions:\n", "questions:\n  - Can I buy a voucher for my mum?\n")
    code, out = editor(capsys, "index")
    assert code == 0
    assert "(1 embedded," in out, out
    (editor.articles / "gift-cards" / "en.md").write_text("not an article", encoding="utf-8")
    code, out = editor(capsys, "index")
    assert code == 1
