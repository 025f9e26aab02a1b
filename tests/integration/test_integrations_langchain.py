"""QwenEmbeddings in real LangChain stacks: langchain-tests' standard integration suite with the tiny
Qwen3 in-process and through a real `qwen-embed serve`; langchain-chroma and langchain-milvus (Milvus
Lite) retrieving with the real MiniLM; the Qwen3 instruction reaching the engine for queries only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from qwen_embed_adapters.errors import DimensionMismatchError
from qwen_embed_adapters.integrations.langchain import QwenEmbeddings, ensure_dimension
from qwen_embed_adapters.models import format_query
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support import local_fixtures, retrieval_corpus
from tests.support.local_fixtures import ServeProcess
from tests.support.recording import RecordingEmbedder
from tests.support.retrieval_corpus import DOCS, EXPECTED, QUESTION, TASK

tiny_qwen3_dir = local_fixtures.tiny_qwen3_dir
serve_tiny = local_fixtures.serve_tiny
minilm_dir = local_fixtures.minilm_dir
minilm = retrieval_corpus.minilm
recording = retrieval_corpus.recording

pytestmark = pytest.mark.integration



class TestStandardInProcess(EmbeddingsIntegrationTests):
    """The tiny Qwen3 run in-process by LocalEmbedder."""

    _model_dir: str = ""

    @pytest.fixture(autouse=True)
    def _model(self, tiny_qwen3_dir: str) -> None:
        type(self)._model_dir = tiny_qwen3_dir

    @property
    def embeddings_class(self) -> type[QwenEmbeddings]:
        return QwenEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": self._model_dir, "device": "cpu", "max_length": 512}


class TestStandardThroughServe(EmbeddingsIntegrationTests):
    """The same model behind a real `qwen-embed serve` subprocess, reached by RemoteEmbedder."""

    _url: str = ""

    @pytest.fixture(autouse=True)
    def _server(self, serve_tiny: ServeProcess) -> None:
        type(self)._url = serve_tiny.base_url

    @property
    def embeddings_class(self) -> type[QwenEmbeddings]:
        return QwenEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"base_url": self._url, "model": "tiny-qwen3", "batch_size": 2}


def _assert_instruction_only_on_queries(rec: RecordingEmbedder) -> None:
    wrapped = format_query(QUESTION, TASK)
    assert wrapped in rec.sent
    assert sorted(t for t in rec.sent if t != wrapped) == sorted(DOCS)  # documents went in bare
    assert all(not t.startswith("Instruct:") for t in rec.sent if t != wrapped)


def test_langchain_chroma_retrieves_and_instructs_queries_only(tmp_path: Path,
                                                               recording: RecordingEmbedder) -> None:
    from langchain_chroma import Chroma

    store = Chroma("lc-docs", embedding_function=QwenEmbeddings(recording), persist_directory=str(tmp_path),
                   collection_metadata={"hnsw:space": "cosine"})
    ids = store.add_texts(DOCS, ids=[f"d{i}" for i in range(len(DOCS))])
    assert ids == ["d0", "d1", "d2", "d3"]
    hits = store.similarity_search(QUESTION, k=1)
    assert [h.page_content for h in hits] == [EXPECTED]
    _assert_instruction_only_on_queries(recording)


async def test_langchain_chroma_async_search(tmp_path: Path, recording: RecordingEmbedder) -> None:
    from langchain_chroma import Chroma

    store = Chroma("lc-async", embedding_function=QwenEmbeddings(recording), persist_directory=str(tmp_path))
    await store.aadd_texts(DOCS)
    hits = await store.asimilarity_search(QUESTION, k=1)
    assert [h.page_content for h in hits] == [EXPECTED]
    _assert_instruction_only_on_queries(recording)


def test_langchain_milvus_lite_retrieves_and_instructs_queries_only(tmp_path: Path,
                                                                    recording: RecordingEmbedder) -> None:
    from langchain_milvus import Milvus

    store = Milvus(embedding_function=QwenEmbeddings(recording), collection_name="lc_docs",
                   connection_args={"uri": str(tmp_path / "lc.db")}, auto_id=True,
                   index_params={"index_type": "FLAT", "metric_type": "COSINE"})
    store.add_texts(DOCS)
    hits = store.similarity_search(QUESTION, k=1)
    assert [h.page_content for h in hits] == [EXPECTED]
    _assert_instruction_only_on_queries(recording)


def test_ensure_dimension_chroma_refuses_other_width_before_writing(tmp_path: Path) -> None:
    from langchain_chroma import Chroma

    Chroma("lc-dim", embedding_function=QwenEmbeddings(FakeEmbedder(dimensions=32)),
           persist_directory=str(tmp_path)).add_texts(["one", "two"])
    narrow = FakeEmbedder(dimensions=16)
    reopened = Chroma("lc-dim", embedding_function=QwenEmbeddings(narrow), persist_directory=str(tmp_path))
    with pytest.raises(DimensionMismatchError) as err:  # a 16-d embedder on a 32-d collection
        ensure_dimension(reopened, QwenEmbeddings(narrow))
    assert (err.value.expected, err.value.actual, err.value.where) == (32, 16, "lc-dim")
    assert reopened._collection.count() == 2
    ensure_dimension(reopened, FakeEmbedder(dimensions=32))  # the right width passes


def test_ensure_dimension_milvus_refuses_other_width_before_writing(tmp_path: Path) -> None:
    from langchain_milvus import Milvus

    uri = str(tmp_path / "dim.db")
    Milvus(embedding_function=QwenEmbeddings(FakeEmbedder(dimensions=32)), collection_name="lc_dim",
           connection_args={"uri": uri}, auto_id=True).add_texts(["one", "two"])
    narrow = QwenEmbeddings(FakeEmbedder(dimensions=16))
    reopened = Milvus(embedding_function=narrow, collection_name="lc_dim", connection_args={"uri": uri},
                      auto_id=True)
    with pytest.raises(DimensionMismatchError) as err:  # a 16-d embedder on a 32-d collection
        ensure_dimension(reopened, narrow)
    assert (err.value.expected, err.value.actual, err.value.where) == (32, 16, "lc_dim")
    assert reopened.client.get_collection_stats("lc_dim")["row_count"] == 2


def test_langchain_qdrant_local_retrieves_and_instructs_queries_only(tmp_path: Path,
                                                                     recording: RecordingEmbedder) -> None:
    """langchain-qdrant's QdrantVectorStore on Qdrant local mode (a folder), embedding through QwenEmbeddings."""
    from langchain_qdrant import QdrantVectorStore

    store = QdrantVectorStore.from_texts(DOCS, QwenEmbeddings(recording), path=str(tmp_path / "q"),
                                         collection_name="lc_docs", ids=[f"{i:032x}" for i in range(len(DOCS))])
    from qwen_embed_adapters.integrations._stores import qdrant_dimension

    # langchain-qdrant makes a vector named "" (not the unnamed default): read back at MiniLM's width
    assert list(store.client.get_collection("lc_docs").config.params.vectors) == [""]
    assert qdrant_dimension(store.client, "lc_docs", "") == 384
    hits = store.similarity_search(QUESTION, k=1)
    assert [h.page_content for h in hits] == [EXPECTED]
    # from_texts embeds one "dummy_text" document first to learn the width (langchain_qdrant/qdrant.py)
    sent = recording.sent
    assert sent.count("dummy_text") == 1
    wrapped = format_query(QUESTION, TASK)
    assert sorted(t for t in sent if t not in (wrapped, "dummy_text")) == sorted(DOCS)  # documents went in bare
    assert sent.count(wrapped) == 1 and not any(t.startswith("Instruct:") for t in sent if t != wrapped)
    store.client.close()


def _qdrant_32d(client: Any, name: str) -> None:
    from qdrant_client import models

    client.create_collection(name, vectors_config=models.VectorParams(size=32, distance=models.Distance.COSINE))


def test_ensure_dimension_qdrant_refuses_other_width_before_writing(tmp_path: Path) -> None:
    from langchain_qdrant import QdrantVectorStore
    from langchain_qdrant.qdrant import QdrantVectorStoreError
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(tmp_path / "q"))
    _qdrant_32d(client, "lc_dim")
    QdrantVectorStore(client, "lc_dim", QwenEmbeddings(FakeEmbedder(dimensions=32))).add_texts(["one", "two"])
    narrow = QwenEmbeddings(FakeEmbedder(dimensions=16))
    # langchain-qdrant checks the width itself when it opens the collection, with its own error class
    with pytest.raises(QdrantVectorStoreError, match="32"):
        QdrantVectorStore(client, "lc_dim", narrow)
    # ... and not at all with validate_collection_config=False: the guard still refuses, as ours
    reopened = QdrantVectorStore(client, "lc_dim", narrow, validate_collection_config=False)
    with pytest.raises(DimensionMismatchError) as err:  # a 16-d embedder on a 32-d collection
        ensure_dimension(reopened, narrow)
    assert (err.value.expected, err.value.actual, err.value.where) == (32, 16, "lc_dim")
    assert client.count("lc_dim").count == 2
    ensure_dimension(reopened, FakeEmbedder(dimensions=32))  # the right width passes
    ensure_dimension(QdrantVectorStore(client, "absent", narrow, validate_collection_config=False), narrow)
    client.close()


def test_langchain_qdrant_reads_a_collection_our_qdrant_store_wrote(tmp_path: Path, minilm: Any) -> None:
    """The same database from both sides: QdrantStore writes (payload "text" and "metadata"), LangChain's
    QdrantVectorStore on the same client searches it with the same embedder."""
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from qwen_embed_adapters.adapters.qdrant import QdrantStore

    client = QdrantClient(path=str(tmp_path / "q"))
    emb = RecordingEmbedder(minilm, query_instruction=TASK)
    ours = QdrantStore(client, "kb", emb)
    ours.add_texts(DOCS, metadatas=[{"n": i} for i in range(len(DOCS))])
    theirs = QdrantVectorStore(client, "kb", QwenEmbeddings(emb), content_payload_key="text")
    ensure_dimension(theirs, emb)
    hits = theirs.similarity_search_with_score(QUESTION, k=1)
    from qwen_embed_adapters.adapters.qdrant import point_id

    ours_id = ours.search(QUESTION, top_k=1)[0].id
    assert [(d.page_content, d.metadata) for d, _ in hits] == [
        (EXPECTED, {"n": 1, "_id": point_id(ours_id), "_collection_name": "kb"})  # langchain-qdrant adds these two
    ]
    assert hits[0][1] == pytest.approx(ours.search(QUESTION, top_k=1)[0].score, abs=1e-5)
    client.close()
