"""Qdrant, server tier: a real Qdrant server at ``QDRANT_URL`` (e.g. ``http://127.0.0.1:6333``; key in
``QDRANT_API_KEY`` if the server wants one), skipped otherwise, like the Pinecone live tier.

No Qdrant server installs from PyPI (local mode is qdrant-client's own engine, tested in
tests/unit/test_qdrant.py), so this tier runs where one is provided: ``docker run -p 6333:6333
qdrant/qdrant`` and ``QDRANT_URL=http://127.0.0.1:6333 make integration``. What only a server does is checked
here: the store built from a ``qdrant+http://`` spec passes the shared contract (the async twins on
``AsyncQdrantClient``), a filter key gets a payload index, and LightRAG's own QdrantVectorDBStorage, pointed
at the server by the ``.env`` ``write_lightrag_env`` writes, is guarded by ``ensure_lightrag_dimension``.
Each test uses collections of its own and deletes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.importorskip("qdrant_client", reason="pip install 'qwen-embed-adapters[qdrant]'")

from qwen_embed_adapters.adapters.qdrant import QdrantStore
from qwen_embed_adapters.adapters.spec import store_from_spec
from qwen_embed_adapters.errors import DimensionMismatchError
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import OpenStore, StoreContract, unique_name

URL = os.environ.get("QDRANT_URL", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not URL, reason="QDRANT_URL is not set: no Qdrant server (none installs from PyPI)"),
]


def _spec(collection: str) -> str:
    parts = urlsplit(URL)
    spec = f"qdrant+{parts.scheme}://{parts.netloc}/{collection}"
    return spec + ("?api_key_env=QDRANT_API_KEY" if os.environ.get("QDRANT_API_KEY") else "")


@pytest.fixture
def client() -> Iterator[Any]:
    from qdrant_client import QdrantClient

    qc = QdrantClient(url=URL, api_key=os.environ.get("QDRANT_API_KEY") or None)
    before = {c.name for c in qc.get_collections().collections}
    yield qc
    for c in qc.get_collections().collections:  # what this test made
        if c.name not in before and c.name.startswith(("qs_", "lightrag_vdb_")):
            qc.delete_collection(c.name)
    qc.close()


class TestQdrantServerContract(StoreContract):
    """The shared store contract on a Qdrant server, each store built from a ``qdrant+http://`` spec."""

    @pytest.fixture
    def open_store(self, client: Any) -> OpenStore:
        name = "qs_" + unique_name("kb").replace("-", "_")
        return lambda embedder: store_from_spec(_spec(name), embedder)


def test_spec_opens_a_server_store_with_wait_writes_and_a_payload_index(client: Any) -> None:
    name = "qs_" + unique_name("idx").replace("-", "_")
    store = store_from_spec(_spec(name), FakeEmbedder(dimensions=16))
    assert isinstance(store, QdrantStore) and not store.local
    store.add_texts(["alpha", "beta", "gamma"], metadatas=[{"lang": "en", "year": 2024}, {"lang": "de", "year": 2025},
                                                           {"lang": "en", "year": 2025}])
    assert store.count() == 3  # wait=True: counted as soon as add_texts returns
    hits = store.search("alpha", top_k=3, filter={"lang": "en", "year": 2025})
    assert [h.text for h in hits] == ["gamma"]
    schema = client.get_collection(name).payload_schema
    assert {k: str(v.data_type.value) for k, v in schema.items()} == {"metadata.lang": "keyword", "metadata.year": "integer"}
    with pytest.raises(DimensionMismatchError) as err:  # a 32-d embedder on the 16-d collection
        store_from_spec(_spec(name), FakeEmbedder(dimensions=32)).add_texts(["delta"])
    assert (err.value.expected, err.value.actual, err.value.where) == (16, 32, name)
    assert store.count() == 3
    store.close()


async def test_lightrag_qdrant_storage_from_our_env_and_guarded(client: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("lightrag", reason="pip install 'qwen-embed-adapters[lightrag]'")
    from dotenv import dotenv_values

    from qwen_embed_adapters.adapters.lightrag import (
        ensure_lightrag_dimension,
        lightrag_embedding_func,
        write_lightrag_env,
    )
    from tests.support.lightrag_fixtures import (
        DOCS,
        RELEVANT,
        close_rag,
        insert_corpus,
        make_rag,
        naive_context,
    )

    workspace = "qs_" + unique_name("ws").replace("-", "_")
    emb = FakeEmbedder("Qwen3-Embedding-fake", dimensions=32, query_instruction="Given a question, retrieve it")
    write_lightrag_env(tmp_path / ".env", emb, host="http://127.0.0.1:9/v1", vector_store=_spec("kb"),
                       workspace=workspace)
    for key, value in dotenv_values(tmp_path / ".env").items():
        if key.startswith(("QDRANT_", "LIGHTRAG_")) and value is not None:
            monkeypatch.setenv(key, os.path.expandvars(value))
    assert os.environ["LIGHTRAG_VECTOR_STORAGE"] == "QdrantVectorDBStorage" and os.environ["QDRANT_URL"] == URL.rstrip("/")
    rag = await make_rag(tmp_path / "rag", lightrag_embedding_func(emb), vector_storage="QdrantVectorDBStorage")
    try:
        await insert_corpus(rag)
        context = await naive_context(rag)
    finally:
        await close_rag(rag)
    assert DOCS[RELEVANT] in context
    other = FakeEmbedder("Qwen3-Embedding-fake", dimensions=64)
    with pytest.raises(DimensionMismatchError) as exc:  # a 64-d embedder on this workspace's 32-d chunks
        ensure_lightrag_dimension(tmp_path / "rag", other, vector_storage="QdrantVectorDBStorage")
    assert (exc.value.expected, exc.value.actual) == (32, 64)
    assert exc.value.where == "lightrag_vdb_chunks_qwen3_embedding_fake_32d"
