"""Framework stores whose packages pin older database SDKs than this project (compat tier).

langchain-pinecone 0.2 needs ``pinecone<8`` (the project uses 10.x) and llama-index-vector-stores-milvus
needs ``pymilvus<3`` (the project uses 3.x), so these run in their own venv built by
``make test-integrations-compat``; in the project venv they skip. LlamaIndex's MilvusVectorStore
test lives in test_integrations_llamaindex.py and runs here too.

The Pinecone side is the stand-in of tests/support/pinecone_server.py, answering the 2025-04 API
version that SDK 7 sends on the data plane (upsert, query and describe_index_stats are unchanged
between 2025-04 and 2026-07); the index is created on the stand-in directly, since SDK 7's
create-index body predates the stand-in's control plane.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

langchain_pinecone = pytest.importorskip(
    "langchain_pinecone", reason="langchain-pinecone needs pinecone<8: runs in `make test-integrations-compat`"
)

from qwen_embed_adapters.errors import DimensionMismatchError  # noqa: E402
from qwen_embed_adapters.integrations.langchain import QwenEmbeddings, ensure_dimension  # noqa: E402
from qwen_embed_adapters.models import format_query  # noqa: E402
from qwen_embed_adapters.testing import FakeEmbedder  # noqa: E402
from tests.support import local_fixtures  # noqa: E402
from tests.support.pinecone_server import API_VERSION, PineconeServer  # noqa: E402
from tests.support.recording import RecordingEmbedder  # noqa: E402
from tests.support.retrieval_corpus import DOCS, QUESTION, TASK  # noqa: E402

minilm_dir = local_fixtures.minilm_dir

pytestmark = pytest.mark.integration



@pytest.fixture
def pinecone_srv() -> Iterator[PineconeServer]:
    with PineconeServer(api_versions=(API_VERSION, "2025-04")) as srv:
        yield srv


def _index(srv: PineconeServer, name: str, dim: int) -> Any:
    from pinecone import Pinecone

    ix = srv.add_index(name, dim)
    return Pinecone(api_key=srv.api_key).Index(host=ix.host)


def test_langchain_pinecone_retrieves_and_instructs_queries_only(pinecone_srv: PineconeServer,
                                                                 minilm_dir: str) -> None:
    from qwen_embed_adapters.local import LocalEmbedder

    rec = RecordingEmbedder(LocalEmbedder(minilm_dir, device="cpu", max_length=256), query_instruction=TASK)
    store = langchain_pinecone.PineconeVectorStore(index=_index(pinecone_srv, "lc-docs", rec.dimension),
                                                   embedding=QwenEmbeddings(rec), text_key="text")
    ids = store.add_texts(DOCS, ids=[f"d{i}" for i in range(len(DOCS))])
    assert ids == ["d0", "d1", "d2", "d3"]
    assert pinecone_srv.indexes["lc-docs"].count() == 4
    hits = store.similarity_search(QUESTION, k=1)
    assert [h.page_content for h in hits] == [DOCS[1]]
    assert rec.calls[-1] == [format_query(QUESTION, TASK)]
    assert sorted(t for b in rec.calls[:-1] for t in b) == sorted(DOCS)
    # vectors went over the wire as JSON lists of floats at the embedder's width
    upserted = [v for r in pinecone_srv.requests_to("/vectors/upsert") for v in r.body["vectors"]]
    assert len(upserted) == 4 and all(len(v["values"]) == rec.dimension for v in upserted)


def test_ensure_dimension_pinecone(pinecone_srv: PineconeServer) -> None:
    narrow = QwenEmbeddings(FakeEmbedder(dimensions=16))
    store = langchain_pinecone.PineconeVectorStore(index=_index(pinecone_srv, "lc-dim", 32), embedding=narrow)
    with pytest.raises(DimensionMismatchError) as err:  # a 16-d embedder on a 32-d index
        ensure_dimension(store, narrow)
    assert (err.value.expected, err.value.actual) == (32, 16)
    assert pinecone_srv.requests_to("/vectors/upsert") == []
