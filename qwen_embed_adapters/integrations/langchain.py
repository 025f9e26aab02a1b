"""LangChain: ``QwenEmbeddings``, a langchain-core ``Embeddings`` over any qwen_embed_adapters Embedder.

``embed_documents`` embeds texts as they are; ``embed_query`` wraps the query in Qwen3's
``Instruct: ...\\nQuery:`` format first, so any LangChain vector store (Chroma, Milvus, Pinecone,
...) gets Qwen3's asymmetric retrieval without knowing about it. Vectors come back as lists of
Python floats, L2-normalised, at the embedder's (MRL) dimension. The async twins use the
embedder's async path (native HTTP for RemoteEmbedder, a worker thread for LocalEmbedder), so they
never block the event loop.

    from langchain_chroma import Chroma
    from qwen_embed_adapters.integrations.langchain import QwenEmbeddings

    embeddings = QwenEmbeddings(base_url="http://localhost:8000/v1", dimensions=512)
    store = Chroma("docs", embedding_function=embeddings)
    store.add_texts(["Beijing is the capital of China"])
    store.similarity_search("capital of China", k=1)

``QwenStoreRetriever`` is a LangChain retriever over one of this package's stores (FAISS, Chroma, Milvus,
...), so a chain can ask for keyword or hybrid search: ``QwenStoreRetriever(store=store, k=4, mode="hybrid")``.

Needs the ``langchain`` extra: ``pip install "qwen-embed-adapters[langchain]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..embedder import Embedder
from ..errors import MissingDependencyError
from ..space import DEFAULT_TOLERANCE, SpaceCard
from ..vectors import to_list, to_lists
from ._common import build_embedder, check_width

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict
except ImportError as _exc:  # langchain-core is an optional extra
    raise MissingDependencyError("langchain-core", "langchain", "qwen_embed_adapters.integrations.langchain") from _exc

if TYPE_CHECKING:
    from langchain_core.vectorstores import VectorStore

__all__ = ["QwenEmbeddings", "QwenStoreRetriever", "ensure_dimension", "ensure_space"]


class QwenEmbeddings(Embeddings):
    """LangChain ``Embeddings`` backed by a qwen_embed_adapters ``Embedder``.

    Pass an embedder (``QwenEmbeddings(embedder)``, or its ``to_config()`` dict), or the keyword
    arguments of one: with ``base_url`` a ``RemoteEmbedder(base_url, model, **kwargs)`` is built,
    otherwise a ``LocalEmbedder(model, **kwargs)``.

    ``query_instruction`` (default: the embedder's own, i.e. Qwen3's web-search task) is the task
    put in front of every query; ``""`` turns query wrapping off.

    >>> from qwen_embed_adapters.testing import FakeEmbedder
    >>> emb = QwenEmbeddings(FakeEmbedder(dimensions=8))
    >>> len(emb.embed_query("hello"))
    8
    """

    def __init__(
        self,
        embedder: Embedder | dict[str, Any] | None = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.embedder = build_embedder(embedder, base_url, model, kwargs, owner="QwenEmbeddings")

    # -- langchain-core Embeddings -------------------------------------------------------------
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (no instruction) as lists of Python floats."""
        return to_lists(self.embedder.embed_documents(texts))

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the Qwen3 query instruction, as a list of Python floats."""
        return to_list(self.embedder.embed_query(text))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of ``embed_documents``; does not block the event loop."""
        return to_lists(await self.embedder.aembed_documents(texts))

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of ``embed_query``; does not block the event loop."""
        return to_list(await self.embedder.aembed_query(text))

    # -- extras --------------------------------------------------------------------------------
    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Several queries in one call (batched like documents, each with the instruction)."""
        return to_lists(self.embedder.embed_queries(texts))

    @property
    def dimension(self) -> int:
        """The width of every vector (the embedder's dimension)."""
        return self.embedder.dimension

    @property
    def model(self) -> str:
        """The embedder's model name."""
        return self.embedder.model

    @property
    def api_key_env(self) -> str | None:
        """Name of the environment variable a remote embedder read its key from (never the key)."""
        return getattr(self.embedder, "api_key_env", None)

    def close(self) -> None:
        """Release the embedder's threads and connections."""
        self.embedder.close()

    def __repr__(self) -> str:
        return f"QwenEmbeddings({self.embedder!r})"


def ensure_dimension(store: VectorStore, embeddings: QwenEmbeddings | Embedder) -> None:
    """Raise DimensionMismatchError if ``store`` already holds vectors of another width.

    LangChain's stores embed first and let the database refuse the write; call this right after
    opening a store on an existing collection to fail before anything is written. Knows
    langchain-chroma ``Chroma`` (collection metadata written by our Chroma adapter, else one stored
    vector), langchain-milvus ``Milvus`` (the vector field's ``dim``) and langchain-pinecone
    ``PineconeVectorStore`` (the index's ``dimension``). An empty or not yet created collection passes.
    """
    embedder = embeddings.embedder if isinstance(embeddings, QwenEmbeddings) else embeddings
    kind = type(store).__name__
    if kind == "Chroma":
        from ._stores import chroma_dimension

        collection = store._collection  # type: ignore[attr-defined]
        check_width(chroma_dimension(collection), embedder, collection.name)
    elif kind == "Milvus":
        from ._stores import milvus_dimension

        name = store.collection_name  # type: ignore[attr-defined]
        check_width(milvus_dimension(store.client, name, store._vector_field), embedder, name)  # type: ignore[attr-defined]
    elif kind == "PineconeVectorStore":
        from ._stores import pinecone_dimension

        index = store.index  # type: ignore[attr-defined]
        check_width(pinecone_dimension(index), embedder, "pinecone index")
    else:
        raise TypeError(f"ensure_dimension does not know {kind}; supported: Chroma, Milvus, PineconeVectorStore")


class QwenStoreRetriever(BaseRetriever):
    """A LangChain retriever over a qwen_embed_adapters ``VectorStore``: ``invoke(query)`` returns the
    store's ``search(query, top_k=k, filter=filter, mode=mode, fusion=fusion)`` (each settable per call too) as Documents (``id`` set;
    ``metadata`` the record's, plus ``score`` and, where a stage scored the hit, ``vector_score`` /
    ``keyword_score``). ``mode`` is "dense", "keyword" or "hybrid" (docs/retrieval.md)."""

    store: Any
    k: int = 4
    mode: str = "dense"
    filter: Any = None
    fusion: Any = None
    model_config = ConfigDict(arbitrary_types_allowed=True)

    def _search_args(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The store's search arguments: the retriever's, overridden by those of this call
        (``invoke(query, k=2, mode="keyword")``)."""
        return {"top_k": kwargs.get("k", self.k), "filter": kwargs.get("filter", self.filter),
                "mode": kwargs.get("mode", self.mode), "fusion": kwargs.get("fusion", self.fusion)}

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [_document(h) for h in self.store.search(query, **self._search_args(kwargs))]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [_document(h) for h in await self.store.asearch(query, **self._search_args(kwargs))]


def _document(hit: Any) -> Document:
    meta = {**hit.metadata, "score": hit.score}
    for name in ("vector_score", "keyword_score", "rerank_score"):
        if getattr(hit, name) is not None:
            meta[name] = getattr(hit, name)
    return Document(page_content=hit.text or "", metadata=meta, id=hit.id)
def ensure_space(
    store: Any, embeddings: QwenEmbeddings | Embedder, *, space_check: str = "adopt",
    tolerance: float = DEFAULT_TOLERANCE,
) -> SpaceCard | None:
    """``ensure_dimension``'s successor: also prove that ``embeddings`` speaks the store's vector space.

    Call it right after opening a store, before adding or searching. The width is checked first (as
    ``ensure_dimension``), then the space card (docs/space.md): a card recorded with the collection must agree
    with this embedder's probe vectors at ``tolerance``, else ``VectorSpaceMismatchError`` names the worst probe
    before anything is written; a collection without one gets this embedder's (``space_check`` "adopt";
    "strict" refuses one that holds vectors; "off" checks the width only).

    - one of our stores (``qwen_embed_adapters.adapters``' ``VectorStore``): its own check, under its own
      ``space_check`` / ``space_tolerance`` settings;
    - langchain-chroma ``Chroma``: the card in the collection's metadata (the key ``ChromaStore`` uses, so both
      share it);
    - langchain-milvus ``Milvus``: a collection property (``MilvusStore``'s key); a collection not created yet
      gets its card when this is called again after the first write;
    - langchain-pinecone ``PineconeVectorStore``: not covered (the width only; ``PineconeStore`` keeps a card).
    Returns the card checked or recorded, None when there is none.
    """
    embedder = embeddings.embedder if isinstance(embeddings, QwenEmbeddings) else embeddings
    from ..adapters.base import VectorStore as OurStore

    if isinstance(store, OurStore):
        from ._stores import our_store_space

        return our_store_space(store, embedder)  # type: ignore[no-any-return]
    ensure_dimension(store, embedder)
    kind = type(store).__name__
    if kind == "Chroma":
        from ._stores import chroma_space

        return chroma_space(store._collection, embedder, space_check, tolerance)  # type: ignore[no-any-return]
    if kind == "Milvus":
        from ._stores import milvus_space

        return milvus_space(store.client, store.collection_name, embedder, space_check,  # type: ignore[no-any-return]
                            tolerance)
    return None  # PineconeVectorStore: the width was checked; LangChain's Pinecone store keeps no card
