"""Milvus: a collection per embedder, upsert and search helpers, Milvus Lite by default, a cluster by URI.

    from qwen_embed_adapters.adapters.milvus import MilvusStore
    from qwen_embed_adapters import RemoteEmbedder

    emb = RemoteEmbedder("http://localhost:30000/v1", dimensions=512)
    store = MilvusStore("./rag.db", "docs", emb)            # Milvus Lite, in-process
    # store = MilvusStore("http://milvus:19530", "docs", emb, token="root:Milvus")  # a server/cluster
    store.add_texts(["Beijing is the capital of China", "机器学习"], metadatas=[{"lang": "en"}, {"lang": "zh"}])
    hits = store.search("capital of China", top_k=3, filter='metadata["lang"] == "en"')

The collection has four fields: a VARCHAR primary key (content-hash ids by default), the text
(VARCHAR), a JSON metadata field and a FLOAT_VECTOR of the embedder's dimension. The model, dimension
and metric that created it are recorded in the collection's properties (and its description), and
every later store on the same collection is checked against them before anything is written.

Keyword search (``search(..., mode="keyword" | "hybrid")``) is Milvus's own BM25 function (Milvus 2.5+ and
Milvus Lite): a new collection's text field gets an analyzer (``DEFAULT_ANALYZER``: the jieba tokenizer, so
Chinese is cut into words, lowercase and a small stop list; settable as ``keyword_analyzer``), a SPARSE_FLOAT_VECTOR field
``text_bm25`` that Milvus fills from the text on every insert, and a SPARSE_INVERTED_INDEX with metric BM25.
Filters apply as for dense search; a delete removes the row's terms. A collection created without it
(``keyword=False``, by another tool, or on a server older than 2.5, which has no BM25 function) refuses
keyword search with ConfigurationError naming the cause.

Compact vectors (``precision="int8"``): a scalar-quantised index, HNSW_SQ on Milvus Lite and Milvus 2.5+
(re-ranked by the engine's FP32 refine on a server), IVF_SQ8 on older servers; where the engine does not
refine (Lite, IVF_SQ8) ``rescore`` x top_k candidates come back with their float vectors and are re-scored
here. ``precision="binary"`` is refused: Milvus Lite has no BINARY_VECTOR type.

pymilvus is imported lazily. This module never reads ``MILVUS_URI``; pymilvus itself reads it (and a
``.env`` file) at import time and fails on a ``.db`` path there, which is reported as a
ConfigurationError naming the variable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import string
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import numpy as np

from .._urls import redact_url
from ..embedder import Embedder
from ..errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
)
from ..retrieval import STOP_WORDS
from ..settings import check_bool, check_choice, check_int, check_number, check_str
from ..vectors import as_float32_matrix
from .base import Hit, StoreSettings, VectorStore, check_ids, secret_from_env

if TYPE_CHECKING:  # pragma: no cover
    from pymilvus import MilvusClient

logger = logging.getLogger(__name__)

#: The collection property that holds the space card (qwen_embed_adapters.space), about 6 KB of JSON.
SPACE_CARD_PROPERTY = "qwen_embed.space_card"

#: the metrics a FLOAT_VECTOR index takes
METRICS = ("COSINE", "IP", "L2")
#: Milvus's largest VARCHAR (bytes)
VARCHAR_MAX = 65535
#: property keys recorded on collections this library creates
PROP_MODEL = "qwen_embed.model"
PROP_DIMENSION = "qwen_embed.dimension"
PROP_METRIC = "qwen_embed.metric"
PROP_VERSION = "qwen_embed.version"
#: the precision a collection was created with ("float32" | "int8"; absent: float32, as before precisions existed)
PROP_PRECISION = "qwen_embed.precision"
#: the analyzer of the text field of a new collection with keyword search: jieba cuts Chinese into words and
#: keeps other scripts' words (Milvus's "chinese" analyzer adds the cnalphanumonly filter, which would drop
#: identifiers such as ``parse_args``; milvus-lite 3.2 knows the jieba and standard tokenizers only), then
#: lowercase and a stop filter: ``retrieval.STOP_WORDS`` (the client-side tokenizer's list) and the punctuation
#: jieba returns as tokens of their own
DEFAULT_ANALYZER: Mapping[str, Any] = {
    "tokenizer": "jieba",
    "filter": ["lowercase", {"type": "stop", "stop_words": sorted(
        STOP_WORDS | set(string.punctuation) | set("，。、；：？！“”‘’（）《》【】…—") | {"...", "()", "[]", "{}", "--"}
    )}],
}
#: the first Milvus release with the BM25 function (Milvus 2.5 release notes: full-text search)
BM25_SINCE = (2, 5)
#: the scalar-quantised (8-bit) index types precision="int8" builds: HNSW_SQ (Milvus docs, "HNSW_SQ": Milvus
#: 2.5+, with a refine step; milvus-lite 3.2's milvus_lite/index/faiss_hnsw_sq.py, faiss IndexHNSWSQ QT_8bit)
#: and IVF_SQ8 (every Milvus 2.x server; milvus_lite/index/faiss_ivf_sq8.py)
INT8_INDEXES = ("HNSW_SQ", "IVF_SQ8")
#: the first Milvus server release whose docs list HNSW_SQ (and its ``refine`` / ``refine_k`` params)
HNSW_SQ_SINCE = (2, 5)
#: IVF_SQ8's cells searched per query (Milvus's default is 8; the candidates are rescored, so a few more)
IVF_NPROBE = 16
#: Milvus's largest ``limit`` of one search (``topk``, the proxy's maxTopK / quotaAndLimits default)
MAX_TOPK = 16384


class _LiteAllocTimestampFilter(logging.Filter):
    """Drops the ERROR + traceback that Milvus Lite's in-process gRPC server logs each time pymilvus asks
    it for ``AllocTimestamp``, a method Lite does not implement and pymilvus does without. Every other
    record of that logger passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, NotImplementedError):
            return True
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_name == "AllocTimestamp":
                return False
            tb = tb.tb_next
        return True


_LITE_FILTER = _LiteAllocTimestampFilter()


def _quiet_lite_grpc_noise() -> None:
    grpc_logger = logging.getLogger("grpc._server")
    if _LITE_FILTER not in grpc_logger.filters:
        grpc_logger.addFilter(_LITE_FILTER)


def _import_pymilvus() -> Any:
    """Import pymilvus, turning its two failure modes into our errors."""
    try:
        import pymilvus
    except ImportError:
        raise MissingDependencyError("pymilvus", "milvus", "the Milvus adapter") from None
    except Exception as exc:
        # pymilvus parses MILVUS_URI (or MILVUS_DEFAULT_CONNECTION, also from a .env file) at import
        # time and rejects a .db path there. The URI itself is not repeated: it may carry a password.
        if "uri" in str(exc).lower():
            raise ConfigurationError(
                "importing pymilvus failed: pymilvus reads the MILVUS_URI (or MILVUS_DEFAULT_CONNECTION) "
                "environment variable, also from a .env file, at import time and rejects a value that is "
                "not an http(s):// URI, such as a Milvus Lite .db path. Unset it and pass the path or URI "
                "to MilvusStore instead."
            ) from None
        raise
    return pymilvus


@dataclasses.dataclass(frozen=True)
class MilvusSettings(StoreSettings):
    """Everything that opens a ``MilvusStore`` again, as plain data (``{"store": "milvus", **fields}``
    is its spec). The token is not a setting: ``token_env`` names the variable holding it."""

    uri: str | None = None
    collection: str = "documents"
    token_env: str | None = None
    db_name: str | None = None
    metric: str = "COSINE"
    index_type: str = "AUTOINDEX"
    index_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    text_max_length: int = VARCHAR_MAX
    id_max_length: int = 512
    id_field: str = "id"
    text_field: str = "text"
    metadata_field: str = "metadata"
    vector_field: str = "vector"
    consistency_level: str = "Strong"
    timeout: float | None = None
    write_batch_size: int | None = None
    use_async_client: bool = True
    keyword: bool = True
    keyword_field: str = "text_bm25"
    keyword_analyzer: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.metric, str):  # "cosine" and "COSINE" are one metric
            object.__setattr__(self, "metric", self.metric.upper())
        super().__post_init__()

    def validate(self) -> None:
        check_str("uri", self.uri, optional=True)
        if self.uri and "://" in self.uri and (urlsplit(self.uri).username or urlsplit(self.uri).password):
            raise ConfigurationError(
                f"credentials do not belong in the uri {redact_url(self.uri)!r}: pass token= or token_env= "
                "(the uri is a Milvus Lite path ending in .db or an http(s):// URI of a server)"
            )
        check_str("collection", self.collection)
        check_str("token_env", self.token_env, optional=True)
        check_str("db_name", self.db_name, optional=True, empty=True)
        check_choice("metric", self.metric, METRICS)
        check_str("index_type", self.index_type)
        if not isinstance(self.index_params, Mapping):
            raise ConfigurationError(f"index_params must be a dict, got {type(self.index_params).__name__}")
        check_int("text_max_length", self.text_max_length, minimum=1, maximum=VARCHAR_MAX)
        check_int("id_max_length", self.id_max_length, minimum=1, maximum=VARCHAR_MAX)
        for name in ("id_field", "text_field", "metadata_field", "vector_field", "consistency_level"):
            check_str(name, getattr(self, name))
        check_number("timeout", self.timeout, positive=True, optional=True)
        check_int("write_batch_size", self.write_batch_size, minimum=1, optional=True)
        check_bool("use_async_client", self.use_async_client)
        check_bool("keyword", self.keyword)
        check_str("keyword_field", self.keyword_field)
        if self.keyword_analyzer is not None and not isinstance(self.keyword_analyzer, Mapping):
            raise ConfigurationError(f"keyword_analyzer must be a dict, got {type(self.keyword_analyzer).__name__}")
        if self.precision == "int8" and self.index_type.upper() not in ("AUTOINDEX", *INT8_INDEXES):
            raise ConfigurationError(
                f"precision='int8' builds a scalar-quantised index ({' or '.join(INT8_INDEXES)}); index_type="
                f"{self.index_type!r} would keep float32 vectors: omit index_type or pass one of those"
            )

    def missing_location(self) -> str | None:
        return None if self.uri else "needs 'uri' (a Milvus Lite .db path or an http(s):// URI)"


def bm25_supported(server_version: str) -> bool:
    """Whether a Milvus server of ``server_version`` (``MilvusClient.get_server_version()``) has the BM25
    function: Milvus 2.5 and later, and Milvus Lite (milvus-lite 3.x answers ``milvus_lite-3.2.2`` and runs
    it). An unreadable version is given the benefit of the doubt (the server then answers for itself).

    >>> bm25_supported("v2.3.5"), bm25_supported("v2.5.4"), bm25_supported("milvus_lite-3.2.2")
    (False, True, True)
    """
    if server_version.startswith("milvus_lite"):
        return True
    found = re.match(r"v?(\d+)\.(\d+)", server_version.strip())
    return found is None or (int(found.group(1)), int(found.group(2))) >= BM25_SINCE


def int8_index(server_version: str) -> tuple[str, dict[str, Any]]:
    """The index type and build params ``precision="int8"`` gives a new collection on a Milvus server of
    ``server_version``: on Milvus Lite HNSW_SQ (faiss IndexHNSWSQ, 8-bit; milvus-lite 3.2 has no refine
    step, so this library rescores the candidates with the float vectors); on Milvus 2.5+ HNSW_SQ with
    ``sq_type`` SQ8 and the engine's FP32 refine (Milvus docs, "HNSW_SQ": ``refine``, ``refine_type``, and
    ``refine_k`` at search time); before 2.5 (standalone 2.3.5) IVF_SQ8, rescored by this library. An
    unreadable version is taken for a current server.

    >>> int8_index("milvus_lite-3.2.2")[0], int8_index("v2.3.5")[0], int8_index("v2.5.4")[1]["refine_type"]
    ('HNSW_SQ', 'IVF_SQ8', 'FP32')
    """
    hnsw = {"M": 16, "efConstruction": 200}
    if server_version.startswith("milvus_lite"):
        return "HNSW_SQ", hnsw
    found = re.match(r"v?(\d+)\.(\d+)", server_version.strip())
    if found is not None and (int(found.group(1)), int(found.group(2))) < HNSW_SQ_SINCE:
        return "IVF_SQ8", {"nlist": 128}
    return "HNSW_SQ", {**hnsw, "sq_type": "SQ8", "refine": True, "refine_type": "FP32"}


def _utf8_len(s: str) -> int:
    return len(s.encode("utf-8"))


def milvus_rows(
    ids: Sequence[str],
    vectors: Any,
    texts: Sequence[str] | None = None,
    metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    dim: int | None = None,
    id_field: str = "id",
    vector_field: str = "vector",
    text_field: str = "text",
    metadata_field: str = "metadata",
) -> list[dict[str, Any]]:
    """Turn ids, vectors, texts and metadatas into the row dicts ``MilvusClient.insert/upsert`` take.

    For users who embed and insert themselves: vectors become float32 rows (never float64 or float16,
    which Milvus refuses), widths are checked against ``dim`` and NaNs are refused, naming the row.

    >>> import numpy as np
    >>> rows = milvus_rows(["a"], np.ones((1, 4)), ["hello"], [{"lang": "en"}], dim=4)
    >>> rows[0]["vector"].dtype, rows[0]["text"], rows[0]["metadata"]
    (dtype('float32'), 'hello', {'lang': 'en'})
    """
    id_list = check_ids(ids)
    matrix = as_float32_matrix(vectors, dim=dim, where="milvus_rows vectors")
    if matrix.shape[0] != len(id_list):
        raise InvalidInputError(f"got {len(id_list)} ids but {matrix.shape[0]} vectors")
    text_list = None if texts is None else list(texts)
    if text_list is not None and len(text_list) != len(id_list):
        raise InvalidInputError(f"got {len(id_list)} ids but {len(text_list)} texts")
    meta_list = None if metadatas is None else list(metadatas)
    if meta_list is not None and len(meta_list) != len(id_list):
        raise InvalidInputError(f"got {len(id_list)} ids but {len(meta_list)} metadatas")
    rows: list[dict[str, Any]] = []
    for i, x in enumerate(id_list):
        row: dict[str, Any] = {id_field: x, vector_field: matrix[i]}
        if text_list is not None:
            t = text_list[i]
            if not isinstance(t, str):
                raise InvalidInputError(f"texts[{i}] (id {x!r}) is {type(t).__name__}, not str", index=i, item_id=x)
            row[text_field] = t
        if meta_list is not None:
            m = meta_list[i]
            if m is not None and not isinstance(m, Mapping):
                raise InvalidInputError(
                    f"metadatas[{i}] (id {x!r}) must be a dict, got {type(m).__name__}", index=i, item_id=x
                )
            row[metadata_field] = dict(m) if m else {}
        rows.append(row)
    return rows


def filter_expression(filter: Any, *, metadata_field: str = "metadata") -> str:
    """A Milvus boolean expression from ``filter``.

    A str is passed through as is (``'metadata["lang"] == "en" and metadata["year"] > 2020'``); a dict
    of equalities on metadata keys is joined with ``and`` (a list value means "any of"); None means no
    filter.

    >>> filter_expression({"lang": "en", "year": [2024, 2025]})
    'metadata["lang"] == "en" and (metadata["year"] == 2024 or metadata["year"] == 2025)'

    """
    if filter is None:
        return ""
    if isinstance(filter, str):
        return filter
    if isinstance(filter, Mapping):
        parts = []
        for key, value in filter.items():
            if not isinstance(key, str) or not key:
                raise InvalidInputError(f"filter keys must be non-empty str, got {key!r}")
            field = f"{metadata_field}[{json.dumps(key, ensure_ascii=False)}]"
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            if not values:
                raise InvalidInputError(f"filter value for {key!r} is an empty list")
            try:
                literals = [json.dumps(v, ensure_ascii=False, allow_nan=False) for v in values]
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"filter value for {key!r} is not a JSON literal: {exc}") from None
            # "or" of equalities rather than "in": Milvus Lite takes "in" only on plain fields.
            ors = " or ".join(f"{field} == {lit}" for lit in literals)
            parts.append(f"({ors})" if len(literals) > 1 else ors)
        return " and ".join(parts)
    raise InvalidInputError(f"filter must be a Milvus expression str, a dict or None, got {type(filter).__name__}")


def _client_uri(client: Any) -> str | None:
    """Where a MilvusClient talks to, as MilvusStore takes it. A Milvus Lite client's own URI is the
    transient local server milvus-lite started for its .db file; that file is found through milvus-lite's
    server registry (``milvus_lite.server_manager.server_manager_instance._servers``: path -> (server,
    lite, port), milvus-lite 3.2), and when it cannot be, the store has no config rather than a wrong one."""
    config = getattr(client, "_config", None)
    uri = getattr(config, "uri", None)
    if not isinstance(uri, str) or not uri:
        return None
    parts = urlsplit(uri)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return uri
    try:
        from milvus_lite.server_manager import server_manager_instance

        servers = dict(server_manager_instance._servers)
    except Exception:  # no milvus-lite, or another layout: a local server it is
        return uri
    for path, entry in servers.items():
        if isinstance(entry, tuple) and entry and entry[-1] == parts.port:
            return str(path)
    return uri


def collection_dimension(client: Any, collection: str, vector_field: str | None = None) -> int | None:
    """The ``dim`` of a collection's (named, else first) float-vector field through a ``MilvusClient``;
    None when the collection does not exist. Used for collections other tools made (LangChain's,
    LlamaIndex's), through ``adapters.spec.store_dimension("milvus", client, collection, field)``."""
    if not client.has_collection(collection):
        return None
    for field in client.describe_collection(collection).get("fields", []):
        dim = (field.get("params") or {}).get("dim")
        if dim is not None and (vector_field is None or field.get("name") == vector_field):
            return int(dim)
    return None


class MilvusStore(VectorStore):
    """A Milvus collection fed and searched through an Embedder.

    ``uri_or_client`` is a Milvus Lite ``.db`` path (embedded, created if missing), an
    ``http(s)://host:port`` URI of a Milvus server or cluster (with ``token="user:password"`` or an API
    key), or an existing ``pymilvus.MilvusClient``, used as is and not closed by ``close()``.

    ``metric`` is COSINE (default), IP or L2. Scores are "higher is better": the cosine or inner
    product for COSINE/IP; for L2 Milvus returns the squared distance ``d2`` and the score is
    ``1 - d2 / 2``, which equals the cosine for unit vectors (all the embedder returns).

    Other options: ``index_type`` / ``index_params`` (default AUTOINDEX; HNSW, IVF_FLAT, FLAT...),
    ``token_env`` (the name of a variable holding the token; what ``to_config()`` keeps instead of it),
    ``text_max_length`` (VARCHAR bytes, at most 65535), ``id_max_length``, field names, ``timeout``,
    ``consistency_level`` (Strong by default, so ``count()`` sees what was just written) and
    ``async_client`` (an ``AsyncMilvusClient`` for the async twins; by default one is opened on the same
    URI in each event loop that uses the store).

    Keyword search: ``keyword`` (default True) gives a new collection Milvus's BM25 function over the text
    (``keyword_field``, ``keyword_analyzer``); an existing collection keeps what it was created with.

    Compact vectors: ``precision="int8"`` gives a new collection a scalar-quantised index (``int8_index``:
    HNSW_SQ on Milvus Lite and Milvus 2.5+, IVF_SQ8 before 2.5) and every search re-scores ``rescore`` x
    top_k candidates with the float vectors (the engine's FP32 refine on Milvus 2.5+, this client elsewhere),
    so hits carry float scores; the float vectors stay stored as written. The precision is recorded as the
    collection property ``PROP_PRECISION``: ``precision=None`` opens a collection at its own, another one is
    refused. ``precision="binary"`` is refused (see ``precision_note``).
    """

    keyword_support: ClassVar[str] = "native"
    keyword_note: ClassVar[str] = (
        "native: Milvus's BM25 function (Milvus 2.5+, Milvus Lite) over the text with a jieba analyzer; "
        "a server older than 2.5 (such as standalone 2.3.5) has none and refuses keyword search"
    )
    settings_class: ClassVar[type[MilvusSettings]] = MilvusSettings
    precisions: ClassVar[tuple[str, ...]] = ("float32", "int8")
    precision_note: ClassVar[str] = (
        "int8 is a scalar-quantised index (HNSW_SQ on Milvus Lite and Milvus 2.5+, IVF_SQ8 on older servers) "
        "whose rescore x top_k candidates are re-scored with the float vectors; binary is not offered: Milvus "
        "Lite 3.2.2 has no BINARY_VECTOR type and keeps one vector field per collection "
        "(milvus_lite/schema/types.py, schema/validation.py), and on a server binary search with float "
        "rescoring needs a BINARY_VECTOR field beside the float one, which no server here can test"
    )
    kind: ClassVar[str] = "milvus"
    settings: MilvusSettings

    def __init__(
        self,
        uri_or_client: Any,
        collection: str,
        embedder: Embedder,
        *,
        metric: str = "COSINE",
        token: str | None = None,
        token_env: str | None = None,
        db_name: str | None = None,
        index_type: str = "AUTOINDEX",
        index_params: Mapping[str, Any] | None = None,
        text_max_length: int = VARCHAR_MAX,
        id_max_length: int = 512,
        id_field: str = "id",
        text_field: str = "text",
        metadata_field: str = "metadata",
        vector_field: str = "vector",
        consistency_level: str = "Strong",
        timeout: float | None = None,
        write_batch_size: int | None = None,
        async_client: Any = None,
        use_async_client: bool = True,
        precision: str | None = None,
        rescore: int = 4,
        keyword: bool = True,
        keyword_field: str = "text_bm25",
        keyword_analyzer: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(embedder)
        given_uri = os.fspath(uri_or_client) if isinstance(uri_or_client, (str, os.PathLike)) else None
        self.settings = s = MilvusSettings(
            uri=given_uri, collection=collection, token_env=token_env, db_name=db_name, metric=metric,
            index_type=index_type, index_params=dict(index_params or {}), text_max_length=text_max_length,
            id_max_length=id_max_length, id_field=id_field, text_field=text_field, metadata_field=metadata_field,
            vector_field=vector_field, consistency_level=consistency_level, timeout=timeout,
            write_batch_size=write_batch_size, use_async_client=use_async_client, keyword=keyword,
            keyword_field=keyword_field,
            keyword_analyzer=None if keyword_analyzer is None else dict(keyword_analyzer),
            precision=precision, rescore=rescore,
        )
        self.collection = s.collection
        self._check_precision()
        self.metric = s.metric
        self.text_max_length = s.text_max_length
        self.id_max_length = s.id_max_length
        self.index_type = s.index_type
        self.index_params = dict(s.index_params)
        self.id_field, self.text_field = s.id_field, s.text_field
        self.metadata_field, self.vector_field = s.metadata_field, s.vector_field
        self.consistency_level = s.consistency_level
        self.timeout = s.timeout
        if s.write_batch_size is not None:
            self.write_batch_size = s.write_batch_size
        if token is None and token_env:
            token = secret_from_env(token_env, "the Milvus store's token_env")

        self._pymilvus = _import_pymilvus()
        self._token = token or ""
        self._db_name = db_name or ""
        self._owns_client = False
        self._uri: str | None = None
        if isinstance(uri_or_client, (str, os.PathLike)):
            self._uri = self._resolve_uri(os.fspath(uri_or_client))
            kwargs: dict[str, Any] = {"uri": self._uri, "token": self._token, "db_name": self._db_name}
            if timeout is not None:
                kwargs["timeout"] = timeout
            if self._uri.startswith(("http://", "https://")):
                # pymilvus pings idle channels every 10 s; a `milvus-lite server` (Python gRPC, default
                # 5-minute minimum ping interval) answers GOAWAY too_many_pings and the channel then fails
                # to recover. Ping only while calls are in flight: idle stores stay connected.
                kwargs["grpc_options"] = {"grpc.keepalive_permit_without_calls": False}
            try:
                self.client: MilvusClient = self._pymilvus.MilvusClient(**kwargs)
            except self._pymilvus.MilvusException as exc:  # server down: pymilvus gives up after `timeout`
                raise ConfigurationError(
                    f"cannot reach Milvus at {redact_url(self._uri)} (timeout {timeout or 10} s): {exc.message}"
                ) from exc
            self._owns_client = True
        elif isinstance(uri_or_client, self._pymilvus.MilvusClient):
            self.client = uri_or_client
            known = _client_uri(uri_or_client)  # where the client talks to, for to_config()
            if known:
                config = getattr(uri_or_client, "_config", None)
                try:
                    self.settings = s.replace(uri=known, db_name=s.db_name or getattr(config, "db_name", None) or None)
                except ConfigurationError:  # credentials inside the client's URI: it stays without a config
                    pass
        elif isinstance(uri_or_client, self._pymilvus.AsyncMilvusClient):
            raise ConfigurationError(
                "pass a MilvusClient (or a URI) as uri_or_client; an AsyncMilvusClient goes in async_client=..."
            )
        else:
            raise ConfigurationError(
                "uri_or_client must be a Milvus Lite .db path, an http(s):// URI or a pymilvus MilvusClient, "
                f"got {type(uri_or_client).__name__}"
            )
        if async_client is not None and not isinstance(async_client, self._pymilvus.AsyncMilvusClient):
            raise ConfigurationError(f"async_client must be a pymilvus AsyncMilvusClient, got {type(async_client).__name__}")
        self._user_aclient = async_client
        self._use_async_client = use_async_client
        self._dimension: int | None = None  # the collection's, once checked
        self._loaded = False
        self._closed = False
        #: the collection's BM25 output field (None: it has none), read with the dimension
        self._bm25_field: str | None = None
        self._server_version: str | None = None
        # Milvus Lite rebuilds the BM25 index of its unflushed rows on every search (0.9 s a query at 3,000
        # rows here, 9 ms once flushed): a keyword search flushes first when this process may have left rows
        # unflushed (milvus_lite/engine/collection.py, the memtable's sparse index is built per search)
        self._unflushed = True
        #: precision "int8": the collection's index type, whether the engine refines (re-ranks) itself, and
        #: IVF_SQ8's nlist (0 for HNSW_SQ)
        self._compact_index: tuple[str, bool, int] | None = None

    # ------------------------------------------------------------------ connection
    @staticmethod
    def _resolve_uri(uri: str) -> str:
        if uri.endswith(".db"):
            # Milvus Lite: the .db path is a data directory; pymilvus wants its parent to exist.
            parent = os.path.dirname(os.path.abspath(uri))
            os.makedirs(parent, exist_ok=True)
            _quiet_lite_grpc_noise()
            return uri
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme in ("http", "https", "tcp", "grpc") or uri.startswith("unix:"):
            return uri
        raise ConfigurationError(
            f"{redact_url(uri)!r} is neither a Milvus Lite path ending in .db nor an http(s):// URI of a "
            "Milvus server"
        )

    @property
    def name(self) -> str:
        """The collection name."""
        return self.collection

    @property
    def dimension(self) -> int | None:
        """The collection's vector dimension, once ``ensure_dimension`` has run."""
        return self._dimension

    @classmethod
    def from_settings(cls, settings: MilvusSettings, embedder: Embedder) -> MilvusStore:
        """Open the store ``settings`` describe (the token read from ``token_env``)."""
        fields = settings.store_fields()  # the space card settings: VectorStore.from_config
        return cls(fields.pop("uri"), fields.pop("collection"), embedder, **fields)

    def close(self) -> None:
        """Close the client this store opened (a client passed in is left open). ``aclose()`` also
        closes the running loop's AsyncMilvusClient."""
        super().close()  # grpc.aio channels belong to their loop; aclose() closes the current one
        self._closed = True
        if self._owns_client:
            try:
                self.client.close()
            except Exception as exc:  # closing is best effort
                logger.debug("closing the Milvus client failed: %s", exc)

    def _async_client(self) -> Any | None:
        """The AsyncMilvusClient for the running loop, or None to fall back to worker threads."""
        if self._user_aclient is not None:
            return self._user_aclient
        if not self._use_async_client or not hasattr(self._pymilvus, "AsyncMilvusClient"):
            return None
        config = getattr(self.client, "_config", None)
        uri = getattr(config, "uri", None) or self._uri
        if not uri:
            return None
        token = getattr(config, "token", None) or self._token
        db_name = getattr(config, "db_name", None) or self._db_name
        kwargs: dict[str, Any] = {"uri": uri, "token": token, "db_name": db_name}
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return self._aclients.get(lambda: self._pymilvus.AsyncMilvusClient(**kwargs))

    # ------------------------------------------------------------------ collection
    def ensure_collection(self) -> int:
        """Create the collection if missing, else check it; returns its dimension. See ``ensure_dimension``."""
        return self.ensure_dimension()

    def ensure_dimension(self) -> int:
        """Create the collection if missing (schema, index, metric, recorded model and dimension), else
        check its vector field's dim and index metric against this store.

        Raises DimensionMismatchError (dim) or ConfigurationError (metric, missing fields) naming the
        collection, before anything is written.
        """
        if self._dimension is not None:
            return self._dimension
        want = self.embedder.dimension
        if self.client.has_collection(self.collection, timeout=self.timeout):
            dim = self._check_existing(want)
        else:
            try:
                self._create(want)
            except Exception as exc:
                # Another store may have created it in the meantime: then check that one instead.
                if not self.client.has_collection(self.collection, timeout=self.timeout):
                    raise
                logger.debug("create of %r raced another writer (%s); checking it", self.collection, exc)
                dim = self._check_existing(want)
            else:
                dim = want
        self._ensure_loaded()
        self._dimension = dim
        return dim

    def _read_card(self) -> str | None:
        """The space card, kept as a collection property (``SPACE_CARD_PROPERTY``)."""
        props = self.client.describe_collection(self.collection, timeout=self.timeout).get("properties") or {}
        card = props.get(SPACE_CARD_PROPERTY)
        return card if isinstance(card, str) and card else None

    def _write_card(self, card: str) -> None:
        self.client.alter_collection_properties(
            self.collection, properties={SPACE_CARD_PROPERTY: card}, timeout=self.timeout
        )

    def _create(self, dim: int) -> None:
        pm = self._pymilvus
        DataType = pm.DataType
        description = (
            f"qwen-embed-adapters: model={self.embedder.model} dimension={dim} metric={self.metric}"
        )
        schema = pm.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=description)
        schema.add_field(self.id_field, DataType.VARCHAR, is_primary=True, max_length=self.id_max_length)
        keyword = self.settings.keyword and bm25_supported(self.server_version())
        if self.settings.keyword and not keyword:
            logger.warning(
                "Milvus server %s has no BM25 function (Milvus %d.%d+): collection %r is created without keyword "
                "search", self.server_version(), *BM25_SINCE, self.collection,
            )
        text_params: dict[str, Any] = (
            {"enable_analyzer": True, "analyzer_params": dict(self.settings.keyword_analyzer or DEFAULT_ANALYZER)}
            if keyword else {}
        )
        schema.add_field(self.text_field, DataType.VARCHAR, max_length=self.text_max_length, **text_params)
        schema.add_field(self.metadata_field, DataType.JSON)
        schema.add_field(self.vector_field, DataType.FLOAT_VECTOR, dim=dim)
        index = self.client.prepare_index_params()
        index_type, index_params = self._vector_index()
        index.add_index(self.vector_field, index_type=index_type, metric_type=self.metric, params=index_params)
        if keyword:
            schema.add_field(self.settings.keyword_field, DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(pm.Function(
                name=f"{self.text_field}_bm25", function_type=pm.FunctionType.BM25,
                input_field_names=[self.text_field], output_field_names=[self.settings.keyword_field],
            ))
            index.add_index(self.settings.keyword_field, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        properties = {
            PROP_MODEL: self.embedder.model,
            PROP_DIMENSION: str(dim),
            PROP_METRIC: self.metric,
            PROP_VERSION: "1",
            PROP_PRECISION: self.precision,
        }
        self.client.create_collection(
            self.collection,
            schema=schema,
            index_params=index,
            consistency_level=self.consistency_level,
            properties=properties,
            timeout=self.timeout,
        )
        self._loaded = True  # create_collection with index_params loads it
        self._bm25_field = self.settings.keyword_field if keyword else None
        if self.precision == "int8":
            self._compact_index = (index_type, bool(index_params.get("refine")), int(index_params.get("nlist", 0)))
        logger.info(
            "created Milvus collection %r: dim=%d metric=%s index=%s precision=%s model=%s",
            self.collection, dim, self.metric, index_type, self.precision, self.embedder.model,
        )

    def _vector_index(self) -> tuple[str, dict[str, Any]]:
        """The vector index of a new collection: ``index_type`` / ``index_params`` as given, or for
        precision "int8" a scalar-quantised one (``int8_index`` for this server, unless ``index_type`` names
        one of ``INT8_INDEXES``), its params under the ones given."""
        if self.precision != "int8":
            return self.index_type, dict(self.index_params)
        index_type, params = int8_index(self.server_version())
        if self.index_type.upper() in INT8_INDEXES and self.index_type.upper() != index_type:
            index_type, params = self.index_type.upper(), {}
        return index_type, {**params, **self.index_params}

    def _read_compact_index(self) -> tuple[str, bool, int]:
        """The type of the collection's vector index, whether it refines its own candidates (HNSW_SQ built
        with ``refine``) and its ``nlist`` (IVF_SQ8; else 0); the default int8 index of this server, not
        refining, when the server cannot say."""
        try:
            for index_name in self.client.list_indexes(self.collection, field_name=self.vector_field) or []:
                desc = dict(self.client.describe_index(self.collection, index_name, timeout=self.timeout) or {})
                params = desc.get("params")
                if isinstance(params, str):  # some servers answer the build params as JSON text
                    params = json.loads(params)
                desc.update(params if isinstance(params, Mapping) else {})
                refine = str(desc.get("refine", False)).lower() == "true"
                return str(desc.get("index_type", "")).upper(), refine, int(desc.get("nlist", 0) or 0)
        except Exception as exc:  # an old server without list_indexes: rescore here, the safe side
            logger.debug("reading the index of %r failed: %s", self.collection, exc)
        index_type, params = int8_index(self.server_version())
        return index_type, False, int(params.get("nlist", 0))

    def _check_existing(self, want: int) -> int:
        info = self.client.describe_collection(self.collection, timeout=self.timeout)
        fields = {f.get("name"): f for f in info.get("fields", [])}
        vec = fields.get(self.vector_field)
        if vec is None:
            raise ConfigurationError(
                f"Milvus collection {self.collection!r} has no vector field {self.vector_field!r} "
                f"(fields: {sorted(n for n in fields if n)}); pass vector_field=..."
            )
        try:
            dim = int(vec.get("params", {}).get("dim"))
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"Milvus collection {self.collection!r}: field {self.vector_field!r} has no dim; "
                "is it a FLOAT_VECTOR?"
            ) from None
        props = info.get("properties") or {}
        recorded_model = props.get(PROP_MODEL)
        self._bm25_field = self._bm25_output(info)
        if dim != want:
            detail = f"created with model {recorded_model!r}" if recorded_model else ""
            detail += f"{'; ' if detail else ''}this embedder is {self.embedder.model!r}"
            raise DimensionMismatchError(dim, want, self.collection, detail)
        for fname, label in ((self.id_field, "id_field"), (self.text_field, "text_field"),
                             (self.metadata_field, "metadata_field")):
            if fname not in fields:
                raise ConfigurationError(
                    f"Milvus collection {self.collection!r} has no field {fname!r} "
                    f"(fields: {sorted(n for n in fields if n)}); pass {label}=..."
                )
        DataType = self._pymilvus.DataType
        for fname, want_type in ((self.id_field, DataType.VARCHAR), (self.text_field, DataType.VARCHAR),
                                 (self.metadata_field, DataType.JSON), (self.vector_field, DataType.FLOAT_VECTOR)):
            got_type = fields[fname].get("type")
            if got_type is not None and got_type != want_type:
                raise ConfigurationError(
                    f"Milvus collection {self.collection!r}: field {fname!r} is {getattr(got_type, 'name', got_type)}, "
                    f"this store needs {want_type.name} (was the collection made by another tool?)"
                )
        text_len = (fields[self.text_field].get("params") or {}).get("max_length")
        if text_len is not None:
            self.text_max_length = int(text_len)
        id_len = (fields[self.id_field].get("params") or {}).get("max_length")
        if id_len is not None:
            self.id_max_length = int(id_len)
        metric = self._existing_metric(props)
        if metric is not None and metric != self.metric:
            raise ConfigurationError(
                f"Milvus collection {self.collection!r} is indexed with metric {metric}, "
                f"but this store was asked for {self.metric}; pass metric={metric!r} or use another collection"
            )
        if recorded_model and recorded_model != self.embedder.model:
            logger.warning(
                "Milvus collection %r was created with model %r; this embedder is %r (same dimension %d)",
                self.collection, recorded_model, self.embedder.model, dim,
            )
        # A collection created before precisions existed (or by another tool) keeps float32 search semantics.
        if self._settle_precision(str(props.get(PROP_PRECISION) or "float32")) == "int8":
            self._compact_index = self._read_compact_index()
        return dim

    def _bm25_output(self, info: Mapping[str, Any]) -> str | None:
        """The output field of the collection's BM25 function over the text field, or None."""
        bm25 = self._pymilvus.FunctionType.BM25
        for fn in info.get("functions") or []:
            kind = fn.get("type")
            if (kind == bm25 or getattr(kind, "name", kind) == "BM25") and self.text_field in (fn.get("input_field_names") or []):
                outputs = fn.get("output_field_names") or []
                return str(outputs[0]) if outputs else None
        return None

    def server_version(self) -> str:
        """The server's version as it reports it (``v2.5.4``; Milvus Lite: ``milvus_lite-3.2.2``), asked once."""
        if self._server_version is None:
            try:
                self._server_version = str(self.client.get_server_version(timeout=self.timeout))
            except Exception as exc:  # a proxy that does not answer it: let the server decide later
                logger.debug("get_server_version failed: %s", exc)
                self._server_version = "unknown"
        return self._server_version

    def _existing_metric(self, props: Mapping[str, Any]) -> str | None:
        try:
            names = self.client.list_indexes(self.collection, field_name=self.vector_field)
            for index_name in names or []:
                desc = self.client.describe_index(self.collection, index_name, timeout=self.timeout) or {}
                if desc.get("metric_type"):
                    return str(desc["metric_type"]).upper()
        except Exception as exc:  # an old server without list_indexes: fall back to what we recorded
            logger.debug("reading the index of %r failed: %s", self.collection, exc)
        recorded = props.get(PROP_METRIC)
        return str(recorded).upper() if recorded else None

    def _ensure_loaded(self) -> bool:
        """Load the collection if it exists and is not loaded; False when it does not exist."""
        if self._loaded:
            return True
        if not self.client.has_collection(self.collection, timeout=self.timeout):
            return False
        state = self.client.get_load_state(self.collection, timeout=self.timeout)
        st = state.get("state") if isinstance(state, Mapping) else state
        if getattr(st, "name", str(st)) != "Loaded":
            try:
                self.client.load_collection(self.collection, timeout=self.timeout)
            except Exception as exc:
                raise ConfigurationError(
                    f"Milvus collection {self.collection!r} cannot be loaded (has its vector field an "
                    f"index?): {exc}"
                ) from exc
        self._loaded = True
        return True

    def _reloaded(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a read; if the server answers "collection not loaded" (a real server restarted since this
        store loaded it: collections come back released), load it again and retry once."""
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if getattr(exc, "code", None) != 101 and "not loaded" not in str(exc):
                raise
            logger.info("Milvus collection %r was released (server restart?); loading it again", self.collection)
            self._loaded = False
            self._ensure_loaded()
            return call(*args, **kwargs)

    # ------------------------------------------------------------------ checks
    def _validate_batch(self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        """VARCHAR limits (in UTF-8 bytes, as a Milvus server counts them) for ids and texts."""
        if self._dimension is None and self.client.has_collection(self.collection, timeout=self.timeout):
            # An existing collection's own limits apply (read before any write).
            self.ensure_dimension()
        for i, (x, t) in enumerate(zip(ids, texts, strict=True)):
            n = _utf8_len(x)
            if n > self.id_max_length:
                raise InvalidInputError(
                    f"ids[{i}] {x[:40]!r}... is {n} bytes; collection {self.collection!r} takes at most "
                    f"{self.id_max_length}", index=i, item_id=x,
                )
            n = _utf8_len(t)
            if n > self.text_max_length:
                raise InvalidInputError(
                    f"texts[{i}] (id {x!r}) is {n} bytes of UTF-8; the {self.text_field!r} field of "
                    f"collection {self.collection!r} takes at most {self.text_max_length} (split it into "
                    "chunks first)", index=i, item_id=x,
                )

    # ------------------------------------------------------------------ writes
    def _rows(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return milvus_rows(
            ids, vectors, texts, metadatas, dim=self._dimension,
            id_field=self.id_field, vector_field=self.vector_field,
            text_field=self.text_field, metadata_field=self.metadata_field,
        )

    def _write(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        rows = self._rows(ids, vectors, texts, metadatas)
        self._unflushed = True
        res = self.client.upsert(self.collection, rows, timeout=self.timeout)
        self._check_upsert(res, len(rows))

    async def _awrite(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        aclient = self._async_client()
        if aclient is None:
            await super()._awrite(ids, vectors, texts, metadatas)
            return
        rows = self._rows(ids, vectors, texts, metadatas)
        self._unflushed = True
        res = await aclient.upsert(self.collection, rows, timeout=self.timeout)
        self._check_upsert(res, len(rows))

    def _check_upsert(self, res: Any, n: int) -> None:
        got = res.get("upsert_count") if isinstance(res, Mapping) else None
        if got is not None and int(got) != n:
            raise RuntimeError(f"Milvus upserted {got} of {n} rows into {self.collection!r}")

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the collection holds (for resumable ingestion)."""
        id_list = check_ids(ids)
        if not id_list or not self._ensure_loaded():
            return set()
        found: set[str] = set()
        for start in range(0, len(id_list), 1000):
            chunk = id_list[start : start + 1000]
            res = self._reloaded(
                self.client.get, self.collection, ids=chunk, output_fields=[self.id_field], timeout=self.timeout
            )
            found.update(str(r[self.id_field]) for r in res)
        return found

    # ------------------------------------------------------------------ search
    def _search_args(self, vector: np.ndarray, top_k: int, filter: Any) -> dict[str, Any]:
        q = as_float32_matrix(vector, dim=self._dimension, where=f"query for {self.collection!r}")
        return {
            "collection_name": self.collection,
            "data": [q[0]],
            "limit": top_k,
            "filter": filter_expression(filter, metadata_field=self.metadata_field),
            "output_fields": [self.text_field, self.metadata_field],
            "anns_field": self.vector_field,
            "search_params": {"metric_type": self.metric},
            "consistency_level": self.consistency_level,
            "timeout": self.timeout,
        }

    def _hits(self, res: Any) -> list[Hit]:
        hits: list[Hit] = []
        for h in res[0] if res else []:
            entity = h.get("entity") or {}
            distance = float(h.get("distance"))
            score = 1.0 - distance / 2.0 if self.metric == "L2" else distance
            hits.append(Hit(
                id=str(h.get("id", entity.get(self.id_field))),
                score=score,
                text=entity.get(self.text_field),
                metadata=dict(entity.get(self.metadata_field) or {}),
            ))
        return hits

    def _compact_args(self, args: dict[str, Any], top_k: int) -> bool:
        """Turn ``args`` into the search of a precision "int8" collection; True when this client re-scores
        the candidates. With the engine's refine (HNSW_SQ on Milvus 2.5+) the server re-ranks
        ``refine_k = rescore`` x top_k candidates with its FP32 copy and returns float distances; otherwise
        (Milvus Lite, IVF_SQ8) rescore x top_k candidates come back with their float vectors and are re-scored
        here, as FaissStore does."""
        if self.precision != "int8":
            return False
        if self._compact_index is None:
            self._compact_index = self._read_compact_index()
        index_type, refines, nlist = self._compact_index
        fetch = min(top_k * self.rescore, MAX_TOPK)
        if index_type == "IVF_SQ8":
            params: dict[str, Any] = {"nprobe": min(IVF_NPROBE, nlist or IVF_NPROBE)}
        else:  # HNSW_SQ: the graph's candidate list must hold every candidate asked for
            params = {"ef": max(64, fetch)}
        if refines:
            params["refine_k"] = float(self.rescore)
        else:
            args["limit"] = fetch
            args["output_fields"] = [*args["output_fields"], self.vector_field]
        args["search_params"] = {**args["search_params"], "params": params}
        return not refines

    def _rescored(self, res: Any, query: np.ndarray, top_k: int) -> list[Hit]:
        """The ``top_k`` best of a compact search's candidates by their float vectors, scored as ``_hits``
        scores (cosine, inner product, or ``1 - d2 / 2`` for L2); ties keep the engine's order."""
        rows = list(res[0]) if res else []
        if not rows:
            return []
        vecs = np.asarray([(h.get("entity") or {})[self.vector_field] for h in rows], dtype=np.float32)
        q = np.asarray(query, dtype=np.float32)
        scores: np.ndarray
        if self.metric == "COSINE":
            norms = np.linalg.norm(vecs, axis=1) * float(np.linalg.norm(q))
            scores = (vecs @ q) / np.where(norms == 0, 1.0, norms)
        elif self.metric == "IP":
            scores = vecs @ q
        else:
            scores = 1.0 - ((vecs - q) ** 2).sum(axis=1) / 2.0
        hits: list[Hit] = []
        for i in np.argsort(-scores, kind="stable")[:top_k]:
            h = rows[int(i)]
            entity = h.get("entity") or {}
            hits.append(Hit(
                id=str(h.get("id", entity.get(self.id_field))),
                score=float(scores[int(i)]),
                text=entity.get(self.text_field),
                metadata=dict(entity.get(self.metadata_field) or {}),
            ))
        return hits

    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        self.ensure_dimension()
        args = self._search_args(vector, top_k, filter)
        if self._compact_args(args, top_k):
            return self._rescored(self._reloaded(self.client.search, **args), args["data"][0], top_k)
        return self._hits(self._reloaded(self.client.search, **args))

    async def _asearch_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        if self._dimension is None:
            await asyncio.to_thread(self.ensure_dimension)
        aclient = self._async_client()
        if aclient is None:
            return await super()._asearch_vector(vector, top_k, filter)
        args = self._search_args(vector, top_k, filter)
        if self.precision == "int8" and self._compact_index is None:
            self._compact_index = await asyncio.to_thread(self._read_compact_index)
        if self._compact_args(args, top_k):
            return self._rescored(await aclient.search(**args), args["data"][0], top_k)
        return self._hits(await aclient.search(**args))

    # ------------------------------------------------------------------ keyword search
    def _keyword_args(self, query: str, top_k: int, filter: Any) -> dict[str, Any] | None:
        """The search arguments of a BM25 search, or None when the collection does not exist yet.
        ConfigurationError when the collection has no BM25 function, naming why."""
        if self._dimension is None:
            if not self.client.has_collection(self.collection, timeout=self.timeout):
                return None
            self.ensure_dimension()
        if self._bm25_field is None:
            version = self.server_version()
            if not bm25_supported(version):
                raise ConfigurationError(
                    f"Milvus server {version} has no BM25 function (it came with Milvus {BM25_SINCE[0]}.{BM25_SINCE[1]}), "
                    f"so collection {self.collection!r} cannot be searched by keyword: mode 'keyword' and 'hybrid' "
                    "need Milvus 2.5+ or Milvus Lite; dense search works as before"
                )
            raise ConfigurationError(
                f"Milvus collection {self.collection!r} has no BM25 function over field {self.text_field!r} (it was "
                "created before keyword search existed here, by another tool, or with keyword=False), so mode "
                "'keyword' and 'hybrid' cannot run on it: ingest into a new collection (keyword=True, the default) "
                "to search it by keyword"
            )
        if self._unflushed and self.server_version().startswith("milvus_lite"):
            self.client.flush(self.collection, timeout=self.timeout)
            self._unflushed = False
        return {
            "collection_name": self.collection,
            "data": [query],
            "limit": top_k,
            "filter": filter_expression(filter, metadata_field=self.metadata_field),
            "output_fields": [self.text_field, self.metadata_field],
            "anns_field": self._bm25_field,
            "search_params": {"metric_type": "BM25"},
            "consistency_level": self.consistency_level,
            "timeout": self.timeout,
        }

    def _keyword_hits(self, res: Any) -> list[Hit]:
        hits: list[Hit] = []
        for h in res[0] if res else []:
            entity = h.get("entity") or {}
            # A Milvus server returns the BM25 score as the distance; milvus-lite 3.2 returns its negation
            # (milvus_lite/index/sparse_inverted.py: "distance = -bm25_score"). BM25 is never negative.
            score = abs(float(h.get("distance")))
            hits.append(Hit(
                id=str(h.get("id", entity.get(self.id_field))), score=score, keyword_score=score,
                text=entity.get(self.text_field), metadata=dict(entity.get(self.metadata_field) or {}),
            ))
        return hits

    def _search_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        args = self._keyword_args(query, top_k, filter)
        if args is None:
            return []
        return self._keyword_hits(self._reloaded(self.client.search, **args))

    async def _asearch_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        aclient = self._async_client()
        if aclient is None:
            return await super()._asearch_keyword(query, top_k, filter)
        args = await asyncio.to_thread(self._keyword_args, query, top_k, filter)
        if args is None:
            return []
        return self._keyword_hits(await aclient.search(**args))

    # ------------------------------------------------------------------ count / delete
    def count(self) -> int:
        """How many records the collection holds (0 when it does not exist yet)."""
        if not self._ensure_loaded():
            return 0
        res = self._reloaded(
            self.client.query, self.collection, filter="", output_fields=["count(*)"],
            consistency_level=self.consistency_level, timeout=self.timeout,
        )
        return int(res[0]["count(*)"])

    async def acount(self) -> int:
        """Async twin of ``count``."""
        if not self._loaded and not await asyncio.to_thread(self._ensure_loaded):
            return 0
        aclient = self._async_client()
        if aclient is None:
            return await super().acount()
        res = await aclient.query(
            self.collection, filter="", output_fields=["count(*)"],
            consistency_level=self.consistency_level, timeout=self.timeout,
        )
        return int(res[0]["count(*)"])

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id; missing ids are ignored."""
        id_list = check_ids(ids)
        if not id_list or not self._ensure_loaded():
            return
        self._unflushed = True
        self.client.delete(self.collection, ids=id_list, timeout=self.timeout)

    async def adelete(self, ids: Sequence[str]) -> None:
        """Async twin of ``delete``."""
        id_list = check_ids(ids)
        if not id_list:
            return
        if not self._loaded and not await asyncio.to_thread(self._ensure_loaded):
            return
        self._unflushed = True
        aclient = self._async_client()
        if aclient is None:
            await asyncio.to_thread(self.client.delete, self.collection, ids=id_list, timeout=self.timeout)
            return
        await aclient.delete(self.collection, ids=id_list, timeout=self.timeout)

    def drop(self) -> None:
        """Drop the collection (all its data). The next write creates it again."""
        self.client.drop_collection(self.collection, timeout=self.timeout)
        self._dimension = None
        self._loaded = False
        self._bm25_field = None
        self._compact_index = None


__all__ = [
    "BM25_SINCE", "DEFAULT_ANALYZER", "HNSW_SQ_SINCE", "INT8_INDEXES", "IVF_NPROBE", "MAX_TOPK", "METRICS", "PROP_DIMENSION",
    "PROP_METRIC", "PROP_MODEL", "PROP_PRECISION", "PROP_VERSION", "SPACE_CARD_PROPERTY", "VARCHAR_MAX", "MilvusSettings",
    "MilvusStore", "bm25_supported", "collection_dimension", "filter_expression", "int8_index", "milvus_rows",
]
