"""LightRAG adapter: an ``EmbeddingFunc`` with Qwen3 query instructions, LightRAG's own environment,
a ``.env`` block for ``lightrag-server``, and a dimension guard for existing working dirs.

LightRAG (lightrag-hku >= 1.5) calls its embedding function with ``context="query"`` when it
searches and ``context="document"`` when it indexes, provided the function declares
``supports_asymmetric=True``. That is exactly where Qwen3's query instruction belongs::

    from lightrag import LightRAG
    from qwen_embed_adapters import RemoteEmbedder
    from qwen_embed_adapters.adapters.lightrag import ensure_lightrag_dimension, lightrag_embedding_func

    emb = RemoteEmbedder("http://localhost:30000/v1", "Qwen3-Embedding-0.6B", dimensions=512)
    ensure_lightrag_dimension("./rag_storage", emb)          # before LightRAG opens the dir
    rag = LightRAG(working_dir="./rag_storage", embedding_func=lightrag_embedding_func(emb), ...)

Nothing here imports LightRAG, pymilvus or faiss until a function needs them. Three parts:
``embedding`` (the EmbeddingFunc and the names LightRAG derives from a model), ``env`` (reading and
writing LightRAG's ``EMBEDDING_*`` variables), ``guards`` (working-dir dimension checks) and ``card`` (the
working dir's space card: ``ensure_lightrag_space``, or ``lightrag_embedding_func(emb, working_dir=...)``).
"""

from __future__ import annotations

from .card import CARD_FILE, ensure_lightrag_space, lightrag_card_path
from .embedding import lightrag_collection_suffix, lightrag_embedding_func, lightrag_model_name
from .env import (
    DEFAULT_EMBEDDING_BATCH_NUM,
    DEFAULT_EMBEDDING_FUNC_MAX_ASYNC,
    DEFAULT_EMBEDDING_TIMEOUT,
    NO_PREFIX,
    OPENAI_COMPATIBLE_BINDINGS,
    LightRAGEmbeddingEnv,
    embedder_from_lightrag_env,
    lightrag_embedding_func_from_env,
    lightrag_env_block,
    lightrag_env_values,
    read_lightrag_env,
    write_lightrag_env,
)
from .guards import VECTOR_NAMESPACES, ensure_lightrag_dimension, milvus_lite_env

__all__ = [
    "CARD_FILE",
    "DEFAULT_EMBEDDING_BATCH_NUM",
    "DEFAULT_EMBEDDING_FUNC_MAX_ASYNC",
    "DEFAULT_EMBEDDING_TIMEOUT",
    "NO_PREFIX",
    "OPENAI_COMPATIBLE_BINDINGS",
    "VECTOR_NAMESPACES",
    "LightRAGEmbeddingEnv",
    "embedder_from_lightrag_env",
    "ensure_lightrag_dimension",
    "ensure_lightrag_space",
    "lightrag_card_path",
    "lightrag_collection_suffix",
    "lightrag_embedding_func",
    "lightrag_embedding_func_from_env",
    "lightrag_env_block",
    "lightrag_env_values",
    "lightrag_model_name",
    "milvus_lite_env",
    "read_lightrag_env",
    "write_lightrag_env",
]
