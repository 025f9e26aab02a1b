"""Pinecone: a ``VectorStore`` over a Pinecone index handle (sync ``Index`` or asyncio ``AsyncIndex``).

Built for the ``pinecone`` package 10.x (``pip install "qwen-embed-adapters[pinecone]"``; the old
``pinecone-client`` package is a stub that raises on import).

    from pinecone import Pinecone
    from qwen_embed_adapters import RemoteEmbedder
    from qwen_embed_adapters.adapters.pinecone import PineconeStore

    pc = Pinecone(api_key=os.environ["PINECONE_API_KEY"])
    store = PineconeStore.create(pc, "docs", RemoteEmbedder("http://localhost:30000/v1"))
    store.add_texts(["Pinecone stores vectors.", "Milvus does too."])
    store.search("which database stores vectors?", top_k=3)

What this adapter does that hand-written glue usually gets wrong:

- the index is created with the embedder's dimension; an existing index's dimension is read back
  and a different one raises ``DimensionMismatchError`` before anything is written;
- vectors go out as lists of Python floats (the float32 values, never numpy objects) and the text is
  kept in metadata under ``text``;
- upserts are cut to at most 1,000 vectors and 2 MB per request, measured with the same JSON
  encoder the SDK uses; metadata over 40 KB for one vector raises ``InvalidInputError`` naming the id
  before anything is sent;
- every upsert answer is checked (``upserted_count``); a failed request raises ``WriteError`` with
  the ids that were written and those that were not (the SDK's own ``batch_size=`` path reports
  failed batches without raising, so it is not used).

Keyword search (``search(..., mode="keyword" | "hybrid")``) uses Pinecone's sparse-dense records, which
Pinecone queries only on indexes with the ``dotproduct`` metric ("Only indexes using the dotproduct distance
metric support querying sparse-dense vectors", https://docs.pinecone.io/reference/known-limitations). So it is
opt-in: ``PineconeStore.create(pc, name, embedder, metric="dotproduct", keyword=True)``. Dense scores are
unchanged on such an index (the embedder's vectors are unit length, so the dot product is the cosine). Each
record then carries ``sparse_values``: the BM25 term-frequency weights of its text's ``retrieval.tokenize``
terms (``adapters/sparse.py``; at most 1,000, Pinecone's limit of non-zero sparse values,
https://docs.pinecone.io/docs/limits). A keyword query sends the query's terms as ``sparse_vector`` with an
all-zero dense ``vector``: Pinecone's convex combination ``alpha * dense + (1 - alpha) * sparse`` at
``alpha = 0`` (https://docs.pinecone.io/guides/search/hybrid-search), so the score is the sparse dot product;
records sharing no term (score 0) are dropped. There is no inverse document frequency: a vector index keeps
no corpus statistics, so a common term weighs as much as a rare one (Qdrant's and Milvus's keyword sides
have it). Hybrid search fuses this with the dense query by reciprocal rank, as on every store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..embedder import Embedder
from ..errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
    WriteError,
)
from ..settings import check_bool, check_choice, check_int, check_str
from ..vectors import to_list
from . import sparse
from .base import Hit, StoreSettings, VectorStore, check_ids, secret_from_env

logger = logging.getLogger(__name__)

#: The reserved namespace holding each namespace's space card (qwen_embed_adapters.space).
SPACE_CARD_NAMESPACE = "__qwen_embed_space__"

#: Pinecone's documented limits (https://docs.pinecone.io/reference/api/database-limits).
MAX_UPSERT_VECTORS = 1000
#: 2 MB per upsert request; counted in decimal megabytes to stay on the safe side of either reading.
MAX_REQUEST_BYTES = 2_000_000
MAX_METADATA_BYTES = 40 * 1024
MAX_DIMENSION = 20_000
MAX_IDS_PER_REQUEST = 1000
#: ids per fetch request in ``existing_ids`` (ids travel in the URL, so keep it short)
FETCH_BATCH = 100
METRICS = ("cosine", "euclidean", "dotproduct")
#: Pinecone's limit of non-zero values in one sparse vector (https://docs.pinecone.io/docs/limits)
MAX_SPARSE_VALUES = 1000
DEFAULT_NAMESPACE_NAMES = ("", "__default__")
_ID_MAX_LEN = 512


def _require_pinecone(feature: str = "PineconeStore") -> Any:
    try:
        import pinecone
    except ImportError:
        raise MissingDependencyError("pinecone", "pinecone", feature) from None
    return pinecone


def _is_async_index(index: Any) -> bool:
    return inspect.iscoroutinefunction(getattr(index, "upsert", None))


def _json_size(obj: Any) -> int:
    """Bytes of ``obj`` as the SDK sends it (orjson), never less than the stdlib's compact form."""
    std = len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    try:
        import orjson
    except ImportError:  # the SDK depends on orjson; without it keep a margin
        return int(std * 1.1) + 16
    return max(std, len(orjson.dumps(obj)))


def _tag_value(text: str) -> str:
    # Pinecone tag values: at most 120 printable ASCII characters.
    return "".join(c for c in text if c.isascii() and c.isprintable())[:120]


def index_dimension(index: Any) -> int | None:
    """An index's dimension from ``describe_index_stats`` (None when it reports none). Used for indexes
    other tools opened, through ``adapters.spec.store_dimension("pinecone", index)``."""
    stats = index.describe_index_stats()
    dim = stats.get("dimension") if isinstance(stats, dict) else getattr(stats, "dimension", None)
    return int(dim) if dim else None


def _keyword_metric_message(name: str, metric: str | None) -> str:
    return (
        f"Pinecone index {name!r} uses metric {metric!r}; keyword search needs sparse-dense records, which Pinecone "
        "queries only on dotproduct indexes (https://docs.pinecone.io/reference/known-limitations): create one "
        "with PineconeStore.create(pc, name, embedder, metric='dotproduct', keyword=True) and ingest into it"
    )


_NO_KEYWORD_NOTE = (
    "it was opened without keyword=True, so its records carry no sparse values; Pinecone queries sparse values "
    "only on dotproduct indexes (https://docs.pinecone.io/reference/known-limitations): create one with "
    "PineconeStore.create(pc, name, embedder, metric='dotproduct', keyword=True) and ingest into it"
)


#: where the Pinecone SDK sends control-plane calls unless told otherwise
DEFAULT_CONTROLLER_HOST = "https://api.pinecone.io"


@dataclasses.dataclass(frozen=True)
class PineconeSettings(StoreSettings):
    """Everything that opens a ``PineconeStore`` again (``{"store": "pinecone", **fields}`` is its spec):
    by index ``host``, or by ``index`` name through the control plane (created with the embedder's
    dimension, ``metric``, ``cloud`` and ``region`` if missing). The key is not a setting: ``api_key_env``
    names the variable holding it."""

    host: str | None = None
    index: str | None = None
    namespace: str = ""
    api_key_env: str = "PINECONE_API_KEY"
    controller_host: str | None = None
    cloud: str = "aws"
    region: str = "us-east-1"
    metric: str | None = None
    max_batch_vectors: int = MAX_UPSERT_VECTORS
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_metadata_bytes: int = MAX_METADATA_BYTES
    keyword: bool = False

    def validate(self) -> None:
        for name in ("host", "index", "controller_host"):
            check_str(name, getattr(self, name), optional=True)
        check_str("namespace", self.namespace, empty=True)
        check_str("api_key_env", self.api_key_env)
        check_str("cloud", self.cloud)
        check_str("region", self.region)
        check_choice("metric", self.metric, METRICS, optional=True)
        check_int("max_batch_vectors", self.max_batch_vectors, minimum=1, maximum=MAX_UPSERT_VECTORS)
        check_int("max_request_bytes", self.max_request_bytes, minimum=1, maximum=MAX_REQUEST_BYTES)
        check_int("max_metadata_bytes", self.max_metadata_bytes, minimum=1, maximum=MAX_METADATA_BYTES)
        check_bool("keyword", self.keyword)
        if self.keyword and self.metric not in (None, "dotproduct"):
            raise ConfigurationError(_keyword_metric_message(self.index or self.host or "pinecone index", self.metric))

    def missing_location(self) -> str | None:
        return None if self.host or self.index else "needs 'host' or 'index'"


class PineconeStore(VectorStore):
    """Texts in a Pinecone index: ``add_texts``, ``search``, ``count``, ``delete`` and async twins.

    Args:
        index: a data-plane handle, ``pc.Index(host=...)`` (sync) or ``await apc.index(host=...)`` /
            ``pc.IndexAsyncio(host=...)`` (asyncio). Over an asyncio handle use the ``a*`` methods.
        embedder: the Embedder whose vectors the index holds.
        namespace: the Pinecone namespace every call uses ("" is the default namespace).
        name: the index name, used in errors (defaults to the handle's host).
        dimension: the index dimension when known; otherwise it is read once from
            ``describe_index_stats`` before the first write or query.
        metric: the index metric when known (informational; scores are Pinecone's).
        max_batch_vectors, max_request_bytes, max_metadata_bytes: Pinecone's limits; lower them
            only to send smaller requests.
        api_key_env: the variable that holds the key, recorded in ``to_config()`` (never the key).
        keyword: write sparse values and allow keyword/hybrid search; the index must use the dotproduct
            metric (see the module docstring). Off by default: the default cosine index cannot.

    >>> store = PineconeStore(pc.Index(host=host), FakeEmbedder(dimensions=64), namespace="docs")  # doctest: +SKIP
    >>> store.add_texts(["a text"], metadatas=[{"source": "a.md"}])  # doctest: +SKIP
    """

    text_key = "text"
    keyword_support: ClassVar[str] = "native"
    keyword_note: ClassVar[str] = (
        "native on a dotproduct index opened with keyword=True: sparse-dense records of BM25 term-frequency "
        "weights (no IDF: a Pinecone vector index keeps no corpus statistics); the default cosine index refuses, "
        "since Pinecone queries sparse values only on dotproduct indexes"
    )
    settings_class: ClassVar[type[PineconeSettings]] = PineconeSettings
    precision_note: ClassVar[str] = (
        "a Pinecone index stores the float32 values it is sent and offers no quantization setting to its "
        "clients (docs.pinecone.io, 'Create an index': dimension, metric, spec, vector_type)"
    )
    kind: ClassVar[str] = "pinecone"
    settings: PineconeSettings

    def __init__(
        self,
        index: Any,
        embedder: Embedder,
        *,
        namespace: str = "",
        name: str | None = None,
        dimension: int | None = None,
        metric: str | None = None,
        max_batch_vectors: int = MAX_UPSERT_VECTORS,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_metadata_bytes: int = MAX_METADATA_BYTES,
        api_key_env: str = "PINECONE_API_KEY",
        precision: str | None = None,
        rescore: int = 4,
        keyword: bool = False,
    ) -> None:
        super().__init__(embedder)
        host = getattr(index, "host", None)
        self.settings = PineconeSettings(
            host=host if isinstance(host, str) and host else None, index=name, namespace=namespace,
            api_key_env=api_key_env, metric=metric, max_batch_vectors=max_batch_vectors,
            max_request_bytes=max_request_bytes, max_metadata_bytes=max_metadata_bytes, keyword=keyword,
            precision=precision, rescore=rescore,
        )
        if index is None or not hasattr(index, "upsert") or not hasattr(index, "query"):
            raise ConfigurationError(
                f"index must be a Pinecone index handle (pc.Index(host=...)), got {type(index).__name__}"
            )
        self.index = index
        self.namespace = namespace
        self.is_async = _is_async_index(index)
        self._name = name or str(getattr(index, "host", "") or "pinecone index")
        self._check_precision()
        self._dimension = dimension
        self.metric = metric
        self._checked = False
        self.max_batch_vectors = max_batch_vectors
        self.max_request_bytes = max_request_bytes
        self.max_metadata_bytes = max_metadata_bytes
        self.keyword = keyword
        if not keyword:
            # this store has no keyword side: search() refuses keyword/hybrid before any request, saying why
            self.__dict__["keyword_support"] = "none"
            self.__dict__["keyword_note"] = _NO_KEYWORD_NOTE
        self._owns_index = False

    def _repr_state(self) -> dict[str, Any]:
        return {"dimension": self._dimension, "is_async": self.is_async}

    @classmethod
    def from_settings(cls, settings: PineconeSettings, embedder: Embedder) -> PineconeStore:
        """Open the store ``settings`` describe: the index at ``host``, else the index named ``index``
        through the control plane (created if missing). The key comes from ``$api_key_env``."""
        pinecone = _require_pinecone("PineconeStore.from_config")
        key = secret_from_env(settings.api_key_env, "the pinecone store")
        limits: dict[str, Any] = {"max_batch_vectors": settings.max_batch_vectors, "max_request_bytes": settings.max_request_bytes,
                  "max_metadata_bytes": settings.max_metadata_bytes, "api_key_env": settings.api_key_env,
                  "keyword": settings.keyword}
        if settings.host:
            store = cls(pinecone.Pinecone(api_key=key).Index(host=settings.host), embedder,
                        namespace=settings.namespace, name=settings.index, metric=settings.metric, **limits)
        else:
            assert settings.index is not None  # from_config checked the location
            pc = pinecone.Pinecone(api_key=key, **({"host": settings.controller_host} if settings.controller_host else {}))
            metric = settings.metric or ("dotproduct" if settings.keyword else "cosine")
            store = cls.create(pc, settings.index, embedder, metric=metric, cloud=settings.cloud,
                               region=settings.region, namespace=settings.namespace, **limits)
        store.settings = settings  # as asked (create() learns the host, which the config need not name)
        store._check_precision()
        return store

    @property
    def name(self) -> str:
        """The index name (or host when the store was built from a bare handle)."""
        return self._name

    @property
    def dimension(self) -> int | None:
        """The index dimension, once known."""
        return self._dimension

    # ---------------------------------------------------------------- creation
    @classmethod
    def create(
        cls,
        pc: Any,
        name: str,
        embedder: Embedder,
        *,
        metric: str = "cosine",
        cloud: str = "aws",
        region: str = "us-east-1",
        namespace: str = "",
        timeout: int | None = None,
        **store_kwargs: Any,
    ) -> PineconeStore:
        """Open the serverless index ``name``, creating it with the embedder's dimension if missing.

        An existing index's dimension and metric are read back: another dimension raises
        ``DimensionMismatchError`` (both numbers and the index name), another metric raises
        ``ConfigurationError``; nothing is written in either case. A new index records the
        embedding model and dimension in its tags. ``timeout`` is the SDK's wait for readiness
        (None waits). ``pc`` is a ``pinecone.Pinecone`` client; for ``AsyncPinecone`` use ``acreate``.
        """
        _require_pinecone("PineconeStore.create")
        if inspect.iscoroutinefunction(getattr(pc, "describe_index", None)):
            raise ConfigurationError("pc is an asyncio client: use `await PineconeStore.acreate(pc, ...)`")
        dim = cls._check_create_args(name, embedder, metric, store_kwargs)
        if pc.has_index(name):
            desc = pc.describe_index(name)
        else:
            try:
                desc = pc.create_index(**cls._create_body(name, embedder, dim, metric, cloud, region, timeout))
            except Exception as exc:
                if getattr(exc, "status_code", None) != 409:  # created meanwhile by someone else
                    raise
                desc = pc.describe_index(name)
        cls._check_existing(desc, name, embedder, dim, metric)
        store = cls._opened(pc.Index(host=desc.host), embedder, name, dim, metric, namespace, store_kwargs)
        return store._record_control_plane(pc, cloud, region)

    @classmethod
    async def acreate(
        cls,
        pc: Any,
        name: str,
        embedder: Embedder,
        *,
        metric: str = "cosine",
        cloud: str = "aws",
        region: str = "us-east-1",
        namespace: str = "",
        timeout: int | None = None,
        **store_kwargs: Any,
    ) -> PineconeStore:
        """Async twin of ``create`` on ``pinecone.AsyncPinecone``; the store uses the asyncio index.

        Close it with ``await store.aclose()`` (the asyncio index holds its own connections).
        """
        _require_pinecone("PineconeStore.acreate")
        if not inspect.iscoroutinefunction(getattr(pc, "describe_index", None)):
            raise ConfigurationError("pc is not an asyncio client: use PineconeStore.create(pc, ...)")
        dim = cls._check_create_args(name, embedder, metric, store_kwargs)
        if await pc.has_index(name):
            desc = await pc.describe_index(name)
        else:
            try:
                desc = await pc.create_index(**cls._create_body(name, embedder, dim, metric, cloud, region, timeout))
            except Exception as exc:
                if getattr(exc, "status_code", None) != 409:
                    raise
                desc = await pc.describe_index(name)
        cls._check_existing(desc, name, embedder, dim, metric)
        store = cls._opened(await pc.index(host=desc.host), embedder, name, dim, metric, namespace, store_kwargs)
        return store._record_control_plane(pc, cloud, region)

    @classmethod
    def _create_body(
        cls, name: str, embedder: Embedder, dim: int, metric: str, cloud: str, region: str, timeout: int | None
    ) -> dict[str, Any]:
        logger.info("creating Pinecone index %r (%d-d, %s, %s/%s)", name, dim, metric, cloud, region)
        return {
            "name": name,
            "dimension": dim,
            "metric": metric,
            "spec": {"serverless": {"cloud": cloud, "region": region}},
            "tags": cls._tags(embedder, dim),
            "timeout": timeout,
        }

    @classmethod
    def _opened(
        cls, index: Any, embedder: Embedder, name: str, dim: int, metric: str, namespace: str,
        store_kwargs: dict[str, Any],
    ) -> PineconeStore:
        store = cls(index, embedder, namespace=namespace, name=name, dimension=dim, metric=metric, **store_kwargs)
        store._owns_index = True
        store._checked = True
        return store

    def _record_control_plane(self, pc: Any, cloud: str, region: str) -> PineconeStore:
        """After ``create``: open by name again (not by host) through the same control plane."""
        controller = getattr(getattr(pc, "config", None), "host", None)
        self.settings = self.settings.replace(
            host=None, cloud=cloud, region=region,
            controller_host=controller if isinstance(controller, str) and controller != DEFAULT_CONTROLLER_HOST else None,
        )
        return self

    @staticmethod
    def _check_create_args(name: str, embedder: Embedder, metric: str, store_kwargs: Mapping[str, Any]) -> int:
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?", name):
            raise ConfigurationError(
                f"Pinecone index names are 1-45 lowercase letters, digits or '-', got {name!r}"
            )
        check_choice("metric", metric, METRICS)
        if store_kwargs.get("keyword") and metric != "dotproduct":
            raise ConfigurationError(_keyword_metric_message(name, metric))
        dim = embedder.dimension
        if not 1 <= dim <= MAX_DIMENSION:
            raise ConfigurationError(f"Pinecone dense indexes take 1..{MAX_DIMENSION} dimensions, got {dim}")
        return dim

    @staticmethod
    def _tags(embedder: Embedder, dim: int) -> dict[str, str]:
        return {"embedding_model": _tag_value(embedder.model) or "unknown", "embedding_dim": str(dim)}

    @staticmethod
    def _check_existing(desc: Any, name: str, embedder: Embedder, dim: int, metric: str) -> None:
        try:
            index_dim, index_metric = desc.dimension, str(desc.metric).lower()
        except AttributeError as exc:  # a schema-based (document) index has no single vector field
            raise ConfigurationError(
                f"Pinecone index {name!r} is not a dense vector index with one vector field: {exc}"
            ) from None
        if index_dim is not None and int(index_dim) != dim:
            raise DimensionMismatchError(
                int(index_dim), dim, name,
                f"embedder {embedder.model!r} makes {dim}-d vectors; use another index or dimensions={index_dim}",
            )
        if index_metric != metric:
            raise ConfigurationError(
                f"Pinecone index {name!r} uses metric {index_metric!r}, not {metric!r}: "
                f"pass metric={index_metric!r} or use another index"
            )
        tags = getattr(desc, "tags", None) or {}
        recorded = tags.get("embedding_model") if isinstance(tags, Mapping) else None
        if recorded and recorded != _tag_value(embedder.model):
            logger.warning(
                "Pinecone index %r was created for embedding model %r; writing/querying with %r. "
                "Vectors of different models are not comparable even at the same dimension.",
                name, recorded, embedder.model,
            )

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close the index handle if this store opened it (``create``)."""
        super().close()
        if self._owns_index and not self.is_async and hasattr(self.index, "close"):
            self.index.close()

    async def aclose(self) -> None:
        """Async twin of ``close`` (closes an asyncio index opened by ``acreate``)."""
        if self._owns_index and hasattr(self.index, "close"):
            result = self.index.close()
            if inspect.isawaitable(result):
                await result
        super().close()

    # ---------------------------------------------------------------- dimension
    def _sync_only(self, what: str) -> None:
        if self.is_async:
            raise ConfigurationError(
                f"{what}() on a PineconeStore over an asyncio index: use the async methods "
                "(aadd_texts, asearch, acount, adelete, aensure_dimension)"
            )

    def _compare_dimension(self, index_dim: int | None) -> int:
        dim = self.embedder.dimension
        if index_dim is not None:
            self._dimension = int(index_dim)
            if self._dimension != dim:
                raise DimensionMismatchError(
                    self._dimension, dim, self._name, f"embedder {self.embedder.model!r} makes {dim}-d vectors"
                )
        else:
            self._dimension = dim
        self._checked = True
        return dim

    def ensure_dimension(self) -> int:
        """Check the index dimension (read once from ``describe_index_stats`` unless known) against
        the embedder's; raises ``DimensionMismatchError`` before anything is written."""
        self._sync_only("ensure_dimension")
        if self._checked:
            return self._compare_dimension(self._dimension)
        if self._dimension is None:
            return self._compare_dimension(self.index.describe_index_stats().dimension)
        return self._compare_dimension(self._dimension)

    async def aensure_dimension(self) -> int:
        """Async twin of ``ensure_dimension``."""
        if not self.is_async:
            return await asyncio.to_thread(self.ensure_dimension)
        if self._dimension is None and not self._checked:
            stats = await self.index.describe_index_stats()
            return self._compare_dimension(stats.dimension)
        return self._compare_dimension(self._dimension)

    # ---------------------------------------------------------------- the space card
    # The card lives in a reserved namespace, one record per user namespace, so user queries, counts and
    # deletes (all namespace-scoped) never see it. Its values are a unit vector (Pinecone refuses all-zero
    # dense vectors); the card is its metadata (about 6 KB; Pinecone allows 40 KB per record).
    def _card_id(self) -> str:
        return f"card:{self.namespace or '__default__'}"

    def _card_record(self, card: str) -> dict[str, Any]:
        dim = self._dimension or self.embedder.dimension
        return {"id": self._card_id(), "values": [1.0] + [0.0] * (dim - 1), "metadata": {"card": card}}

    def _card_from(self, response: Any) -> str | None:
        vectors = getattr(response, "vectors", None)
        if vectors is None and isinstance(response, Mapping):
            vectors = response.get("vectors")
        record = (vectors or {}).get(self._card_id())
        meta = getattr(record, "metadata", None) if record is not None else None
        if meta is None and isinstance(record, Mapping):
            meta = record.get("metadata")
        card = (meta or {}).get("card")
        return card if isinstance(card, str) and card else None

    def _read_card(self) -> str | None:
        if not hasattr(self.index, "fetch"):
            return None  # an index object without fetch (a test double): the card lives in memory
        return self._card_from(self.index.fetch(ids=[self._card_id()], namespace=SPACE_CARD_NAMESPACE))

    def _write_card(self, card: str) -> None:
        super()._write_card(card)
        if hasattr(self.index, "fetch"):
            self.index.upsert(vectors=[self._card_record(card)], namespace=SPACE_CARD_NAMESPACE)

    async def _aread_card(self) -> str | None:
        if not self.is_async:
            return await asyncio.to_thread(self._read_card)
        if not hasattr(self.index, "fetch"):
            return None
        return self._card_from(await self.index.fetch(ids=[self._card_id()], namespace=SPACE_CARD_NAMESPACE))

    async def _awrite_card(self, card: str) -> None:
        if not self.is_async:
            return await asyncio.to_thread(self._write_card, card)
        self._memory_card = card
        if hasattr(self.index, "fetch"):
            await self.index.upsert(vectors=[self._card_record(card)], namespace=SPACE_CARD_NAMESPACE)

    # ---------------------------------------------------------------- validation and requests
    def _full_metadata(self, text: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        # numpy scalars (np.float64 passes as a float) become Python values: orjson refuses them.
        plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in metadata.items()}
        return {**plain, self.text_key: text}

    def _validate_batch(self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        """Pinecone's rules, checked for every record before the first request is sent: ids of 1-512
        ASCII characters, metadata values that are str/number/bool/list of str, no user key
        ``text``, and at most ``max_metadata_bytes`` of metadata (with the text) per vector."""
        for i, (vid, text, meta) in enumerate(zip(ids, texts, metadatas, strict=True)):
            if len(vid) > _ID_MAX_LEN or not vid.isascii() or "\x00" in vid:
                raise InvalidInputError(
                    f"ids[{i}] {vid[:80]!r}: Pinecone ids are 1-{_ID_MAX_LEN} ASCII characters without NUL",
                    index=i, item_id=vid,
                )
            if self.text_key in meta:
                raise InvalidInputError(
                    f"metadatas[{i}] (id {vid!r}) has the key {self.text_key!r}, which holds the text itself",
                    index=i, item_id=vid,
                )
            for key, value in meta.items():
                ok = (isinstance(value, (str, bool, int, float)) and value is not None) or (
                    isinstance(value, list) and all(isinstance(x, str) for x in value)
                )
                if not ok:
                    raise InvalidInputError(
                        f"metadatas[{i}] (id {vid!r}) key {key!r}: Pinecone metadata values are strings, "
                        f"numbers, booleans or lists of strings, got {type(value).__name__}",
                        index=i, item_id=vid,
                    )
            size = _json_size(self._full_metadata(text, meta))
            if size > self.max_metadata_bytes:
                raise InvalidInputError(
                    f"metadata of id {vid!r} (texts[{i}], with its text under {self.text_key!r}) is {size} "
                    f"bytes; Pinecone takes at most {self.max_metadata_bytes} bytes of metadata per vector. "
                    "Split the text into smaller chunks.",
                    index=i, item_id=vid,
                )

    def _records(
        self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        mat = np.asarray(vectors, dtype=np.float32)
        if mat.ndim != 2 or mat.shape[0] != len(ids):
            raise InvalidInputError(f"expected {len(ids)} vectors, got shape {mat.shape}")
        if self._dimension is not None and mat.shape[1] != self._dimension:
            raise DimensionMismatchError(self._dimension, mat.shape[1], self._name)
        rows: list[list[float]] = mat.tolist()  # Python floats, the exact float32 values
        records = [
            {"id": vid, "values": row, "metadata": self._full_metadata(text, meta)}
            for vid, row, text, meta in zip(ids, rows, texts, metadatas, strict=True)
        ]
        if self.keyword:
            for rec, text in zip(records, texts, strict=True):
                indices, values = sparse.document_vector(text, max_terms=MAX_SPARSE_VALUES)
                if indices:  # a text without keyword terms is a dense-only record
                    rec["sparse_values"] = {"indices": indices, "values": values}
        return records

    def plan_requests(self, records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Cut upsert records into requests of at most ``max_batch_vectors`` vectors and
        ``max_request_bytes`` bytes of JSON body (as the SDK encodes it)."""
        envelope = _json_size({"vectors": [], "namespace": self.namespace})
        chunks: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        size = envelope
        for rec in records:
            rec_size = _json_size(rec) + 1  # the comma between records
            if envelope + rec_size > self.max_request_bytes:
                raise InvalidInputError(
                    f"record {rec['id']!r} alone is {rec_size} bytes, over the "
                    f"{self.max_request_bytes}-byte request limit",
                    item_id=rec["id"],
                )
            if current and (len(current) >= self.max_batch_vectors or size + rec_size > self.max_request_bytes):
                chunks.append(current)
                current, size = [], envelope
            current.append(rec)
            size += rec_size
        if current:
            chunks.append(current)
        return chunks

    def _upsert_kwargs(self, chunk: list[dict[str, Any]]) -> dict[str, Any]:
        return {"vectors": chunk, "namespace": self.namespace}

    def _chunk_failed(
        self, exc: BaseException, chunks: list[list[dict[str, Any]]], k: int
    ) -> WriteError:
        written = [r["id"] for c in chunks[:k] for r in c]
        failed = [r["id"] for c in chunks[k:] for r in c]
        return WriteError(
            f"Pinecone index {self._name!r} (namespace {self.namespace!r}): upsert request {k + 1}/"
            f"{len(chunks)} failed, {len(failed)} records not written: {exc}",
            failed_ids=failed, written_ids=written, cause=exc,
        )

    def _check_upserted(self, response: Any, chunk: list[dict[str, Any]]) -> None:
        count = getattr(response, "upserted_count", None)
        if count != len(chunk):
            raise RuntimeError(f"Pinecone acknowledged {count} of {len(chunk)} vectors in one upsert request")

    def _write(
        self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        self._sync_only("add_texts")
        chunks = self.plan_requests(self._records(ids, vectors, texts, metadatas))
        for k, chunk in enumerate(chunks):
            try:
                self._check_upserted(self.index.upsert(**self._upsert_kwargs(chunk)), chunk)
            except Exception as exc:
                raise self._chunk_failed(exc, chunks, k) from exc

    async def _awrite(
        self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        if not self.is_async:
            return await asyncio.to_thread(self._write, ids, vectors, texts, metadatas)
        chunks = self.plan_requests(self._records(ids, vectors, texts, metadatas))
        for k, chunk in enumerate(chunks):
            try:
                self._check_upserted(await self.index.upsert(**self._upsert_kwargs(chunk)), chunk)
            except Exception as exc:
                raise self._chunk_failed(exc, chunks, k) from exc
        return None

    # ---------------------------------------------------------------- search
    def _query_kwargs(self, vector: np.ndarray, top_k: int, filter: Any) -> dict[str, Any]:
        values = to_list(vector)
        if self._dimension is not None and len(values) != self._dimension:
            raise DimensionMismatchError(self._dimension, len(values), self._name, "query vector")
        kwargs: dict[str, Any] = {
            "vector": values, "top_k": top_k, "include_metadata": True, "namespace": self.namespace,
        }
        if filter is not None:
            kwargs["filter"] = filter
        return kwargs

    def _hits(self, response: Any) -> list[Hit]:
        hits = []
        for m in response.matches:
            meta = dict(m.metadata or {})
            text = meta.pop(self.text_key, None)
            hits.append(Hit(id=m.id, score=float(m.score), text=text, metadata=meta))
        return hits

    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        self.ensure_dimension()
        return self._hits(self.index.query(**self._query_kwargs(vector, top_k, filter)))

    async def _asearch_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        if not self.is_async:
            return await asyncio.to_thread(self._search_vector, vector, top_k, filter)
        await self.aensure_dimension()
        return self._hits(await self.index.query(**self._query_kwargs(vector, top_k, filter)))

    # ---------------------------------------------------------------- keyword search
    def _keyword_kwargs(self, query: str, top_k: int, filter: Any) -> dict[str, Any] | None:
        """The query arguments of a keyword search (None: the query has no keyword terms).
        ConfigurationError when the store was not opened for keyword search or the index is not dotproduct."""
        if not self.keyword:
            raise self._no_keyword()
        if self.metric is not None and self.metric != "dotproduct":
            raise ConfigurationError(_keyword_metric_message(self._name, self.metric))
        indices, values = sparse.query_vector(query)
        if not indices:
            return None
        assert self._dimension is not None  # ensure_dimension ran
        kwargs: dict[str, Any] = {
            # all-zero dense part: Pinecone's convex combination at alpha = 0 (sparse only)
            "vector": [0.0] * self._dimension, "sparse_vector": {"indices": indices, "values": values},
            "top_k": top_k, "include_metadata": True, "namespace": self.namespace,
        }
        if filter is not None:
            kwargs["filter"] = filter
        return kwargs

    def _keyword_hits(self, response: Any) -> list[Hit]:
        hits = [h for h in self._hits(response) if h.score > 0]  # score 0: no query term in the record
        for h in hits:
            h.keyword_score = h.score
        return hits

    def _search_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        self.ensure_dimension()
        kwargs = self._keyword_kwargs(query, top_k, filter)
        return [] if kwargs is None else self._keyword_hits(self.index.query(**kwargs))

    async def _asearch_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        if not self.is_async:
            return await asyncio.to_thread(self._search_keyword, query, top_k, filter)
        await self.aensure_dimension()
        kwargs = self._keyword_kwargs(query, top_k, filter)
        return [] if kwargs is None else self._keyword_hits(await self.index.query(**kwargs))

    # ---------------------------------------------------------------- count, delete, lookup
    def _count_from(self, stats: Any) -> int:
        spaces = stats.namespaces or {}
        names = DEFAULT_NAMESPACE_NAMES if self.namespace in DEFAULT_NAMESPACE_NAMES else (self.namespace,)
        return sum(int(spaces[n].vector_count) for n in names if n in spaces)

    def count(self) -> int:
        """Vectors in this store's namespace, from ``describe_index_stats``. Pinecone's serverless
        stats are eventually consistent: a count right after a write can lag for a few seconds."""
        self._sync_only("count")
        return self._count_from(self.index.describe_index_stats())

    async def acount(self) -> int:
        """Async twin of ``count``."""
        if not self.is_async:
            return await asyncio.to_thread(self.count)
        return self._count_from(await self.index.describe_index_stats())

    @staticmethod
    def _id_chunks(ids: Sequence[str], size: int) -> list[list[str]]:
        id_list = check_ids(ids)
        return [id_list[i : i + size] for i in range(0, len(id_list), size)]

    def delete(self, ids: Sequence[str]) -> None:
        """Delete vectors by id from this namespace (missing ids are ignored), 1,000 per request."""
        self._sync_only("delete")
        for chunk in self._id_chunks(ids, MAX_IDS_PER_REQUEST):
            self.index.delete(ids=chunk, namespace=self.namespace)

    async def adelete(self, ids: Sequence[str]) -> None:
        """Async twin of ``delete``."""
        if not self.is_async:
            return await asyncio.to_thread(self.delete, ids)
        for chunk in self._id_chunks(ids, MAX_IDS_PER_REQUEST):
            await self.index.delete(ids=chunk, namespace=self.namespace)
        return None

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` this namespace holds (``fetch``, 100 ids per request); bulk ingestion
        skips them on a re-run. Over an asyncio index: none known (everything is upserted again)."""
        if self.is_async:
            return set()
        found: set[str] = set()
        for chunk in self._id_chunks(ids, FETCH_BATCH):
            found.update(self.index.fetch(ids=chunk, namespace=self.namespace).vectors.keys())
        return found


__all__ = [
    "DEFAULT_CONTROLLER_HOST", "DEFAULT_NAMESPACE_NAMES", "FETCH_BATCH", "MAX_DIMENSION",
    "MAX_IDS_PER_REQUEST", "MAX_METADATA_BYTES", "MAX_REQUEST_BYTES", "MAX_SPARSE_VALUES", "MAX_UPSERT_VECTORS", "METRICS",
    "SPACE_CARD_NAMESPACE", "PineconeSettings", "PineconeStore", "index_dimension",
]
