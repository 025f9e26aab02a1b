"""Reading the vector width a framework's store was built with, through the database clients: each store
declares how in ``adapters/spec.py``'s ``STORES`` (``store_dimension``); these name the three the
framework wrappers know."""

from __future__ import annotations

from typing import Any

from ..adapters.spec import store_dimension


def chroma_dimension(collection: Any) -> int | None:
    """Width recorded in the collection's metadata, else that of one stored vector, else None."""
    return store_dimension("chroma", collection)


def milvus_dimension(client: Any, collection: str, vector_field: str | None = None) -> int | None:
    """The ``dim`` of the collection's (named or only) float-vector field, None if no collection."""
    return store_dimension("milvus", client, collection, vector_field)


def pinecone_dimension(index: Any) -> int | None:
    """The index's dimension from describe_index_stats."""
    return store_dimension("pinecone", index)
