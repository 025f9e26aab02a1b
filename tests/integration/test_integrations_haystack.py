"""Haystack indexing + query pipelines over InMemoryDocumentStore with the real MiniLM, and the tiny
Qwen3 through a real `qwen-embed serve`."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no posthog calls from tests
pytest.importorskip("haystack")
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore

from qwen_embed_adapters.integrations.haystack import QwenDocumentEmbedder, QwenTextEmbedder
from qwen_embed_adapters.models import format_query
from tests.support import local_fixtures
from tests.support.local_fixtures import ServeProcess
from tests.support.recording import RecordingEmbedder
from tests.support.retrieval_corpus import DOCS, QUESTION, TASK

minilm_dir = local_fixtures.minilm_dir
tiny_qwen3_dir = local_fixtures.tiny_qwen3_dir
serve_tiny = local_fixtures.serve_tiny

pytestmark = pytest.mark.integration



def _pipelines(doc_embedder: Any, text_embedder: Any) -> tuple[Pipeline, Pipeline, InMemoryDocumentStore]:
    store = InMemoryDocumentStore(embedding_similarity_function="cosine")
    index = Pipeline()
    index.add_component("embed", doc_embedder)
    index.add_component("write", DocumentWriter(document_store=store))
    index.connect("embed.documents", "write.documents")
    query = Pipeline()
    query.add_component("embed", text_embedder)
    query.add_component("retrieve", InMemoryEmbeddingRetriever(document_store=store, top_k=1))
    query.connect("embed.embedding", "retrieve.query_embedding")
    return index, query, store


def test_indexing_and_query_pipeline_with_minilm(minilm_dir: str) -> None:
    from qwen_embed_adapters.local import LocalEmbedder

    rec = RecordingEmbedder(LocalEmbedder(minilm_dir, device="cpu", max_length=256), query_instruction=TASK)
    index, query, store = _pipelines(QwenDocumentEmbedder(rec), QwenTextEmbedder(rec))
    written = index.run({"embed": {"documents": [Document(content=t, id=f"d{i}") for i, t in enumerate(DOCS)]}})
    assert written["write"]["documents_written"] == 4 and store.count_documents() == 4
    hits = query.run({"embed": {"text": QUESTION}})["retrieve"]["documents"]
    assert [h.id for h in hits] == ["d1"]
    assert rec.calls == [DOCS, [format_query(QUESTION, TASK)]]  # documents bare, the query instructed


def test_pipelines_through_serve_match_in_process(serve_tiny: ServeProcess, tiny_qwen3_dir: str) -> None:
    from qwen_embed_adapters.local import LocalEmbedder

    index, query, store = _pipelines(
        QwenDocumentEmbedder(base_url=serve_tiny.base_url, model="tiny-qwen3", batch_size=3),
        QwenTextEmbedder(base_url=serve_tiny.base_url, model="tiny-qwen3", query_instruction=TASK),
    )
    index.run({"embed": {"documents": [Document(content=t, id=f"d{i}") for i, t in enumerate(DOCS)]}})
    local = LocalEmbedder(tiny_qwen3_dir, device="cpu", max_length=512, query_instruction=TASK)
    stored = sorted(store.filter_documents(), key=lambda d: d.id)
    np.testing.assert_allclose(np.array([d.embedding for d in stored]), local.embed_documents(DOCS), atol=1e-5)
    got = query.run({"embed": {"text": QUESTION}}, include_outputs_from={"embed"})
    np.testing.assert_allclose(got["embed"]["embedding"], local.embed_query(QUESTION), atol=1e-5)
    assert len(got["retrieve"]["documents"]) == 1
