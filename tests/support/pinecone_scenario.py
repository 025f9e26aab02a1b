"""The checks every Pinecone test tier runs (local stand-in, Pinecone Local in Docker, the live service):
ids, counts, nearest results and the dimension error, through ``PineconeStore``."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.adapters.pinecone import PineconeStore
from qwen_embed_adapters.errors import DimensionMismatchError

CORPUS = [
    "Pinecone is a managed vector database for similarity search.",
    "Milvus Lite runs in process and stores vectors in a local file.",
    "Chroma keeps collections with an embedding function attached.",
    "FAISS builds flat and HNSW indexes in memory.",
    "LightRAG builds a knowledge graph and retrieves with embeddings.",
    "Qwen3-Embedding-0.6B returns 1024-dimensional vectors.",
    "Matryoshka truncation keeps the first dimensions and renormalises.",
    "The reranker scores query and document pairs.",
]
META = [{"n": i, "lang": "en" if i % 2 == 0 else "fr"} for i in range(len(CORPUS))]


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    """Poll ``predicate`` (for services whose stats are eventually consistent); True once it holds."""
    deadline = time.monotonic() + seconds
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def run_store_scenario(store: PineconeStore, wrong_width_store: PineconeStore, settle: float = 0.0) -> None:
    """Add the corpus, check ids/count/nearest/filter/delete, then the dimension error.

    ``settle`` > 0 polls counts and queries for that many seconds (serverless freshness lag).
    """
    ids = store.add_texts(CORPUS, metadatas=META)
    assert ids == [content_id(t) for t in CORPUS]
    assert len(set(ids)) == len(CORPUS)

    def count_is(n: int) -> Callable[[], bool]:
        return lambda: store.count() == n

    if settle:
        assert wait_for(count_is(len(CORPUS)), settle), f"count stayed {store.count()}"
    assert store.count() == len(CORPUS)

    # Re-adding the same texts stores nothing new (content-hash ids).
    assert store.add_texts(CORPUS[:3], metadatas=META[:3]) == ids[:3]
    if settle:
        wait_for(count_is(len(CORPUS)), min(settle, 5.0))
    assert store.count() == len(CORPUS)

    # The nearest text to a document, queried without instruction, is that document.
    target = 5
    hits = store.search(CORPUS[target], top_k=3, instruction="")
    if settle and (not hits or hits[0].id != ids[target]):
        wait_for(lambda: store.search(CORPUS[target], top_k=3, instruction="")[0].id == ids[target], settle)
        hits = store.search(CORPUS[target], top_k=3, instruction="")
    assert len(hits) == 3
    assert hits[0].id == ids[target]
    assert hits[0].text == CORPUS[target]
    assert hits[0].metadata == {"n": target, "lang": "fr"}
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert hits[0].score >= hits[1].score >= hits[2].score

    fr = store.search(CORPUS[0], top_k=8, filter={"lang": {"$eq": "fr"}}, instruction="")
    assert sorted(h.id for h in fr) == sorted(ids[i] for i in range(1, len(CORPUS), 2)), [h.metadata for h in fr]

    store.delete([ids[0], ids[1]])
    if settle:
        assert wait_for(count_is(len(CORPUS) - 2), settle)
    assert store.count() == len(CORPUS) - 2

    with pytest.raises(DimensionMismatchError) as err:
        wrong_width_store.add_texts(["never written"])
    e = err.value
    assert (e.expected, e.actual) == (store.dimension, wrong_width_store.embedder.dimension)
    assert str(store.dimension) in str(e) and str(wrong_width_store.embedder.dimension) in str(e)
    assert store.count() == len(CORPUS) - 2
