"""Pinecone, live tier: the real Pinecone service, when ``PINECONE_API_KEY`` is set (skipped otherwise).

Creates a throw-away serverless index (``PINECONE_CLOUD`` / ``PINECONE_REGION``, default aws /
us-east-1), runs the same checks as the other tiers, and deletes the index. Serverless reads are
eventually consistent, so counts and queries are polled for up to a minute.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pinecone = pytest.importorskip("pinecone")

from qwen_embed_adapters.adapters.pinecone import PineconeStore  # noqa: E402
from qwen_embed_adapters.errors import DimensionMismatchError  # noqa: E402
from qwen_embed_adapters.testing import FakeEmbedder  # noqa: E402
from tests.support.pinecone_scenario import run_store_scenario  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.environ.get("PINECONE_API_KEY"), reason="PINECONE_API_KEY is not set: no live Pinecone"),
]


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Any, str]]:
    pc = pinecone.Pinecone(api_key=os.environ["PINECONE_API_KEY"])
    name = f"qea-test-{uuid.uuid4().hex[:10]}"
    try:
        yield pc, name
    finally:
        if pc.has_index(name):
            pc.delete_index(name)


def test_live_ids_counts_nearest_and_dimension_error(live: tuple[Any, str]) -> None:
    """Runs against the live Pinecone service: create the index with the embedder's dimension, then
    ids, counts, nearest results, filter, delete, and the dimension error both on re-open with a
    32-d embedder (before any write) and on writing through a 32-d store."""
    pc, name = live
    cloud = os.environ.get("PINECONE_CLOUD", "aws")
    region = os.environ.get("PINECONE_REGION", "us-east-1")
    store = PineconeStore.create(pc, name, FakeEmbedder(dimensions=64), cloud=cloud, region=region,
                                 namespace="scenario")
    assert pc.describe_index(name).dimension == 64
    with pytest.raises(DimensionMismatchError) as err:
        PineconeStore.create(pc, name, FakeEmbedder(dimensions=32), cloud=cloud, region=region)
    assert (err.value.expected, err.value.actual, err.value.where) == (64, 32, name)
    wrong = PineconeStore(store.index, FakeEmbedder(dimensions=32), namespace="scenario", name=name)
    run_store_scenario(store, wrong, settle=60.0)
