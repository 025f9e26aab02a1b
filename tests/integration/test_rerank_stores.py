"""Two-stage retrieval on the other stores, on real databases: Milvus Lite and a `chroma run` server,
and on Pinecone through the real `pinecone` SDK against tests/support/pinecone_server.py, a local
stand-in for Pinecone's cloud (no real Pinecone can run here).

Each store fetches N candidates by vector; the tiny Qwen3-Reranker reorders them; the result must be
the reranker's order of exactly those candidates, with both scores kept in each Hit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from qwen_embed_adapters.rerank import LocalReranker
from qwen_embed_adapters.testing import FakeEmbedder, make_tiny_qwen3_reranker
from tests.support.two_stage import CORPUS, QUERY, SpyReranker, check_two_stage, expected_two_stage

os.environ.pop("MILVUS_URI", None)
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory) -> LocalReranker:
    folder = make_tiny_qwen3_reranker(tmp_path_factory.mktemp("tiny_reranker") / "model", seed=0)
    return LocalReranker(folder, device="cpu")


@pytest.fixture(scope="module")
def milvus_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("pymilvus")
    from qwen_embed_adapters.adapters.milvus import MilvusStore
    from tests.support.milvus_fixtures import release_lite

    db = tmp_path_factory.mktemp("milvus_rerank") / "rerank.db"
    store = MilvusStore(str(db), "two_stage", FakeEmbedder(dimensions=64))
    store.add_texts(CORPUS, metadatas=[{"even": i % 2 == 0} for i in range(len(CORPUS))])
    try:
        yield store
    finally:
        store.close()
        release_lite(db)


@pytest.fixture(scope="module")
def chroma_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("chromadb")
    from qwen_embed_adapters.adapters.chroma import ChromaStore
    from tests.support.chroma_server import ChromaServer

    path: Path = tmp_path_factory.mktemp("chroma_rerank") / "data"
    server = ChromaServer(path).start()
    try:
        store = ChromaStore(server.client(), "two_stage", FakeEmbedder(dimensions=64))
        store.add_texts(CORPUS, metadatas=[{"even": i % 2 == 0} for i in range(len(CORPUS))])
        yield store
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pinecone_store() -> Iterator[Any]:
    pinecone = pytest.importorskip("pinecone")
    from qwen_embed_adapters.adapters.pinecone import PineconeStore
    from tests.support.pinecone_server import PineconeServer

    with PineconeServer(api_key="pc-test-key") as srv:
        pc = pinecone.Pinecone(api_key="pc-test-key", host=srv.host)
        try:
            store = PineconeStore.create(pc, "two-stage", FakeEmbedder(dimensions=64))
            store.add_texts(CORPUS, metadatas=[{"even": i % 2 == 0} for i in range(len(CORPUS))])
            yield store
        finally:
            pc.close()


@pytest.fixture(params=["milvus", "chroma", "pinecone"])
def store(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_store")


def test_two_stage_returns_the_rerankers_order(store: Any, reranker: LocalReranker) -> None:
    spy = SpyReranker(reranker)
    vector_hits, want = expected_two_stage(store, reranker, QUERY, top_k=5, candidates=12)
    assert len(vector_hits) == 12
    got = store.search(QUERY, top_k=5, rerank=spy, candidates=12)
    check_two_stage(got, want)
    assert spy.seen == [[h.text for h in vector_hits]]
    assert [h.id for h in got] != [h.id for h in vector_hits[:5]]


def test_two_stage_with_a_filter(store: Any, reranker: LocalReranker) -> None:
    _, want = expected_two_stage(store, reranker, QUERY, top_k=3, candidates=8, filter={"even": True})
    got = store.search(QUERY, top_k=3, filter={"even": True}, rerank=reranker, candidates=8)
    check_two_stage(got, want)
    assert all(h.metadata.get("even") is True for h in got)


async def test_async_two_stage(store: Any, reranker: LocalReranker) -> None:
    want = store.search(QUERY, top_k=4, rerank=reranker, candidates=10)
    got = await store.asearch(QUERY, top_k=4, rerank=reranker, candidates=10)
    check_two_stage(got, want)
