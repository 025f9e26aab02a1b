"""Qdrant: a cosine collection per embedder through qdrant-client; local mode by default, a server by URL.

    from qwen_embed_adapters.adapters.qdrant import QdrantStore

    store = QdrantStore(":memory:", "kb", embedder)                 # local mode, in memory
    # store = QdrantStore("./qdrant-data", "kb", embedder)          # local mode, on disk
    # store = QdrantStore("http://qdrant:6333", "kb", embedder, api_key=...)   # a Qdrant server
    store.add_texts(["Beijing is the capital of China"], metadatas=[{"lang": "en"}])
    hits = store.search("capital of China", top_k=3, filter={"lang": "en"})

Points carry the payload ``{"id": <our id>, "text": ..., "metadata": {...}}``; Qdrant point ids must be
unsigned ints or UUIDs, so a point's id is ``uuid5`` of our id (the same id always maps to the same point,
so upserts replace). The model and dimension that created the collection are kept in the collection's
metadata (Qdrant 1.16+, qdrant-client 1.16+), and so is the space card — never a point in the collection.

Keyword search (``search(..., mode="keyword" | "hybrid")``) is Qdrant's own: a new collection gets a named
sparse vector ``bm25`` with ``modifier=Modifier.IDF`` (Qdrant computes the inverse document frequency over
the collection; local mode does too), and every point carries BM25 term-frequency weights of its text's
``retrieval.tokenize`` terms (``adapters/sparse.py``). A query is the sparse vector of its terms, filters
apply as for dense search, and deleting a point deletes its terms. ``keyword=False`` creates a collection
without it; a collection created without it refuses keyword search, naming the fix.

Local mode (``QdrantClient(path=...)`` / ``":memory:"``) is Qdrant's own pure-Python engine: exact
search, one process per folder (it locks it). Writes are sent with ``wait=True`` and cut into requests
under Qdrant's 32 MiB JSON limit (``service.max_request_size_mb``). A filter key gets a payload index
on a server the first time it is used. qdrant-client is imported lazily (extra ``qdrant``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import numpy as np

from ..embedder import Embedder
from ..errors import ConfigurationError, DimensionMismatchError, InvalidInputError, MissingDependencyError
from ..settings import check_bool, check_int, check_str
from ..vectors import as_float32_matrix
from . import sparse
from .base import PRECISIONS, Hit, StoreSettings, VectorStore, check_ids, filter_values, secret_from_env

logger = logging.getLogger(__name__)

#: namespace of the uuid5 point ids derived from our string ids
ID_NAMESPACE = uuid.UUID("6f1c1a9e-5c33-4c0e-9a52-6a0e0b7d2d11")
#: collection-metadata keys this library writes
META_MODEL = "qwen_embed.model"
META_DIMENSION = "qwen_embed.dimension"
META_CARD = "qwen_embed.card"
META_PRECISION = "qwen_embed.precision"
#: the collection-metadata key recording how the keyword side's terms were made (``sparse.SCHEME``)
META_KEYWORD = "qwen_embed.keyword"
#: the named sparse vector holding each point's BM25 term weights
KEYWORD_VECTOR = "bm25"
#: keep each upsert request well under Qdrant's default 32 MiB limit
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def _import_qdrant() -> Any:
    try:
        import qdrant_client
    except ImportError:
        raise MissingDependencyError("qdrant-client", "qdrant", "the Qdrant adapter") from None
    return qdrant_client


def point_id(item_id: str) -> str:
    """The Qdrant point id (a UUID string) of one of our ids.

    >>> point_id("a")
    '4e4213b1-237b-5b04-93ea-9fa8126442bb'
    """
    return str(uuid.uuid5(ID_NAMESPACE, item_id))


def qdrant_filter(filter: Any) -> Any:
    """A ``qdrant_client.models.Filter`` from a metadata filter (None for None).

    A dict of metadata key -> value (equality), -> list of values or ``{"$in": [...]}`` (any of), or
    ``{"$eq": v}``; a ``models.Filter`` passes through (its keys address the payload: ``metadata.<key>``).
    """
    if filter is None:
        return None
    models = _import_qdrant().models
    if isinstance(filter, models.Filter):
        return filter
    if not isinstance(filter, Mapping):
        raise InvalidInputError(f"filter must be a dict of metadata values, a qdrant Filter or None, got {type(filter).__name__}")
    must = []
    for key, want in filter.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"filter keys must be non-empty str, got {key!r}")
        values = filter_values(key, want)
        field = f"metadata.{key}"
        if all(isinstance(v, str) for v in values) or all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            match = models.MatchValue(value=values[0]) if len(values) == 1 else models.MatchAny(any=values)
            must.append(models.FieldCondition(key=field, match=match))
            continue
        should = []
        for v in values:
            if isinstance(v, (bool, str, int)):
                should.append(models.FieldCondition(key=field, match=models.MatchValue(value=v)))
            elif isinstance(v, float):
                should.append(models.FieldCondition(key=field, range=models.Range(gte=v, lte=v)))
            else:
                raise InvalidInputError(
                    f"filter value for {key!r} must be a str, int, float or bool (Qdrant matches no other), got {v!r}"
                )
        must.append(should[0] if len(should) == 1 else models.Filter(should=should))
    return models.Filter(must=must)


@dataclasses.dataclass(frozen=True)
class QdrantSettings(StoreSettings):
    """Everything that opens a ``QdrantStore`` again, as plain data (``{"store": "qdrant", **fields}`` is
    its spec). ``location``: ``":memory:"``, a folder (local mode) or an http(s):// URL. The API key is not
    a setting: ``api_key_env`` names its variable."""

    location: str | None = None
    collection: str = "documents"
    api_key_env: str | None = None
    vector_name: str | None = None
    hnsw_m: int | None = None
    hnsw_ef_construct: int | None = None
    ef_search: int | None = None
    on_disk: bool = False
    write_batch_size: int | None = None
    timeout: int | None = None
    prefer_grpc: bool = False
    keyword: bool = True

    def validate(self) -> None:
        check_str("location", self.location, optional=True)
        if self.location and "://" in self.location:
            parts = urlsplit(self.location)
            if parts.username or parts.password:
                raise ConfigurationError("credentials do not belong in the location: name the key's variable in api_key_env")
        if not isinstance(self.collection, str) or not self.collection or "/" in self.collection:
            raise ConfigurationError(f"collection must be a non-empty str without '/', got {self.collection!r}")
        check_str("api_key_env", self.api_key_env, optional=True)
        check_str("vector_name", self.vector_name, optional=True)
        for name in ("hnsw_m", "hnsw_ef_construct", "ef_search", "write_batch_size", "timeout"):
            check_int(name, getattr(self, name), minimum=1, optional=True)
        check_bool("on_disk", self.on_disk)
        check_bool("prefer_grpc", self.prefer_grpc)
        check_bool("keyword", self.keyword)

    def missing_location(self) -> str | None:
        return None if self.location else "needs 'location' (':memory:', a folder or an http(s):// URL)"


class QdrantStore(VectorStore):
    """A Qdrant collection fed and searched through an Embedder.

    ``location_or_client``: ``":memory:"`` or a folder path (local mode), an ``http(s)://`` URL
    of a Qdrant server (``api_key=`` for Qdrant Cloud), or a ``QdrantClient`` (used as is, not closed by
    ``close()``; pass one client to every store that shares a local folder).

    ``vector_name``: the named vector to use; an existing collection with exactly one named vector uses
    that one, a new collection gets the unnamed default unless a name is given. The async twins use one
    ``AsyncQdrantClient`` per event loop on a server; local mode runs them on worker threads (its data
    lives in the one client).

    ``keyword`` (default True): a new collection gets the sparse ``bm25`` vector that keyword and hybrid
    search use (an existing collection keeps what it was created with).
    """

    keyword_support: ClassVar[str] = "native"
    keyword_note: ClassVar[str] = (
        "native: a sparse vector with Qdrant's IDF modifier; BM25 term weights of retrieval.tokenize terms "
        "computed client-side (identifiers split, Chinese cut into words by jieba)"
    )
    settings_class: ClassVar[type[QdrantSettings]] = QdrantSettings
    kind: ClassVar[str] = "qdrant"
    settings: QdrantSettings
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS

    def __init__(
        self,
        location_or_client: Any,
        collection: str,
        embedder: Embedder,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        vector_name: str | None = None,
        hnsw_m: int | None = None,
        hnsw_ef_construct: int | None = None,
        ef_search: int | None = None,
        on_disk: bool = False,
        write_batch_size: int | None = None,
        timeout: int | None = None,
        prefer_grpc: bool = False,
        precision: str | None = None,
        rescore: int = 4,
        keyword: bool = True,
    ) -> None:
        super().__init__(embedder)
        where = os.fspath(location_or_client) if isinstance(location_or_client, (str, os.PathLike)) else None
        self.settings = st = QdrantSettings(
            location=where, collection=collection, api_key_env=api_key_env, vector_name=vector_name, hnsw_m=hnsw_m,
            hnsw_ef_construct=hnsw_ef_construct, ef_search=ef_search, on_disk=on_disk,
            write_batch_size=write_batch_size, timeout=timeout, prefer_grpc=prefer_grpc, keyword=keyword,
            precision=precision, rescore=rescore,
        )
        self.collection = st.collection
        self.vector_name = st.vector_name
        self.hnsw_m, self.hnsw_ef_construct, self.ef_search = st.hnsw_m, st.hnsw_ef_construct, st.ef_search
        self.on_disk = st.on_disk
        if st.write_batch_size is not None:
            self.write_batch_size = st.write_batch_size
        if api_key is None and api_key_env:
            api_key = secret_from_env(api_key_env, "the Qdrant store's api_key_env")
        self._qc = _import_qdrant()
        self._timeout = timeout
        self._url: str | None = None
        self._api_key = api_key
        self._prefer_grpc = prefer_grpc
        self._owns_client = False
        if isinstance(location_or_client, self._qc.QdrantClient):
            self.client = location_or_client
        elif where is not None:
            if where.startswith(("http://", "https://")):
                self._url = where
                self.client = self._qc.QdrantClient(url=where, api_key=api_key, timeout=timeout, prefer_grpc=prefer_grpc)
            elif where == ":memory:":
                self.client = self._qc.QdrantClient(location=":memory:")
            else:
                os.makedirs(where, exist_ok=True)
                self.client = self._qc.QdrantClient(path=where)
            self._owns_client = True
        elif isinstance(location_or_client, self._qc.AsyncQdrantClient):
            raise ConfigurationError("pass a QdrantClient (or a location); the async client is opened per event loop")
        else:
            raise ConfigurationError(
                "location_or_client must be ':memory:', a folder, an http(s):// URL or a QdrantClient, "
                f"got {type(location_or_client).__name__}"
            )
        self._lock = threading.RLock()
        self._dimension: int | None = None
        self._indexed: set[str] = set()
        if self.local and st.precision not in (None, "float32"):
            raise ConfigurationError(
                f"QdrantStore {self.collection!r} cannot keep precision={st.precision!r} in local mode: qdrant-client's "
                "local mode keeps float vectors and searches exactly (it drops quantization_config and ignores "
                "search_params); use a Qdrant server, whose scalar/binary quantization this store configures"
            )
        #: whether the collection has the sparse ``bm25`` vector, and the term scheme it recorded
        self._keyword_on = False
        self._keyword_scheme: str | None = None

    # ------------------------------------------------------------------ names
    @property
    def name(self) -> str:
        """The collection name."""
        return self.collection

    @property
    def dimension(self) -> int | None:
        """The collection's vector dimension, once ``ensure_dimension`` has run."""
        return self._dimension

    @property
    def local(self) -> bool:
        """True in local mode (no server)."""
        return type(getattr(self.client, "_client", None)).__name__ == "QdrantLocal"

    @classmethod
    def from_settings(cls, settings: QdrantSettings, embedder: Embedder) -> QdrantStore:
        """Open the store ``settings`` describe (the key read from ``api_key_env``)."""
        fields = settings.store_fields()  # the space card settings: VectorStore.from_config
        return cls(fields.pop("location"), fields.pop("collection"), embedder, **fields)

    def _repr_state(self) -> dict[str, Any]:
        return {} if self._dimension is None else {"dimension": self._dimension}

    def close(self) -> None:
        """Close the client this store opened (a client passed in is left open)."""
        super().close()
        if self._owns_client:
            try:
                self.client.close()
            except Exception as exc:  # closing is best effort
                logger.debug("closing the Qdrant client failed: %s", exc)

    # ------------------------------------------------------------------ the collection
    def ensure_dimension(self) -> int:
        """Create the cosine collection (recording model and dimension in its metadata) if missing, else
        check its vector size against the embedder's. DimensionMismatchError before anything is written."""
        if self._dimension is not None:
            return self._dimension
        with self._lock:
            if self._dimension is not None:
                return self._dimension
            want = self.embedder.dimension
            if not self.client.collection_exists(self.collection):
                self._create(want)
            dim = self._check_existing(want)
            self._dimension = dim
            return dim

    def _create(self, dim: int) -> None:
        models = self._qc.models
        params = models.VectorParams(size=dim, distance=models.Distance.COSINE, on_disk=self.on_disk or None)
        vectors: Any = params if self.vector_name is None else {self.vector_name: params}
        hnsw = None
        if self.hnsw_m is not None or self.hnsw_ef_construct is not None:
            hnsw = models.HnswConfigDiff(m=self.hnsw_m, ef_construct=self.hnsw_ef_construct)
        metadata: dict[str, Any] = {META_MODEL: self.embedder.model, META_DIMENSION: dim, META_PRECISION: self.precision}
        sparse_config = None
        if self.settings.keyword:
            sparse_config = {KEYWORD_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)}
            metadata[META_KEYWORD] = sparse.SCHEME
        try:
            self.client.create_collection(
                self.collection, vectors_config=vectors, hnsw_config=hnsw, sparse_vectors_config=sparse_config,
                metadata=metadata, quantization_config=self._quantization(),
            )
        except Exception:
            if not self.client.collection_exists(self.collection):
                raise
            logger.debug("create of %r raced another writer; checking it", self.collection)
            return
        logger.info("created Qdrant collection %r: size=%d cosine, model=%s", self.collection, dim, self.embedder.model)

    def _quantization(self) -> Any:
        """Qdrant's quantization for ``precision``: int8 scalar (quantile 0.99) or binary, kept in RAM with the
        float vectors as the originals that rescoring reads (Qdrant docs, "Quantization")."""
        models = self._qc.models
        if self.precision == "int8":
            return models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=0.99, always_ram=True))
        if self.precision == "binary":
            return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True))
        return None

    def _recorded_precision(self, info: Any) -> str:
        """The precision of an existing collection: its quantization config (the server's truth), else float32."""
        quant = getattr(info.config, "quantization_config", None)
        if quant is not None and getattr(quant, "scalar", None) is not None:
            return "int8"
        if quant is not None and getattr(quant, "binary", None) is not None:
            return "binary"
        return "float32"

    def _check_existing(self, want: int) -> int:
        info = self.client.get_collection(self.collection)
        self._settle_precision(self._recorded_precision(info))
        vectors = info.config.params.vectors
        if isinstance(vectors, Mapping):
            if self.vector_name is None:
                if len(vectors) != 1:
                    raise ConfigurationError(
                        f"Qdrant collection {self.collection!r} has named vectors {sorted(vectors)}; pass vector_name=..."
                    )
                self.vector_name = next(iter(vectors))
            if self.vector_name not in vectors:
                raise ConfigurationError(
                    f"Qdrant collection {self.collection!r} has no vector {self.vector_name!r} (it has {sorted(vectors)})"
                )
            params = vectors[self.vector_name]
        else:
            if self.vector_name is not None and self.vector_name != "":
                raise ConfigurationError(
                    f"Qdrant collection {self.collection!r} has one unnamed vector; drop vector_name={self.vector_name!r}"
                )
            params = vectors
        dim = int(params.size)
        metadata = getattr(info.config, "metadata", None) or {}
        self._keyword_on = KEYWORD_VECTOR in (info.config.params.sparse_vectors or {})
        scheme = metadata.get(META_KEYWORD)
        self._keyword_scheme = None if scheme is None else str(scheme)
        if dim != want:
            model = metadata.get(META_MODEL)
            detail = f"created with model {model!r}; " if model else ""
            raise DimensionMismatchError(dim, want, self.collection, f"{detail}this embedder is {self.embedder.model!r}")
        distance = getattr(params.distance, "value", str(params.distance))
        if str(distance).lower() != "cosine":
            raise ConfigurationError(
                f"Qdrant collection {self.collection!r} uses distance {distance}; this store needs Cosine"
            )
        return dim

    # ------------------------------------------------------------------ space card
    def _read_card(self) -> str | None:
        """The space card kept in the collection's metadata, or None."""
        if not self.client.collection_exists(self.collection):
            return None
        metadata = getattr(self.client.get_collection(self.collection).config, "metadata", None) or {}
        card = metadata.get(META_CARD)
        return None if card is None else str(card)

    def _write_card(self, card: str) -> None:
        """Keep the space card in the collection's metadata (never as a point of the collection)."""
        self.ensure_dimension()
        self.client.update_collection(self.collection, metadata={META_CARD: card})

    async def _aread_card(self) -> str | None:
        return await asyncio.to_thread(self._read_card)

    async def _awrite_card(self, card: str) -> None:
        await asyncio.to_thread(self._write_card, card)

    # ------------------------------------------------------------------ writes
    def _points(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> list[Any]:
        matrix = as_float32_matrix(vectors, dim=self._dimension, where=f"vectors for {self.collection!r}")
        models = self._qc.models
        points = []
        for i, x in enumerate(ids):
            row = matrix[i].tolist()  # plain floats: the JSON the REST API takes
            vector: Any = row if self.vector_name is None else {self.vector_name: row}
            if self._keyword_on:
                indices, values = sparse.document_vector(texts[i])
                # "" names the unnamed dense vector beside the named sparse one
                vector = {self.vector_name or "": row, KEYWORD_VECTOR: models.SparseVector(indices=indices, values=values)}
            points.append(models.PointStruct(
                id=point_id(x), vector=vector, payload={"id": x, "text": texts[i], "metadata": metadatas[i]}
            ))
        return points

    def _chunks(self, points: list[Any], texts: list[str], metadatas: list[dict[str, Any]]) -> list[list[Any]]:
        """Cut the points into requests of at most MAX_REQUEST_BYTES of JSON (estimated)."""
        chunks: list[list[Any]] = [[]]
        size = 0
        per_vector = 20 * (self._dimension or 1)  # "-0.012345678," per float, generously
        for p, t, m in zip(points, texts, metadatas, strict=True):
            n = per_vector + 2 * len(t.encode()) + len(json.dumps(m)) + 200
            if isinstance(p.vector, dict) and KEYWORD_VECTOR in p.vector:
                n += 32 * len(p.vector[KEYWORD_VECTOR].indices)  # "4294967295," + "0.123456789," per term
            if chunks[-1] and size + n > MAX_REQUEST_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append(p)
            size += n
        return chunks

    def _write(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        points = self._points(ids, vectors, texts, metadatas)
        for chunk in self._chunks(points, texts, metadatas):
            self.client.upsert(self.collection, points=chunk, wait=True)

    async def _awrite(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        aclient = self._async_client()
        if aclient is None:
            await super()._awrite(ids, vectors, texts, metadatas)
            return
        points = self._points(ids, vectors, texts, metadatas)
        for chunk in self._chunks(points, texts, metadatas):
            await aclient.upsert(self.collection, points=chunk, wait=True)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the collection holds (for resumable ingestion)."""
        id_list = check_ids(ids)
        if not id_list or not self.client.collection_exists(self.collection):
            return set()
        found: set[str] = set()
        for start in range(0, len(id_list), 1000):
            chunk = id_list[start : start + 1000]
            records = self.client.retrieve(
                self.collection, ids=[point_id(x) for x in chunk], with_payload=["id"], with_vectors=False
            )
            found.update(str((r.payload or {}).get("id")) for r in records)
        return found & set(id_list)

    # ------------------------------------------------------------------ search
    def _index_filter_keys(self, filter: Any) -> None:
        """A keyword/integer/bool payload index for each filter key, once, on a server (local mode has
        none and needs none)."""
        if self.local or not isinstance(filter, Mapping):
            return
        models = self._qc.models
        for key, want in filter.items():
            if key in self._indexed:
                continue
            values = filter_values(key, want)
            if all(isinstance(v, bool) for v in values):
                schema = models.PayloadSchemaType.BOOL
            elif all(isinstance(v, int) for v in values):
                schema = models.PayloadSchemaType.INTEGER
            elif all(isinstance(v, str) for v in values):
                schema = models.PayloadSchemaType.KEYWORD
            else:
                continue
            try:
                self.client.create_payload_index(self.collection, f"metadata.{key}", field_schema=schema, wait=True)
            except Exception as exc:  # another type already indexed: filtering still works
                logger.debug("payload index for %r not created: %s", key, exc)
            self._indexed.add(key)

    def _query_args(self, vector: np.ndarray, top_k: int, filter: Any) -> dict[str, Any]:
        q = as_float32_matrix(vector, dim=self._dimension, where=f"query for {self.collection!r}")[0].tolist()
        params = None if self.ef_search is None else self._qc.models.SearchParams(hnsw_ef=self.ef_search)
        if self.precision != "float32":
            # Fetch rescore x top_k by the quantized vectors, re-score them with the float originals.
            quant = self._qc.models.QuantizationSearchParams(rescore=True, oversampling=float(self.rescore))
            params = self._qc.models.SearchParams(hnsw_ef=self.ef_search, quantization=quant)
        return {
            "collection_name": self.collection, "query": q, "using": self.vector_name, "limit": top_k,
            "query_filter": qdrant_filter(filter), "with_payload": True, "search_params": params,
        }

    @staticmethod
    def _hits(points: Any) -> list[Hit]:
        hits = []
        for p in points:
            payload = p.payload or {}
            hits.append(Hit(id=str(payload.get("id", p.id)), score=float(p.score), text=payload.get("text"),
                            metadata=dict(payload.get("metadata") or {})))
        return hits

    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        self.ensure_dimension()
        self._index_filter_keys(filter)
        return self._hits(self.client.query_points(**self._query_args(vector, top_k, filter)).points)

    async def _asearch_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        aclient = self._async_client()
        if aclient is None:
            return await super()._asearch_vector(vector, top_k, filter)
        if self._dimension is None:
            await asyncio.to_thread(self.ensure_dimension)
        await asyncio.to_thread(self._index_filter_keys, filter)
        res = await aclient.query_points(**self._query_args(vector, top_k, filter))
        return self._hits(res.points)

    # ------------------------------------------------------------------ keyword search
    def _keyword_args(self, query: str, top_k: int, filter: Any) -> dict[str, Any] | None:
        """The query_points arguments of a keyword search, or None when nothing can match (no collection
        yet, or a query without keyword terms). ConfigurationError for a collection without the sparse
        vector or with terms made another way."""
        if self._dimension is None:
            if not self.client.collection_exists(self.collection):
                return None
            self.ensure_dimension()
        if not self._keyword_on:
            raise ConfigurationError(
                f"Qdrant collection {self.collection!r} has no sparse vector {KEYWORD_VECTOR!r} (it was created "
                "before keyword search existed here, by another tool, or with keyword=False), so mode 'keyword' "
                "and 'hybrid' cannot run on it. Qdrant adds no named vector to an existing collection: ingest "
                "into a new collection (keyword=True, the default) to search it by keyword"
            )
        if self._keyword_scheme is not None and self._keyword_scheme != sparse.SCHEME:
            raise ConfigurationError(
                f"Qdrant collection {self.collection!r} holds keyword terms made as {self._keyword_scheme!r}; this "
                f"version makes them as {sparse.SCHEME!r}: re-ingest into a new collection"
            )
        indices, values = sparse.query_vector(query)
        if not indices:
            return None
        return {
            "collection_name": self.collection, "using": KEYWORD_VECTOR, "limit": top_k, "with_payload": True,
            "query": self._qc.models.SparseVector(indices=indices, values=values), "query_filter": qdrant_filter(filter),
        }

    @staticmethod
    def _keyword_hits(points: Any) -> list[Hit]:
        hits = QdrantStore._hits(points)
        for h in hits:
            h.keyword_score = h.score
        return hits

    def _search_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        args = self._keyword_args(query, top_k, filter)
        if args is None:
            return []
        self._index_filter_keys(filter)
        return self._keyword_hits(self.client.query_points(**args).points)

    async def _asearch_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        aclient = self._async_client()
        if aclient is None:
            return await super()._asearch_keyword(query, top_k, filter)
        args = await asyncio.to_thread(self._keyword_args, query, top_k, filter)
        if args is None:
            return []
        await asyncio.to_thread(self._index_filter_keys, filter)
        return self._keyword_hits((await aclient.query_points(**args)).points)

    def _async_client(self) -> Any | None:
        """The running loop's AsyncQdrantClient on a server URL, or None (local mode: worker threads)."""
        if self._url is None:
            return None
        return self._aclients.get(lambda: self._qc.AsyncQdrantClient(
            url=self._url, api_key=self._api_key, timeout=self._timeout, prefer_grpc=self._prefer_grpc
        ))

    # ------------------------------------------------------------------ count / delete
    def count(self) -> int:
        """How many points the collection holds (0 when it does not exist yet)."""
        if not self.client.collection_exists(self.collection):
            return 0
        return int(self.client.count(self.collection, exact=True).count)

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id; missing ids are ignored."""
        id_list = check_ids(ids)
        if not id_list or not self.client.collection_exists(self.collection):
            return
        self.client.delete(
            self.collection, points_selector=self._qc.models.PointIdsList(points=[point_id(x) for x in id_list]), wait=True
        )

    def drop(self) -> None:
        """Delete the collection (all its data). The next write creates it again."""
        self.client.delete_collection(self.collection)
        self._dimension = None
        self._indexed.clear()


__all__ = [
    "ID_NAMESPACE",
    "KEYWORD_VECTOR",
    "MAX_REQUEST_BYTES",
    "META_CARD",
    "META_PRECISION",
    "META_DIMENSION",
    "META_KEYWORD",
    "META_MODEL",
    "QdrantSettings",
    "QdrantStore",
    "point_id",
    "qdrant_filter",
]
