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


# ---------------------------------------------------------------------------- the space card
def our_store_space(store: Any, embedder: Any) -> Any:
    """A wrapper over one of our stores goes through the store's own check (its settings decide). Another
    embedder than the store's is checked against the store's card on its own (the store's proof, once per
    process, covers the store's embedder only)."""
    from ..adapters.card import prove_card
    from ..errors import DimensionMismatchError

    store.ensure_dimension()
    if embedder is store.embedder:
        store.ensure_space(writing=True)
        return store.space_card
    if embedder.dimension != store.embedder.dimension:
        raise DimensionMismatchError(store.embedder.dimension, embedder.dimension, store.name)
    return prove_card(lambda: store._read_card() or getattr(store, "_memory_card", None), store._write_card,
                      embedder, store.name, space_check=store.space_check, tolerance=store.space_tolerance,
                      holds_data=lambda: store.count() > 0)


def chroma_space(collection: Any, embedder: Any, space_check: str, tolerance: float) -> Any:
    """The card in a Chroma collection's metadata (the key ``ChromaStore`` uses)."""
    from ..adapters.chroma import ensure_collection_space

    return ensure_collection_space(collection, embedder, space_check=space_check, tolerance=tolerance)


def milvus_space(client: Any, name: str, embedder: Any, space_check: str, tolerance: float) -> Any:
    """The card as a Milvus collection property (the key ``MilvusStore`` uses). A collection that does not
    exist yet (langchain-milvus creates it on the first add) has nowhere to keep one: None, logged."""
    import logging

    from ..adapters.card import prove_card
    from ..adapters.milvus import SPACE_CARD_PROPERTY

    if not client.has_collection(name):
        logging.getLogger(__name__).info(
            "milvus collection %r does not exist yet: its space card is recorded when ensure_space is called "
            "after the first write", name)
        return None

    def read() -> str | None:
        props = client.describe_collection(name).get("properties") or {}
        card = props.get(SPACE_CARD_PROPERTY)
        return card if isinstance(card, str) and card else None

    def write(card: str) -> None:
        client.alter_collection_properties(name, properties={SPACE_CARD_PROPERTY: card})

    def holds_data() -> bool:
        return int(client.get_collection_stats(name).get("row_count", 0)) > 0

    return prove_card(read, write, embedder, name, space_check=space_check, tolerance=tolerance,
                      holds_data=holds_data)
