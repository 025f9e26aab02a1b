"""QwenEmbedding in a real LlamaIndex stack: VectorStoreIndex over ChromaVectorStore (and, in the compat
tier, MilvusVectorStore on Milvus Lite) retrieving with the real MiniLM; instruction on queries only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from qwen_embed_adapters.errors import DimensionMismatchError
from qwen_embed_adapters.integrations.llamaindex import QwenEmbedding, ensure_dimension
from qwen_embed_adapters.models import format_query
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support import local_fixtures, retrieval_corpus
from tests.support.recording import RecordingEmbedder
from tests.support.retrieval_corpus import DOCS, EXPECTED, QUESTION, TASK

minilm_dir = local_fixtures.minilm_dir
minilm = retrieval_corpus.minilm
recording = retrieval_corpus.recording

pytestmark = pytest.mark.integration



def _nodes() -> list[Any]:
    from llama_index.core.schema import TextNode

    return [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(DOCS)]


def _retrieve(vector_store: Any, embed_model: QwenEmbedding) -> list[Any]:
    from llama_index.core import StorageContext, VectorStoreIndex

    ctx = StorageContext.from_defaults(vector_store=vector_store)
    index = VectorStoreIndex(_nodes(), storage_context=ctx, embed_model=embed_model)
    return index.as_retriever(similarity_top_k=1).retrieve(QUESTION)


def _assert_instruction_only_on_queries(rec: RecordingEmbedder) -> None:
    wrapped = format_query(QUESTION, TASK)
    assert rec.sent.count(wrapped) == 1
    assert sorted(t for t in rec.sent if t != wrapped) == sorted(DOCS)


def _chroma_store(path: Path, name: str) -> Any:
    import chromadb
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(path=str(path))
    return ChromaVectorStore(chroma_collection=client.get_or_create_collection(name))


def test_vector_store_index_over_chroma(tmp_path: Path, recording: RecordingEmbedder) -> None:
    pytest.importorskip("llama_index.vector_stores.chroma")
    hits = _retrieve(_chroma_store(tmp_path, "li-docs"), QwenEmbedding(recording, embed_batch_size=3))
    assert [(h.node.node_id, h.node.get_content()) for h in hits] == [("n1", EXPECTED)]
    assert [len(c) for c in recording.calls[:2]] == [3, 1]  # embed_batch_size=3 over 4 nodes
    _assert_instruction_only_on_queries(recording)


async def test_vector_store_index_over_chroma_async(tmp_path: Path, recording: RecordingEmbedder) -> None:
    pytest.importorskip("llama_index.vector_stores.chroma")
    from llama_index.core import StorageContext, VectorStoreIndex

    ctx = StorageContext.from_defaults(vector_store=_chroma_store(tmp_path, "li-async"))
    index = VectorStoreIndex(_nodes(), storage_context=ctx, embed_model=QwenEmbedding(recording), use_async=True)
    hits = await index.as_retriever(similarity_top_k=1).aretrieve(QUESTION)
    assert [h.node.node_id for h in hits] == ["n1"]
    _assert_instruction_only_on_queries(recording)


def test_vector_store_index_over_milvus_lite(tmp_path: Path, recording: RecordingEmbedder) -> None:
    pytest.importorskip("llama_index.vector_stores.milvus",
                        reason="llama-index-vector-stores-milvus needs pymilvus<3: runs in `make test-integrations-compat`")
    from llama_index.vector_stores.milvus import MilvusVectorStore

    store = MilvusVectorStore(uri=str(tmp_path / "li.db"), collection_name="li_docs", dim=recording.dimension,
                              similarity_metric="COSINE", overwrite=True)
    hits = _retrieve(store, QwenEmbedding(recording))
    assert [(h.node.node_id, h.node.get_content()) for h in hits] == [("n1", EXPECTED)]
    _assert_instruction_only_on_queries(recording)


def test_settings_embed_model_drives_the_index(tmp_path: Path, recording: RecordingEmbedder) -> None:
    pytest.importorskip("llama_index.vector_stores.chroma")
    from llama_index.core import Settings, StorageContext, VectorStoreIndex

    old = Settings._embed_model
    try:
        Settings.embed_model = QwenEmbedding(recording)
        ctx = StorageContext.from_defaults(vector_store=_chroma_store(tmp_path, "li-settings"))
        index = VectorStoreIndex(_nodes(), storage_context=ctx)  # no embed_model: taken from Settings
        assert [h.node.node_id for h in index.as_retriever(similarity_top_k=1).retrieve(QUESTION)] == ["n1"]
    finally:
        Settings._embed_model = old
    _assert_instruction_only_on_queries(recording)


def test_ensure_dimension_chroma(tmp_path: Path) -> None:
    pytest.importorskip("llama_index.vector_stores.chroma")
    from llama_index.core import StorageContext, VectorStoreIndex

    store = _chroma_store(tmp_path, "li-dim")
    VectorStoreIndex(_nodes(), storage_context=StorageContext.from_defaults(vector_store=store),
                     embed_model=QwenEmbedding(FakeEmbedder(dimensions=32)))
    reopened = _chroma_store(tmp_path, "li-dim")
    with pytest.raises(DimensionMismatchError) as err:  # a 16-d model on a 32-d collection
        ensure_dimension(reopened, QwenEmbedding(FakeEmbedder(dimensions=16)))
    assert (err.value.expected, err.value.actual, err.value.where) == (32, 16, "li-dim")
    ensure_dimension(reopened, FakeEmbedder(dimensions=32))
