"""What produced a set of figures: commit, model, settings."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import subprocess
from pathlib import Path

import yaml

from bot.kb.decision import KEYS
from bot.settings import Settings


def _git(project_dir: Path, *args: str) -> str:
    try:
        result = subprocess.run(["git", *args], cwd=project_dir, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


# What the eval and the benches write: a run's own reports are not a change to the code.
GENERATED = ("docs/eval", "docs/bench")


def commit(project_dir: Path) -> str:
    return _git(project_dir, "rev-parse", "--short", "HEAD")


def uncommitted_changes(project_dir: Path) -> bool | None:
    """Whether tracked files differ from the commit, apart from the runs' own reports (None: not a git checkout)."""
    excluded = [f":!{path}" for path in GENERATED]
    changed = _git(project_dir, "status", "--porcelain", "--untracked-files=no", "--", *excluded)
    return bool(changed) if changed != "unknown" else None


def fallback_threshold(config_file: Path) -> float:
    """The FallbackClassifier's intent confidence threshold in config.yml."""
    pipeline = (yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}).get("pipeline") or []
    for component in pipeline:
        if component.get("name") == "FallbackClassifier":
            return float(component.get("threshold", 0.3))
    raise ValueError(f"{config_file}: the pipeline has no FallbackClassifier")


# The int8 encoder's integer kernels differ by instruction set (onnxruntime picks AVX2, AVX-512 or
# VNNI ones), and so, a little, do its vectors: on close calls the figures follow the processor.
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def processor() -> str:
    """The CPU's model name and the instruction sets that matter for int8 (Linux; else the platform's name)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown processor"
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    return f"{fields.get('model name', 'unknown processor')} ({', '.join(f for f in CPU_FEATURES if f in flags)})"


def machine() -> str:
    """Architecture, CPU count and processor: int8 figures and speed both depend on them."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {processor()}"


def run_info(
    settings: Settings, model_path: Path | None, embedding_model: str, heldout_file: Path
) -> dict[str, object]:
    # As written (calibrate records the file it is about to replace, which may lack a newer key).
    thresholds = yaml.safe_load(settings.thresholds_file.read_text(encoding="utf-8")) or {}
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(settings.project_dir),
        "uncommitted_changes": uncommitted_changes(settings.project_dir),
        "rasa_model": model_path.name if model_path else None,
        "embedding_model": embedding_model,
        "embedding_backend": settings.embedding_backend,
        "thresholds": {key: thresholds.get(key) for key in KEYS},
        "fallback_threshold": fallback_threshold(settings.project_dir / "config.yml"),
        "heldout_sha256": hashlib.sha256(heldout_file.read_bytes()).hexdigest()[:16],
        "python": platform.python_version(),
        "machine": machine(),
    }
