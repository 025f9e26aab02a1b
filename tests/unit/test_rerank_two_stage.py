"""Two-stage retrieval on FaissStore: N candidates by vector, reordered by the tiny Qwen3-Reranker."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("faiss")

from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.errors import InvalidInputError
from qwen_embed_adapters.rerank import LocalReranker
from qwen_embed_adapters.testing import FakeEmbedder, make_tiny_qwen3_reranker
from qwen_embed_adapters.testing.contract import (
    CORPUS,
    QUERY,
    SpyReranker,
    check_two_stage,
    expected_two_stage,
)


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory) -> LocalReranker:
    folder = make_tiny_qwen3_reranker(tmp_path_factory.mktemp("tiny_reranker") / "model", seed=0)
    return LocalReranker(folder, device="cpu")


@pytest.fixture(params=["flat", "hnsw"])
def store(request: pytest.FixtureRequest) -> FaissStore:
    s = FaissStore(FakeEmbedder(dimensions=64), index=request.param)
    s.add_texts(CORPUS, metadatas=[{"even": i % 2 == 0} for i in range(len(CORPUS))])
    return s


def test_two_stage_returns_the_rerankers_order(store: FaissStore, reranker: LocalReranker) -> None:
    spy = SpyReranker(reranker)
    vector_hits, want = expected_two_stage(store, reranker, QUERY, top_k=5, candidates=12)
    got = store.search(QUERY, top_k=5, rerank=spy, candidates=12)
    check_two_stage(got, want)
    # The reranker saw exactly the 12 vector candidates, in vector order, once.
    assert spy.seen == [[h.text for h in vector_hits]]
    # And the reranker really changed the order (otherwise this test would prove little).
    assert [h.id for h in got] != [h.id for h in vector_hits[:5]]


def test_default_candidates_and_filters(store: FaissStore, reranker: LocalReranker) -> None:
    spy = SpyReranker(reranker)
    got = store.search(QUERY, top_k=3, rerank=spy)
    assert len(spy.seen[0]) == 20  # max(4 x top_k, 20)
    _, want = expected_two_stage(store, reranker, QUERY, top_k=3, candidates=20)
    check_two_stage(got, want)
    _, want_even = expected_two_stage(store, reranker, QUERY, top_k=3, candidates=8, filter={"even": True})
    got_even = store.search(QUERY, top_k=3, filter={"even": True}, rerank=reranker, candidates=8)
    check_two_stage(got_even, want_even)
    assert all(h.metadata == {"even": True} for h in got_even)


async def test_async_two_stage_equals_sync(store: FaissStore, reranker: LocalReranker) -> None:
    sync = store.search(QUERY, top_k=4, rerank=reranker, candidates=10)
    got = await store.asearch(QUERY, top_k=4, rerank=reranker, candidates=10)
    check_two_stage(got, sync)


def test_fewer_records_than_candidates(reranker: LocalReranker) -> None:
    small = FaissStore(FakeEmbedder(dimensions=64))
    small.add_texts(CORPUS[:3])
    got = small.search(QUERY, top_k=2, rerank=reranker, candidates=50)
    _, want = expected_two_stage(small, reranker, QUERY, top_k=2, candidates=3)
    check_two_stage(got, want)


def test_candidates_below_top_k_is_refused(store: FaissStore, reranker: LocalReranker) -> None:
    """Bad input: candidates smaller than top_k."""
    with pytest.raises(InvalidInputError, match=r"candidates must be an int >= top_k \(5\), got 3"):
        store.search(QUERY, top_k=5, rerank=reranker, candidates=3)
