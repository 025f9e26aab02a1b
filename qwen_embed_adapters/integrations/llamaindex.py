"""LlamaIndex: ``QwenEmbedding``, a ``BaseEmbedding`` over any qwen_embed_adapters Embedder.

LlamaIndex already separates query and text embeddings, which is exactly Qwen3's asymmetry:
``_get_query_embedding`` wraps the query in ``Instruct: ...\\nQuery:``, ``_get_text_embedding(s)``
embed nodes as they are. LlamaIndex cuts node lists into ``embed_batch_size`` chunks; each chunk is
one call to the embedder (which may cut it further to respect a server's caps).

The embed model pickles and serialises (``to_dict``/``to_json``/``from_dict``) as the embedder's
``to_config()``: plain JSON holding, for a key, only the name of the environment variable it is
read from.

    from llama_index.core import Settings, VectorStoreIndex, Document
    from qwen_embed_adapters.integrations.llamaindex import QwenEmbedding

    Settings.embed_model = QwenEmbedding(base_url="http://localhost:8000/v1", dimensions=512)
    index = VectorStoreIndex.from_documents([Document(text="Beijing is the capital of China")])
    index.as_retriever(similarity_top_k=1).retrieve("capital of China")

``QwenStoreRetriever`` is a LlamaIndex retriever over one of this package's stores, so a query engine can
ask for keyword or hybrid search: ``QwenStoreRetriever(store, similarity_top_k=4, mode="hybrid")``.

Needs the ``llamaindex`` extra: ``pip install "qwen-embed-adapters[llamaindex]"``.
"""

from __future__ import annotations

from typing import Any

from ..config import embedder_from_config
from ..embedder import Embedder
from ..errors import MissingDependencyError
from ..space import DEFAULT_TOLERANCE, SpaceCard
from ..vectors import to_list, to_lists
from ._common import build_embedder, check_width

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as _exc:  # llama-index-core is an optional extra
    raise MissingDependencyError(
        "llama-index-core", "llamaindex", "qwen_embed_adapters.integrations.llamaindex"
    ) from _exc

__all__ = ["QwenEmbedding", "QwenStoreRetriever", "ensure_dimension", "ensure_space"]


class QwenEmbedding(BaseEmbedding):  # type: ignore[misc]
    """LlamaIndex embed model backed by a qwen_embed_adapters ``Embedder``.

    Pass an embedder (or its ``to_config()`` dict), or the keyword arguments of one: with
    ``base_url`` a ``RemoteEmbedder(base_url, model, **kwargs)`` is built, otherwise a
    ``LocalEmbedder(model, **kwargs)``. ``embed_batch_size`` (LlamaIndex's own knob) sets how
    many nodes go to the embedder per call.

    >>> from qwen_embed_adapters.testing import FakeEmbedder
    >>> len(QwenEmbedding(FakeEmbedder(dimensions=8)).get_query_embedding("hello"))
    8
    """

    embedder_config: dict[str, Any] = Field(
        default_factory=dict,
        description="The embedder's to_config(): plain JSON, a key only by its env var name.",
    )
    _embedder: Any = PrivateAttr(default=None)

    def __init__(
        self,
        embedder: Embedder | dict[str, Any] | None = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        embedder_config: dict[str, Any] | None = None,
        embed_batch_size: int = 32,
        model_name: str | None = None,
        callback_manager: Any = None,
        num_workers: int | None = None,
        embeddings_cache: Any = None,
        rate_limiter: Any = None,
        **engine_kwargs: Any,
    ) -> None:
        if embedder is None and base_url is None and model is None and embedder_config:
            embedder = embedder_config  # rebuilt by from_dict / unpickling
        built = build_embedder(embedder, base_url, model, engine_kwargs, owner="QwenEmbedding")
        super().__init__(  # type: ignore[call-arg]  # embedder_config is our field
            embedder_config=built.to_config(),
            embed_batch_size=embed_batch_size,
            model_name=model_name or built.model,
            callback_manager=callback_manager,
            num_workers=num_workers,
            embeddings_cache=embeddings_cache,
            rate_limiter=rate_limiter,
        )
        self._embedder = built

    @classmethod
    def class_name(cls) -> str:
        return "QwenEmbedding"

    @property
    def embedder(self) -> Embedder:
        """The Embedder doing the work (rebuilt from ``embedder_config`` if it was dropped)."""
        if self._embedder is None:
            self._embedder = embedder_from_config(self.embedder_config)
        return self._embedder  # type: ignore[no-any-return]

    @property
    def dimension(self) -> int:
        """The width of every vector."""
        return self.embedder.dimension

    # -- BaseEmbedding hooks -------------------------------------------------------------------
    def _get_query_embedding(self, query: str) -> list[float]:
        return to_list(self.embedder.embed_query(query))

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return to_list(await self.embedder.aembed_query(query))

    def _get_text_embedding(self, text: str) -> list[float]:
        return to_list(self.embedder.embed_documents([text])[0])

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return to_list((await self.embedder.aembed_documents([text]))[0])

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return to_lists(self.embedder.embed_documents(texts))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return to_lists(await self.embedder.aembed_documents(texts))

    # -- pickling: the embedder (threads, connections) is rebuilt from its config --------------
    def __getstate__(self) -> dict[str, Any]:
        embedder, self._embedder = self._embedder, None
        try:
            return super().__getstate__()  # type: ignore[no-any-return]
        finally:
            self._embedder = embedder

    def __repr__(self) -> str:
        return f"QwenEmbedding({self.embedder!r}, embed_batch_size={self.embed_batch_size})"


def ensure_dimension(vector_store: Any, embed_model: QwenEmbedding | Embedder) -> None:
    """Raise DimensionMismatchError if ``vector_store`` already holds vectors of another width.

    LlamaIndex embeds nodes first and lets the database refuse the write; call this after opening a
    store on an existing collection to fail before anything is written. Knows ``ChromaVectorStore``
    (collection metadata written by our Chroma adapter, else one stored vector) and
    ``MilvusVectorStore`` (the vector field's ``dim``). An empty or missing collection passes.
    """
    embedder = embed_model.embedder if isinstance(embed_model, QwenEmbedding) else embed_model
    kind = type(vector_store).__name__
    if kind == "ChromaVectorStore":
        from ._stores import chroma_dimension

        collection = vector_store._collection
        check_width(chroma_dimension(collection), embedder, collection.name)
    elif kind == "MilvusVectorStore":
        from ._stores import milvus_dimension

        name = vector_store.collection_name
        check_width(milvus_dimension(vector_store.client, name, vector_store.embedding_field), embedder, name)
    else:
        raise TypeError(f"ensure_dimension does not know {kind}; supported: ChromaVectorStore, MilvusVectorStore")


class QwenStoreRetriever(BaseRetriever):  # type: ignore[misc]
    """A LlamaIndex retriever over a qwen_embed_adapters ``VectorStore``: ``retrieve(query)`` returns the
    store's ``search(query, top_k=similarity_top_k, filter=filter, mode=mode, fusion=fusion)`` as
    ``NodeWithScore`` (node id = record id; metadata the record's, plus ``vector_score`` / ``keyword_score``
    where a stage scored the hit). ``mode`` is "dense", "keyword" or "hybrid" (docs/retrieval.md)."""

    def __init__(self, store: Any, similarity_top_k: int = 4, *, mode: str = "dense", filter: Any = None,
                 fusion: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.similarity_top_k = similarity_top_k
        self.mode = mode
        self.filter = filter
        self.fusion = fusion

    def _search_args(self) -> dict[str, Any]:
        return {"top_k": self.similarity_top_k, "filter": self.filter, "mode": self.mode, "fusion": self.fusion}

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(h) for h in self.store.search(query_bundle.query_str, **self._search_args())]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(h) for h in await self.store.asearch(query_bundle.query_str, **self._search_args())]


def _node(hit: Any) -> NodeWithScore:
    meta = dict(hit.metadata)
    for name in ("vector_score", "keyword_score", "rerank_score"):
        if getattr(hit, name) is not None:
            meta[name] = getattr(hit, name)
    return NodeWithScore(node=TextNode(id_=hit.id, text=hit.text or "", metadata=meta), score=hit.score)
def ensure_space(
    vector_store: Any, embed_model: QwenEmbedding | Embedder, *, space_check: str = "adopt",
    tolerance: float = DEFAULT_TOLERANCE,
) -> SpaceCard | None:
    """``ensure_dimension``'s successor: also prove that ``embed_model`` speaks the store's vector space.

    Call it after opening a vector store, before inserting nodes or querying: the width first, then the
    space card (docs/space.md; another space raises ``VectorSpaceMismatchError`` naming the worst probe, before
    anything is written). One of our stores goes through its own check; ``ChromaVectorStore`` keeps the card in
    its collection's metadata and ``MilvusVectorStore`` as a collection property (the keys ``ChromaStore`` and
    ``MilvusStore`` use). Returns the card checked or recorded.
    """
    embedder = embed_model.embedder if isinstance(embed_model, QwenEmbedding) else embed_model
    from ..adapters.base import VectorStore as OurStore

    if isinstance(vector_store, OurStore):
        from ._stores import our_store_space

        return our_store_space(vector_store, embedder)  # type: ignore[no-any-return]
    ensure_dimension(vector_store, embedder)
    if type(vector_store).__name__ == "ChromaVectorStore":
        from ._stores import chroma_space

        return chroma_space(vector_store._collection, embedder, space_check, tolerance)  # type: ignore[no-any-return]
    from ._stores import milvus_space

    return milvus_space(vector_store.client, vector_store.collection_name, embedder,  # type: ignore[no-any-return]
                        space_check, tolerance)
