"""Reading the vector width a framework's store was built with, through the database clients."""

from __future__ import annotations

from typing import Any

#: Collection metadata key written by qwen_embed_adapters.adapters.chroma.
_CHROMA_META_DIMENSION = "qwen_embed_dimension"


def chroma_dimension(collection: Any) -> int | None:
    """Width recorded in the collection's metadata, else that of one stored vector, else None."""
    meta = collection.metadata or {}
    if _CHROMA_META_DIMENSION in meta:
        return int(meta[_CHROMA_META_DIMENSION])
    got = collection.peek(limit=1)
    embeddings = got.get("embeddings") if isinstance(got, dict) else None
    if embeddings is not None and len(embeddings) > 0:
        return len(embeddings[0])
    return None


def milvus_dimension(client: Any, collection: str, vector_field: str | None = None) -> int | None:
    """The ``dim`` of the collection's (named or only) float-vector field, None if no collection."""
    if not client.has_collection(collection):
        return None
    for field in client.describe_collection(collection).get("fields", []):
        dim = (field.get("params") or {}).get("dim")
        if dim is not None and (vector_field is None or field.get("name") == vector_field):
            return int(dim)
    return None


def pinecone_dimension(index: Any) -> int | None:
    """The index's dimension from describe_index_stats."""
    stats = index.describe_index_stats()
    dim = stats.get("dimension") if isinstance(stats, dict) else getattr(stats, "dimension", None)
    return int(dim) if dim else None
