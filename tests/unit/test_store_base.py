"""What the VectorStore base gives every store: the public batch hooks, the per-loop client cache,
lifecycle, and the one URL redactor."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from qwen_embed_adapters._http import redact_url as http_redact_url
from qwen_embed_adapters._urls import redact_url
from qwen_embed_adapters.adapters.base import LoopClients
from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.errors import DimensionMismatchError, InvalidInputError
from qwen_embed_adapters.testing import FakeEmbedder


def test_loop_clients_keep_one_per_loop_and_drop_closed_loops() -> None:
    cache: LoopClients[Any] = LoopClients()
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    async def use() -> object:
        first = cache.get(make)
        assert cache.get(make) is first  # the same loop reuses its client
        return first

    a = asyncio.run(use())
    b = asyncio.run(use())  # a new loop gets its own client; the closed loop's entry is dropped
    assert a is not b and len(made) == 2
    assert len(cache) == 1

    async def pop() -> object | None:
        cache.get(make)
        return cache.pop_current()

    assert asyncio.run(pop()) is made[-1]
    assert len(cache) == 0  # the closed loop of `b` was pruned when `pop`'s loop added its own


def test_check_batch_and_write_batch_are_what_ingest_uses() -> None:
    """Bad input tried: lists of different lengths, a NaN row, one row too few, a wrong width."""
    emb = FakeEmbedder(dimensions=8)
    store = FaissStore(emb)
    with pytest.raises(InvalidInputError, match="got 2 ids, 1 texts and 2 metadatas"):
        store.check_batch(["a", "b"], ["x"], [{}, {}])
    store.ensure_dimension()
    vectors = emb.embed_documents(["x", "y"])
    bad = vectors.copy()
    bad[1, 3] = np.nan
    with pytest.raises(InvalidInputError, match="row 1 holds NaN"):
        store.write_batch(["a", "b"], bad, ["x", "y"], [{}, {}])
    with pytest.raises(InvalidInputError, match="got 2 ids but 1 vectors"):
        store.write_batch(["a", "b"], vectors[:1], ["x", "y"], [{}, {}])
    with pytest.raises(DimensionMismatchError):
        store.write_batch(["a", "b"], np.ones((2, 4), dtype=np.float32), ["x", "y"], [{}, {}])
    assert store.count() == 0
    store.write_batch(["a", "b"], vectors.astype(np.float64), ["x", "y"], [{}, {"k": 1}])
    assert store.count() == 2
    np.testing.assert_array_equal(store.get_vectors(["a", "b"]), vectors)
    asyncio.run(store.awrite_batch(["c"], emb.embed_documents(["z"]), ["z"], [{}]))
    assert store.existing_ids(["a", "c", "q"]) == {"a", "c"}


def test_every_store_is_a_context_manager() -> None:
    with FaissStore(FakeEmbedder(dimensions=8)) as store:
        store.add_texts(["one"])

    async def go() -> int:
        async with FaissStore(FakeEmbedder(dimensions=8)) as s:
            await s.aadd_texts(["one", "two"])
            return await s.acount()

    assert asyncio.run(go()) == 2


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:s3cret@in01.zillizcloud.com:19538/db", "https://***@in01.zillizcloud.com:19538/db"),
        ("http://localhost:19530", "http://localhost:19530"),
        ("http://root:s3cret@h", "http://***@h"),
        ("http://k@[::1]:8000/v1?api_key=sk-1&x=2#f", "http://***@[::1]:8000/v1?api_key=***&x=2#f"),
        ("./rag.db", "./rag.db"),
        ("http://h:99999999/", "<unparsable url>"),
    ],
)
def test_one_redactor_for_every_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert http_redact_url is redact_url  # remote.py, rerank.py and the CLI import it from _http
