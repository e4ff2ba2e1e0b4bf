"""What produced a set of figures: a run's own reports are not uncommitted changes; code is."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.eval.run_info import commit, uncommitted_changes


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_reports_written_by_eval_and_bench_are_not_changes_but_code_is(tmp_path: Path) -> None:
    for name in ("bot/kb/index.py", "docs/eval/report.md", "docs/bench/embedding.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("first\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")

    assert commit(tmp_path) == git(tmp_path, "rev-parse", "--short", "HEAD")
    assert uncommitted_changes(tmp_path) is False
    (tmp_path / "docs/eval/report.md").write_text("a new run\n")
    (tmp_path / "docs/bench/embedding.md").write_text("a new run\n")
    assert uncommitted_changes(tmp_path) is False
    (tmp_path / "bot/kb/index.py").write_text("changed\n")
    assert uncommitted_changes(tmp_path) is True


def test_outside_a_git_checkout_nothing_is_claimed(tmp_path: Path) -> None:
    assert uncommitted_changes(tmp_path) is None
    assert commit(tmp_path) == "unknown"
