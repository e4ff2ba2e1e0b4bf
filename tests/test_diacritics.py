"""Putting back the diacritics customers leave out, and that the bot embeds what it puts back."""

from __future__ import annotations

import numpy as np
import pytest

from bot.diacritics import restore_diacritics, strip_diacritics
from bot.embeddings.encoder import get_encoder
from bot.kb.articles import load_articles
from bot.kb.index import KnowledgeIndex, as_embedded, load_or_build_entries
from bot.settings import Settings


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("czy mozna placic przy odbiorze gotowka", "pl", "czy można płacić przy odbiorze gotówką"),
        ("Jak sie zmienia haslo?", "pl", "Jak się zmienia hasło?"),
        ("ZAMOWIENIE nie przyszlo", "pl", "ZAMÓWIENIE nie przyszło"),
        ("vreau sa returnez o pereche de casti", "ro", "vreau să returnez o pereche de căști"),
        ("garantia la frigider cat este", "ro", "garanția la frigider cât este"),
    ],
)
def test_plain_words_get_their_diacritics_back(text: str, language: str, expected: str) -> None:
    assert restore_diacritics(text, language) == expected


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Zamówienie BC-1234567 nie dotarło", "pl"),  # already written with them
        ("mam kota i dom", "pl"),  # words as they are, far more common than any accented look-alike
        ("I want to return it", "en"),
        ("mozna placic", "ru"),
        ("mozna placic", None),
    ],
)
def test_other_texts_are_left_as_written(text: str, language: str | None) -> None:
    assert restore_diacritics(text, language) == text


def test_restoring_a_written_text_keeps_its_letters() -> None:
    text = "Czy mogę zapłacić kurierowi gotowka? Cât costă livrarea?"
    for language in ("pl", "ro"):
        restored = restore_diacritics(text, language)
        assert strip_diacritics(restored) == strip_diacritics(text)


def test_the_index_embeds_questions_as_a_customer_would_write_them() -> None:
    settings = Settings.from_env()
    encoder = get_encoder(settings)
    articles = load_articles(settings.articles_dir)
    vectors, ids, languages, texts, passages = load_or_build_entries(settings.articles_dir, encoder, settings.cache_dir)
    assert (ids, languages, texts, passages) == KnowledgeIndex.entries(articles)  # shown as the editors wrote them
    position = texts.index("brakuje czesci zamowienia")  # a Polish sample question typed without diacritics
    assert as_embedded(texts, languages, passages)[position] == "brakuje części zamówienia"
    expected = encoder.encode(["brakuje części zamówienia"])[0]
    assert np.allclose(vectors[position], expected, atol=1e-5)
    body = passages.index(True)
    assert as_embedded(texts, languages, passages)[body] == texts[body]  # bodies go in as written
