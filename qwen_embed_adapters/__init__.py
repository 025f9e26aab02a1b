"""qwen_embed_adapters: Qwen3-Embedding glue for Chroma, Milvus, Pinecone, LightRAG and FAISS.

One embedding interface (``Embedder``) with two engines: ``RemoteEmbedder`` for any
OpenAI-compatible ``/v1/embeddings`` server and ``LocalEmbedder`` for an in-process torch model.
This module imports no optional dependency; ``LocalEmbedder`` loads torch only when built.
"""

from __future__ import annotations

import typing

from .config import embedder_from_config, embedder_from_env
from .embedder import Embedder
from .errors import (
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingServiceError,
    InvalidInputError,
    MissingDependencyError,
    QwenEmbedError,
)
from .remote import RemoteEmbedder

if typing.TYPE_CHECKING:  # for type checkers; at run time __getattr__ imports it on first use
    from .local import LocalEmbedder

__version__ = "0.1.0"


def __getattr__(name: str) -> typing.Any:
    # LocalEmbedder's module imports torch lazily, but keep even the import of the module lazy.
    if name == "LocalEmbedder":
        from .local import LocalEmbedder

        return LocalEmbedder
    raise AttributeError(f"module 'qwen_embed_adapters' has no attribute {name!r}")


__all__ = [
    "ConfigurationError",
    "DimensionMismatchError",
    "Embedder",
    "EmbeddingServiceError",
    "InvalidInputError",
    "LocalEmbedder",
    "MissingDependencyError",
    "QwenEmbedError",
    "RemoteEmbedder",
    "embedder_from_config",
    "embedder_from_env",
]
