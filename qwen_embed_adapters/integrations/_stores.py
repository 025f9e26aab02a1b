"""Reading the vector width a framework's store was built with, through the database clients: each store
declares how in ``adapters/spec.py``'s ``STORES`` (``store_dimension``); these name the ones the
framework wrappers know. langchain-postgres keeps every collection in one table of its own layout, read here."""

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


def qdrant_dimension(client: Any, collection: str, vector_name: str | None = None) -> int | None:
    """The size of the collection's dense vector (``vector_name``, or the unnamed/only one), None if no collection."""
    return store_dimension("qdrant", client, collection, vector_name)


def langchain_pgvector_dimension(store: Any) -> int | None:
    """The width a langchain-postgres ``PGVector`` collection holds: its table ``langchain_pg_embedding`` has
    one ``embedding`` column for every collection, ``vector(n)`` when the store was given
    ``embedding_length``, else untyped (each row any width): then that of one row of this collection.
    None when nothing is stored yet. Reads through the store's own (sync) SQLAlchemy engine."""
    engine = getattr(store, "_engine", None)
    if engine is None:
        from ..errors import ConfigurationError

        raise ConfigurationError(
            "ensure_dimension reads a PGVector through its sync engine; this one was opened with async_mode=True: "
            "check a sync PGVector on the same connection first"
        )
    embeddings = store.EmbeddingStore.__tablename__
    collections = store.CollectionStore.__tablename__
    from ..adapters.pgvector import table_dimension

    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        where = f"collection_id = (SELECT uuid FROM {collections} WHERE name = %s)"
        return table_dimension(conn, embeddings, "embedding", where, [store.collection_name])
    finally:
        raw.rollback()
        raw.close()
