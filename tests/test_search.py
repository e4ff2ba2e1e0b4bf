"""Retrieval with the real model and the real knowledge base."""

from __future__ import annotations

import pytest

from bot.diacritics import restore_diacritics
from bot.embeddings.encoder import get_encoder
from bot.kb.articles import ArticleLibrary, load_articles
from bot.kb.index import KnowledgeIndex, embed_texts, known_vectors, load_or_build_index
from bot.language import detect
from bot.settings import Settings


@pytest.fixture(scope="module")
def search():
    settings = Settings.from_env()
    encoder = get_encoder(settings)
    index = load_or_build_index(settings.articles_dir, encoder, settings.cache_dir)

    def ranked(text: str) -> list:
        language = detect(text).language
        return index.search(encoder.encode([restore_diacritics(text, language)])[0], language, k=3)  # as Rasa does

    return ranked


@pytest.mark.parametrize(
    ("question", "article"),
    [
        ("I want to send back the headphones I bought two weeks ago", "returns-how-to"),
        ("chcę oddać słuchawki kupione dwa tygodnie temu", "returns-how-to"),
        ("vreau sa returnez castile cumparate acum doua saptamani", "returns-how-to"),
        ("хочу вернуть наушники, купленные две недели назад", "returns-how-to"),
        ("I forgot my password and cannot sign in", "password-reset"),
        ("nie pamiętam hasła do konta", "password-reset"),
        ("am uitat parola contului", "password-reset"),
        ("забыл пароль от аккаунта", "password-reset"),
        ("czy mozna placic przy odbiorze gotowka", "cash-on-delivery"),  # typed without diacritics
    ],
)
def test_finds_the_article_in_every_language(search, question: str, article: str) -> None:
    assert search(question)[0].article_id == article


def test_finds_an_article_that_exists_only_in_other_languages() -> None:
    settings = Settings.from_env()
    encoder = get_encoder(settings)
    articles = [a for a in load_articles(settings.articles_dir) if (a.id, a.language) != ("gift-cards", "ru")]
    assert ArticleLibrary(articles).languages("gift-cards") == ["en", "pl", "ro"]
    ids, languages, texts, passages = KnowledgeIndex.entries(articles)
    vectors = embed_texts(texts, passages, encoder, known_vectors(settings.cache_dir, encoder))
    index = KnowledgeIndex(vectors, ids, languages, texts, passages)
    question = "сколько действует подарочная карта?"
    assert index.search(encoder.encode([question])[0], "ru", k=3)[0].article_id == "gift-cards"


def test_index_is_reused_until_articles_change(tmp_path) -> None:
    import shutil

    settings = Settings.from_env()
    articles = tmp_path / "kb"
    shutil.copytree(settings.articles_dir / "gift-cards", articles / "gift-cards")
    encoder = get_encoder(settings)
    first = load_or_build_index(articles, encoder, tmp_path / "cache")
    cached = list((tmp_path / "cache" / "kb-index").glob("*.npz"))
    assert len(cached) == 1
    again = load_or_build_index(articles, encoder, tmp_path / "cache")
    assert again.texts == first.texts
    assert list((tmp_path / "cache" / "kb-index").glob("*.npz")) == cached
    (articles / "gift-cards" / "en.md").write_text(
        (articles / "gift-cards" / "en.md").read_text().replace("questions:", "questions:\n  - Gift voucher?")
    )
    changed = load_or_build_index(articles, encoder, tmp_path / "cache")
    assert "Gift voucher?" in changed.texts
    assert len(list((tmp_path / "cache" / "kb-index").glob("*.npz"))) == 2


def test_an_article_scores_with_its_centroid_and_its_nearest_text() -> None:
    import numpy as np

    from bot.kb.index import KnowledgeIndex

    # "far": two texts along one axis and one outlier, the query itself; "near": texts between
    # the query and that axis. By centroid alone "near" wins; the outlier makes "far" win.
    # "other" makes the language mean zero, so that centring leaves this geometry as it is.
    e = np.eye(4, dtype=np.float32)
    query = e[1]
    texts = [e[0], e[0], query, e[0] + e[1], e[0] + e[1] + e[2]]
    vectors = np.stack([*texts, -np.sum(texts, axis=0)])
    ids = ["far", "far", "far", "near", "near", "other"]
    index = KnowledgeIndex(vectors, ids, ["en"] * 6, [f"t{n}" for n in range(6)])
    centred = index.centred(query, "en")
    assert index.ids[int(np.argmax(index.centroids @ centred))] == "near"
    found = index.search(query, "en", k=3)
    assert [c.article_id for c in found] == ["far", "near", "other"]
    assert found[0].matched == "t2"
    far, nearest = index.ids.index("far"), float(index.vectors[2] @ centred)
    assert found[0].score == pytest.approx(0.5 * float(index.centroids[far] @ centred) + 0.5 * nearest, abs=1e-4)


def test_an_articles_body_tips_the_balance_between_equal_questions() -> None:
    import numpy as np

    from bot.kb.index import BODY_WEIGHT, KnowledgeIndex

    # Two articles with mirror-image questions, equally near the query; only "b"'s body is
    # about what the query asks. Without bodies they tie, with them "b" wins by the body's share.
    e = np.eye(6, dtype=np.float32)
    questions = [e[0] + e[1], e[0] + e[2], e[0] - e[1], e[0] - e[2]]
    bodies = [e[3], e[4]]
    balance = [-np.sum(questions, axis=0), -np.sum(bodies, axis=0)]  # zero means: centring keeps the geometry
    vectors = np.stack([*questions, balance[0], *bodies, balance[1]])
    ids = ["a", "a", "b", "b", "other", "a", "b", "other"]
    passages = [False] * 5 + [True] * 3
    texts = [f"t{n}" for n in range(8)]
    query = e[0] + e[4]
    without = KnowledgeIndex(vectors[:5], ids[:5], ["en"] * 5, texts[:5]).scores(query, "en")
    assert without[0] == pytest.approx(without[1])  # ids sort as a, b, other
    index = KnowledgeIndex(vectors, ids, ["en"] * 8, texts, passages)
    assert index.texts == texts[:5]  # a body is never shown as the matched question
    found = index.search(query, "en", k=2)
    assert [c.article_id for c in found] == ["b", "a"]
    centred = index.centred(query, "en")
    body_gap = float(index.body_vectors[1] @ centred - index.body_vectors[0] @ centred)
    assert found[0].score - found[1].score == pytest.approx(BODY_WEIGHT * body_gap, abs=1e-5)
    assert found[0].matched in {"t2", "t3"}


def test_bodies_are_indexed_as_passages_and_cached_with_their_kind(tmp_path) -> None:
    import shutil

    import numpy as np

    from bot.kb.index import load_or_build_entries

    settings = Settings.from_env()
    articles = tmp_path / "kb"
    shutil.copytree(settings.articles_dir / "gift-cards", articles / "gift-cards")
    encoder = get_encoder(settings)
    vectors, _, _, texts, passages = load_or_build_entries(articles, encoder, tmp_path / "cache")
    bodies = [n for n, is_body in enumerate(passages) if is_body]
    assert len(bodies) == len(list((articles / "gift-cards").glob("*.md")))
    body = texts[bodies[0]]
    assert np.allclose(vectors[bodies[0]], encoder.encode_passages([body])[0], atol=1e-5)
    assert not np.allclose(vectors[bodies[0]], encoder.encode([body])[0], atol=1e-3)
    question = texts[1]
    assert np.allclose(vectors[1], encoder.encode([question])[0], atol=1e-5)
    [cached] = (tmp_path / "cache" / "kb-index").glob("*.npz")
    assert list(np.load(cached)["passages"]) == passages
