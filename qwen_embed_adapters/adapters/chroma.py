"""Chroma: a registered ``EmbeddingFunction`` that survives a restart, a collection helper that keeps
one dimension per collection, and ``ChromaStore`` with the shape the other stores share.

    import chromadb
    from qwen_embed_adapters import RemoteEmbedder
    from qwen_embed_adapters.adapters.chroma import get_or_create_collection

    emb = RemoteEmbedder("http://localhost:30000/v1", dimensions=512)
    col = get_or_create_collection(chromadb.PersistentClient("./db"), "docs", emb)
    col.add(ids=["a", "b"], documents=["北京是中国首都", "Paris is the capital of France"])
    col.query(query_texts=["capital of China"], n_results=1)   # the query gets Qwen3's instruction

Chroma persists the function's ``name()`` and ``get_config()`` with the collection and rebuilds the
function with ``build_from_config`` when the collection is opened without one; importing this module
registers the function, so a new process only needs ``import qwen_embed_adapters.adapters.chroma``.
The persisted configuration is ``embedder.to_config()``: for a key it holds only the name of the
environment variable, never the key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast
from urllib.parse import urlsplit

import numpy as np

from .. import models
from ..config import embedder_from_config
from ..embedder import Embedder
from ..errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
)
from ..retrieval import KeywordIndex
from ..settings import check_bool, check_str
from ..space import DEFAULT_TOLERANCE, SpaceCard
from ..vectors import as_text_list
from .base import Hit, StoreSettings, VectorStore, check_ids

if TYPE_CHECKING:
    from chromadb.api import AsyncClientAPI, ClientAPI
    from chromadb.api.models.AsyncCollection import AsyncCollection
    from chromadb.api.models.Collection import Collection

logger = logging.getLogger(__name__)

#: The name under which the function is registered with Chroma and persisted with each collection.
EF_NAME = "qwen-embed-adapters"
#: Collection metadata keys recording what created the collection.
META_MODEL = "qwen_embed_model"
META_DIMENSION = "qwen_embed_dimension"
#: ... and the space card (qwen_embed_adapters.space): the probe vectors, about 6 KB of JSON.
META_SPACE_CARD = "qwen_embed_space_card"
#: Version of the persisted ``get_config()`` layout.
CONFIG_VERSION = 1
#: The folder inside a PersistentClient's directory holding each collection's keyword index (by collection id).
KEYWORDS_DIR = "qwen-embed-keywords"

# The keyword index of each collection this process searched by keyword, by collection id (a UUID): stores
# opened on the same collection share it, so one store's writes reach another's keyword search.
_keyword_indexes: dict[str, KeywordIndex] = {}
_keyword_lock = threading.Lock()

_D = TypeVar("_D")

try:
    from chromadb.api.types import Documents, EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function

    _CHROMA_IMPORT_ERROR: ImportError | None = None
except ImportError as _exc:  # chromadb is an optional extra: the module imports, using it raises
    _CHROMA_IMPORT_ERROR = _exc
    Documents = list  # type: ignore[misc,assignment]

    class EmbeddingFunction(Generic[_D]):  # type: ignore[no-redef]
        """Stand-in base class when chromadb is not installed."""

    def register_embedding_function(ef_class: Any = None) -> Any:  # type: ignore[no-redef]
        return ef_class


def _require_chromadb(feature: str) -> None:
    if _CHROMA_IMPORT_ERROR is not None:
        raise MissingDependencyError("chromadb", "chroma", feature)


# Chroma rebuilds the function from its config on every add/query of a collection opened without a
# function (and again inside create to test ``is_legacy``), so ``build_from_config`` must be cheap and
# must not open a new HTTP client or load a model each time: it returns a live or cached function.
_LIVE: weakref.WeakValueDictionary[str, QwenEmbeddingFunction] = weakref.WeakValueDictionary()
_BUILT: OrderedDict[str, QwenEmbeddingFunction] = OrderedDict()
_BUILT_MAX = 16
_CACHE_LOCK = threading.Lock()


def _config_key(embedder_config: Mapping[str, Any]) -> str:
    return json.dumps(embedder_config, sort_keys=True, default=str)


def _scrub_config(config: dict[str, Any]) -> dict[str, Any]:
    """Drop anything that looks like a secret value; keep ``*_env`` names (they name a variable)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        low = k.lower()
        if any(s in low for s in ("api_key", "token", "secret", "password")) and not low.endswith("_env"):
            continue
        out[k] = v
    return out


def _canonical_model(model: str) -> str:
    """``Qwen/Qwen3-Embedding-0.6B``, ``qwen3-embedding-0.6b`` and a served name compare equal."""
    info = models.lookup(model)
    if info is not None:
        return info.name.lower()
    return model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()


def same_model(a: str, b: str) -> bool:
    """True when two model names denote the same model (any common spelling of a Qwen3 model)."""
    return _canonical_model(a) == _canonical_model(b)


@register_embedding_function
class QwenEmbeddingFunction(EmbeddingFunction[Documents]):  # type: ignore[misc]
    """A Chroma ``EmbeddingFunction`` over any qwen_embed_adapters ``Embedder``.

    ``add(documents=...)`` gets document vectors; ``query(query_texts=...)`` goes through
    ``embed_query`` and gets the Qwen3 query instruction. Vectors are float32 and unit-length, so the
    default space is cosine.

    >>> import chromadb  # doctest: +SKIP
    >>> from qwen_embed_adapters.testing import FakeEmbedder  # doctest: +SKIP
    >>> ef = QwenEmbeddingFunction(FakeEmbedder(dimensions=64))  # doctest: +SKIP
    >>> col = chromadb.EphemeralClient().create_collection("docs", embedding_function=ef)  # doctest: +SKIP
    """

    def __init__(self, embedder: Embedder) -> None:
        _require_chromadb("QwenEmbeddingFunction")
        if isinstance(embedder, QwenEmbeddingFunction):
            embedder = embedder.embedder
        if not isinstance(embedder, Embedder):
            raise TypeError(f"embedder must be a qwen_embed_adapters Embedder, got {type(embedder).__name__}")
        self.embedder = embedder
        self._key = _config_key(_scrub_config(embedder.to_config()))
        with _CACHE_LOCK:
            _LIVE[self._key] = self  # the newest function the caller made wins

    # ---------------------------------------------------------------- embedding
    def __call__(self, input: Documents) -> list[np.ndarray]:
        """Embed documents (no instruction): one float32 vector per input, in order."""
        return list(self.embedder.embed_documents(as_text_list(input, what="documents")))

    def embed_query(self, input: Documents) -> list[np.ndarray]:
        """Embed queries with the embedder's query instruction (Chroma calls this for ``query_texts``)."""
        return list(self.embedder.embed_queries(as_text_list(input, what="queries")))

    # ---------------------------------------------------------------- protocol
    @staticmethod
    def name() -> str:
        """The registered name, persisted with each collection."""
        return EF_NAME

    def default_space(self) -> str:  # type: ignore[override]
        """Unit vectors: cosine."""
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        """All three rank unit vectors the same way."""
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        """What Chroma persists: the embedder's config (an env var NAME for a key, never the key)."""
        return {
            "version": CONFIG_VERSION,
            "embedder": _scrub_config(self.embedder.to_config()),
            "model": self.embedder.model,
            "dimension": self.embedder.dimension_if_known,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> QwenEmbeddingFunction:
        """Rebuild the function from ``get_config()`` output (in this or a new process).

        Returns a live function with the same embedder config when one exists, so Chroma's repeated
        rebuilds do not open new clients or reload a model.
        """
        QwenEmbeddingFunction.validate_config(config)
        emb_cfg = dict(config["embedder"])
        key = _config_key(emb_cfg)
        with _CACHE_LOCK:
            found = _LIVE.get(key) or _BUILT.get(key)
            if found is not None:
                if key in _BUILT:
                    _BUILT.move_to_end(key)
                return found
        ef = QwenEmbeddingFunction(embedder_from_config(emb_cfg))
        with _CACHE_LOCK:
            _BUILT[key] = ef
            while len(_BUILT) > _BUILT_MAX:
                _BUILT.popitem(last=False)[1].embedder.close()
        return ef

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Check the shape of a persisted config."""
        if not isinstance(config, dict) or not isinstance(config.get("embedder"), dict):
            raise ConfigurationError(
                f"{EF_NAME}: a config is a dict with an 'embedder' dict, got {config!r:.200}"
            )
        if "engine" not in config["embedder"]:
            raise ConfigurationError(f"{EF_NAME}: the embedder config has no 'engine': {config!r:.200}")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Refuse a change of model or dimension: the collection's vectors would stop being comparable."""
        old_model, new_model = _config_model(old_config), _config_model(new_config)
        if old_model and new_model and not same_model(old_model, new_model):
            raise ConfigurationError(
                f"{EF_NAME}: the model cannot change on an existing collection "
                f"({old_model!r} -> {new_model!r}); create a new collection and re-embed"
            )
        old_dim, new_dim = _config_dimension(old_config), _config_dimension(new_config)
        if old_dim is not None and new_dim is not None and old_dim != new_dim:
            raise DimensionMismatchError(
                old_dim, new_dim, "embedding function config", "the dimension cannot change on an existing collection"
            )

    def __repr__(self) -> str:
        return f"QwenEmbeddingFunction({self.embedder!r})"


def _config_model(config: Mapping[str, Any] | None) -> str | None:
    if not isinstance(config, Mapping):
        return None
    emb = config.get("embedder")
    model = config.get("model") or (emb.get("model") if isinstance(emb, Mapping) else None)
    return model if isinstance(model, str) and model else None


def _config_dimension(config: Mapping[str, Any] | None) -> int | None:
    if not isinstance(config, Mapping):
        return None
    emb = config.get("embedder")
    for value in (config.get("dimension"), emb.get("dimensions") if isinstance(emb, Mapping) else None):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


# ==================================================================== collections
def get_or_create_collection(
    client: ClientAPI,
    name: str,
    embedder: Embedder | QwenEmbeddingFunction,
    metadata: Mapping[str, Any] | None = None,
    *,
    strict_model: bool = True,
    space_check: str = "adopt",
    space_tolerance: float = DEFAULT_TOLERANCE,
    **kwargs: Any,
) -> Collection:
    """Open or create a collection bound to ``embedder``, one dimension per collection and one vector space.

    A new collection gets the function, the cosine space and ``qwen_embed_model`` /
    ``qwen_embed_dimension`` in its metadata (besides ``metadata``). An existing one is checked
    before anything is written: a recorded dimension (or, for a collection made elsewhere, the
    function config Chroma persisted, else a stored vector) that differs from the embedder's raises
    DimensionMismatchError; another recorded model raises ConfigurationError (a warning with
    ``strict_model=False``). A collection persisted with another named embedding function (e.g.
    ``openai``) raises ConfigurationError. ``kwargs`` go to Chroma's ``get_or_create_collection``
    (``configuration=...``) when the collection is created.

    The collection's space card (metadata ``META_SPACE_CARD``, the key ``ChromaStore`` uses) is checked here,
    before the collection is returned: another vector space of the same width raises
    VectorSpaceMismatchError naming the worst probe; a collection without a card gets the embedder's
    (``space_check`` "adopt"; "strict" refuses one holding vectors; "off" skips). Writes made later through
    the returned collection are Chroma's own and are not checked again (docs/space.md).

    Works with ``EphemeralClient``, ``PersistentClient`` and ``HttpClient``.
    """
    col = _get_or_create_collection(client, name, embedder, metadata, strict_model=strict_model, **kwargs)
    ensure_collection_space(col, embedder, space_check=space_check, tolerance=space_tolerance)
    return col


def collection_card(col: Collection) -> str | None:
    """The space card JSON kept in a Chroma collection's metadata (``META_SPACE_CARD``), or None."""
    card = (col.metadata or {}).get(META_SPACE_CARD)
    return card if isinstance(card, str) and card else None


def record_collection_card(col: Collection, card: str) -> None:
    """Keep ``card`` in the collection's metadata (the other keys stay)."""
    # modify() replaces the metadata and refuses any "hnsw:" key (the distance lives in the configuration)
    meta = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
    col.modify(metadata={**meta, META_SPACE_CARD: card})


def ensure_collection_space(
    col: Collection, embedder: Embedder | QwenEmbeddingFunction, *, space_check: str = "adopt",
    tolerance: float = DEFAULT_TOLERANCE,
) -> SpaceCard | None:
    """Check ``embedder`` against the space card in a Chroma collection's metadata, or record its card there
    (see ``adapters/card.py``: ``prove_card``). Any Chroma collection object works: one from
    ``get_or_create_collection``, a langchain-chroma ``Chroma``'s ``_collection``, a LlamaIndex
    ``ChromaVectorStore``'s."""
    from .card import prove_card

    emb = embedder.embedder if isinstance(embedder, QwenEmbeddingFunction) else embedder
    return prove_card(lambda: collection_card(col), lambda text: record_collection_card(col, text), emb, col.name,
                      space_check=space_check, tolerance=tolerance, holds_data=lambda: col.count() > 0)


def _get_or_create_collection(
    client: ClientAPI,
    name: str,
    embedder: Embedder | QwenEmbeddingFunction,
    metadata: Mapping[str, Any] | None = None,
    *,
    strict_model: bool = True,
    **kwargs: Any,
) -> Collection:
    _require_chromadb("get_or_create_collection")
    from chromadb.errors import NotFoundError

    ef = embedder if isinstance(embedder, QwenEmbeddingFunction) else QwenEmbeddingFunction(embedder)
    emb = ef.embedder
    dim = emb.dimension  # a remote embedder of unknown width learns it with one request here
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        existing = client.get_collection(name=name, embedding_function=None)
    except NotFoundError:
        existing = None
    if existing is None:
        meta = {**(metadata or {}), META_MODEL: emb.model, META_DIMENSION: dim}
        # get_or_create, not create: another process may create it between our get and now.
        col = client.get_or_create_collection(
            name=name, embedding_function=cast(Any, ef), metadata=meta, **kwargs
        )
        if (col.metadata or {}).get(META_DIMENSION) == dim and (col.metadata or {}).get(META_MODEL) == emb.model:
            logger.info("chroma: created collection %r (%s, %d-d)", name, emb.model, dim)
            return col
        existing = client.get_collection(name=name, embedding_function=None)
    return _check_and_bind(client, existing, ef, dim, strict_model)


def _persisted_ef(col: Collection) -> dict[str, Any] | None:
    cfg = (col.configuration_json or {}).get("embedding_function")
    return cfg if isinstance(cfg, dict) else None


def _check_and_bind(
    client: ClientAPI, col: Collection, ef: QwenEmbeddingFunction, dim: int, strict_model: bool
) -> Collection:
    name = col.name
    emb = ef.embedder
    meta = col.metadata or {}
    persisted = _persisted_ef(col)
    ef_name = persisted.get("name") if persisted and persisted.get("type") == "known" else None
    ours = ef_name == EF_NAME
    if ef_name not in (None, EF_NAME, "default"):
        raise ConfigurationError(
            f"collection {name!r} was created with the {ef_name!r} embedding function; its vectors come "
            f"from another model. Use a new collection for {emb.model!r}, or open it with Chroma directly"
        )
    recorded_model = meta.get(META_MODEL)
    recorded_dim = meta.get(META_DIMENSION)
    source = "recorded in its metadata"
    if recorded_dim is None and ours:
        recorded_dim = _config_dimension(persisted.get("config") if persisted else None)
        recorded_model = recorded_model or _config_model(persisted.get("config") if persisted else None)
        source = "from its persisted embedding function config"
    if recorded_dim is not None:
        if int(recorded_dim) != dim:
            raise DimensionMismatchError(
                int(recorded_dim), dim, name,
                f"{source}: model {recorded_model!r}; the embedder {emb.model!r} gives {dim}-d vectors",
            )
    stored = _stored_width(col)
    if stored is not None and stored != dim:
        raise DimensionMismatchError(
            stored, dim, name, f"width of a stored vector; the embedder {emb.model!r} gives {dim}-d vectors"
        )
    if isinstance(recorded_model, str) and recorded_model and not same_model(recorded_model, emb.model):
        msg = (
            f"collection {name!r} was created with model {recorded_model!r}, the embedder uses "
            f"{emb.model!r}; vectors of two models in one collection are not comparable"
        )
        if strict_model:
            raise ConfigurationError(msg + " (pass strict_model=False if they are the same model)")
        logger.warning("%s", msg)
    if recorded_dim is None and not ours:
        logger.warning(
            "chroma: collection %r was not created by qwen-embed-adapters (embedding function %r); "
            "its %s are assumed to come from %r",
            name, ef_name or "none", "vectors" if stored is not None else "future vectors", emb.model,
        )
    if ours:
        return client.get_collection(name=name, embedding_function=cast(Any, ef))
    # Chroma refuses a named function on a collection persisted with "default" (or none), although
    # the function is ours to choose: bind it the way get_collection does, minus that check.
    return type(col)(client=col._client, model=col._model, embedding_function=cast(Any, ef))


def _stored_width(col: Collection) -> int | None:
    got = col.get(limit=1, include=["embeddings"])  # type: ignore[list-item]
    embeddings = got.get("embeddings")
    if embeddings is None or len(embeddings) == 0:
        return None
    return int(np.asarray(embeddings[0]).shape[-1])


def collection_dimension(col: Collection) -> int | None:
    """The dimension a collection holds: recorded by us, else from a stored vector, else None."""
    recorded = (col.metadata or {}).get(META_DIMENSION)
    if recorded is not None:
        return int(recorded)
    return _stored_width(col)


# ==================================================================== the shared store shape
#: Chroma's collection names: 3-512 characters of [a-zA-Z0-9._-], starting and ending with a letter or digit.
_CHROMA_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")


def chroma_client(uri: str) -> ClientAPI:
    """``chromadb.HttpClient`` for an http(s) URL, else ``chromadb.PersistentClient(path=uri)``."""
    _require_chromadb("the chroma store")
    import chromadb

    if uri.startswith(("http://", "https://")):
        parts = urlsplit(uri)
        return chromadb.HttpClient(host=parts.hostname or "localhost",
                                   port=parts.port or (443 if parts.scheme == "https" else 8000),
                                   ssl=parts.scheme == "https")
    return chromadb.PersistentClient(path=uri)


def _client_uri(client: Any) -> str | None:
    """Where a Chroma client keeps its data, as ``chroma_client`` takes it: a server's http(s) URL or a
    persistent client's directory; None for an in-memory client (or one without settings)."""
    try:
        settings = client.get_settings()
    except Exception:
        return None
    if str(getattr(settings, "chroma_api_impl", "")).endswith("fastapi.FastAPI"):
        scheme = "https" if settings.chroma_server_ssl_enabled else "http"
        return f"{scheme}://{settings.chroma_server_host}:{int(settings.chroma_server_http_port or 8000)}"
    if getattr(settings, "is_persistent", False) and getattr(settings, "persist_directory", None):
        return str(settings.persist_directory)
    return None


@dataclasses.dataclass(frozen=True)
class ChromaSettings(StoreSettings):
    """Everything that opens a ``ChromaStore`` again (``{"store": "chroma", **fields}`` is its spec):
    ``uri`` is a server's http(s) URL or a ``PersistentClient`` directory. Extra keyword arguments for
    Chroma's ``get_or_create_collection`` (``configuration=...``) are not settings: they apply only when
    the collection is created, and Chroma keeps them with it."""

    uri: str | None = None
    collection: str = "documents"
    metadata: Mapping[str, Any] | None = None
    strict_model: bool = True
    use_async_client: bool = True

    def validate(self) -> None:
        check_str("uri", self.uri, optional=True)
        if self.uri and "://" in self.uri and (urlsplit(self.uri).username or urlsplit(self.uri).password):
            raise ConfigurationError("credentials do not belong in a Chroma uri: pass a client with its headers")
        if not isinstance(self.collection, str) or not _CHROMA_NAME.fullmatch(self.collection):
            raise ConfigurationError(
                "Chroma takes collection names of 3-512 characters from [a-zA-Z0-9._-], starting and ending "
                f"with a letter or digit; got {self.collection!r}"
            )
        if self.metadata is not None and not isinstance(self.metadata, Mapping):
            raise ConfigurationError(f"metadata must be a dict, got {type(self.metadata).__name__}")
        check_bool("strict_model", self.strict_model)
        check_bool("use_async_client", self.use_async_client)

    def missing_location(self) -> str | None:
        return None if self.uri else "needs 'uri' (a Chroma server's http(s) URL or a PersistentClient directory)"


class ChromaStore(VectorStore):
    """A Chroma collection with the shape the Milvus, Pinecone and FAISS stores share.

    ``add_texts`` embeds with ``embedder`` and upserts float32 vectors (content-hash ids unless
    given); ``search`` embeds the query with the Qwen3 instruction and returns ``Hit`` objects whose
    score is the cosine similarity. The collection is created (or checked) on first use by
    ``get_or_create_collection``, so a different dimension raises before anything is written.

    The async twins (``aadd_texts``, ``asearch``, ``acount``, ``adelete``) talk to a Chroma server
    through ``chromadb.AsyncHttpClient``: over an ``HttpClient`` one is opened on the same host, port,
    headers, tenant and database in each event loop that uses the store (``async_client=`` passes
    one made by ``await chromadb.AsyncHttpClient(...)`` instead). Over an embedded client
    (``PersistentClient``, ``EphemeralClient``) they run the sync calls on worker threads.

    >>> store = ChromaStore(chromadb.PersistentClient("./db"), "docs", embedder)  # doctest: +SKIP
    >>> store.add_texts(["北京是中国首都", "Paris is the capital of France"])  # doctest: +SKIP
    >>> store.search("capital of China", top_k=1)[0].text  # doctest: +SKIP
    '北京是中国首都'
    """

    settings_class: ClassVar[type[ChromaSettings]] = ChromaSettings
    precision_note: ClassVar[str] = (
        "Chroma's HNSW index keeps float32 vectors and its collection configuration has no quantization "
        "setting (docs.trychroma.com, 'Configure': space, ef_construction, ef_search, max_neighbors, ...)"
    )
    kind: ClassVar[str] = "chroma"
    settings: ChromaSettings
    keyword_support: ClassVar[str] = "client"
    keyword_note: ClassVar[str] = (
        "Chroma's where_document matches substrings but does not rank (its BM25 is Chroma Cloud's): BM25 "
        "(bm25s) over retrieval.tokenize terms, kept in a PersistentClient's directory, else built once per "
        "process from the collection's documents"
    )

    def __init__(
        self,
        client: ClientAPI | str,
        name: str,
        embedder: Embedder,
        *,
        metadata: Mapping[str, Any] | None = None,
        strict_model: bool = True,
        async_client: AsyncClientAPI | None = None,
        use_async_client: bool = True,
        precision: str | None = None,
        rescore: int = 4,
        **collection_kwargs: Any,
    ) -> None:
        _require_chromadb("ChromaStore")
        super().__init__(embedder)
        uri = client if isinstance(client, str) else None
        self.settings = ChromaSettings(uri=uri, collection=name, metadata=dict(metadata) if metadata else None,
                                       strict_model=strict_model, use_async_client=use_async_client,
                                       precision=precision, rescore=rescore)
        if isinstance(client, str):
            client = chroma_client(client)
        else:
            found = _client_uri(client)
            if found is not None:
                self.settings = self.settings.replace(uri=found)
        self.client: ClientAPI = client
        self._name = name
        self._check_precision()
        self._metadata = dict(metadata) if metadata else None
        self._strict_model = strict_model
        self._collection_kwargs = collection_kwargs
        self._collection: Collection | None = None
        self._lock = threading.Lock()
        self._user_aclient = async_client
        self._use_async_client = use_async_client

    @property
    def name(self) -> str:
        """The collection name."""
        return self._name

    @property
    def collection(self) -> Collection:
        """The Chroma collection (created or checked on first access), bound to the embedder."""
        self.ensure_dimension()
        assert self._collection is not None
        return self._collection

    def _read_card(self) -> str | None:
        """The space card, kept in the collection metadata under ``META_SPACE_CARD``."""
        card = (self.collection.metadata or {}).get(META_SPACE_CARD)
        return card if isinstance(card, str) and card else None

    def _write_card(self, card: str) -> None:
        col = self.collection
        # modify() replaces the metadata and refuses any "hnsw:" key (the distance lives in the configuration)
        meta = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
        col.modify(metadata={**meta, META_SPACE_CARD: card})

    def ensure_dimension(self) -> int:
        """Create the collection if missing, else check its dimension; once per store."""
        with self._lock:
            if self._collection is None:
                # the store checks its space card itself (ensure_space, under its own settings)
                self._collection = _get_or_create_collection(
                    self.client, self._name, self.embedder, self._metadata,
                    strict_model=self._strict_model, **self._collection_kwargs,
                )
        return self.embedder.dimension

    def _validate_batch(self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        from chromadb.api.types import validate_metadata

        for i, m in enumerate(metadatas):
            if not m:
                continue
            try:
                validate_metadata(m)
            except (ValueError, TypeError) as exc:
                raise InvalidInputError(
                    f"metadatas[{i}] (id {ids[i]!r}) is not valid Chroma metadata: {exc}",
                    index=i, item_id=ids[i],
                ) from None

    # ---------------------------------------------------------------- requests (shared by both paths)
    def _upsert_args(
        self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if vectors.shape[1] != self.embedder.dimension:  # pragma: no cover - the embedder guarantees it
            raise DimensionMismatchError(self.embedder.dimension, vectors.shape[1], self._name)
        return {
            "ids": ids,
            "embeddings": np.ascontiguousarray(vectors, dtype=np.float32),
            "documents": texts,
            # Chroma refuses empty dicts; None means "no metadata".
            "metadatas": [m or None for m in metadatas],
        }

    @staticmethod
    def _query_args(vector: np.ndarray, top_k: int, filter: Any) -> dict[str, Any]:
        return {
            "query_embeddings": [np.asarray(vector, dtype=np.float32)],
            "n_results": top_k,
            "where": filter,
            "include": ["documents", "metadatas", "distances"],
        }

    @staticmethod
    def _hits(res: Any, col: Any) -> list[Hit]:
        ids: list[str] = list(res["ids"][0]) if res["ids"] else []
        docs = _first_row(res, "documents", len(ids), None)
        metas = _first_row(res, "metadatas", len(ids), None)
        dists = _first_row(res, "distances", len(ids), 0.0)
        to_score = _score_fn(_space(col))
        return [
            Hit(id=i, score=to_score(float(d)), text=t, metadata=dict(m or {}))
            for i, t, m, d in zip(ids, docs, metas, dists, strict=True)
        ]

    # ---------------------------------------------------------------- sync
    def _write(
        self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        keywords = self._keywords_if_kept()
        self.collection.upsert(**self._upsert_args(ids, vectors, texts, metadatas))
        if keywords is not None:
            keywords.add(ids, texts)

    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        col = self.collection
        return self._hits(col.query(**self._query_args(vector, top_k, filter)), col)

    def count(self) -> int:
        """How many records the collection holds."""
        return int(self.collection.count())

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the collection already holds (bulk ingestion skips them on a re-run)."""
        id_list = check_ids(ids)
        if not id_list:
            return set()
        found = self.collection.get(ids=id_list, include=[])
        return set(found["ids"])

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id (missing ids are ignored)."""
        id_list = check_ids(ids)
        if id_list:
            keywords = self._keywords_if_kept()
            self.collection.delete(ids=id_list)
            if keywords is not None:
                keywords.delete(id_list)

    # ---------------------------------------------------------------- keyword side (client-side BM25)
    def _keyword_path(self) -> Path | None:
        """Where a PersistentClient's collection keeps its keyword index; None for a server or in memory."""
        uri = self.settings.uri
        if not uri or "://" in uri:
            return None
        return Path(uri) / KEYWORDS_DIR / f"{self.collection.id}.jsonl"

    def _keywords_if_kept(self) -> KeywordIndex | None:
        """The collection's keyword index when one is kept (built in this process, or saved on disk)."""
        index = _keyword_indexes.get(str(self.collection.id))
        if index is None:
            path = self._keyword_path()
            if path is not None and path.exists():
                return self.build_keyword_index()
        return index

    def build_keyword_index(self) -> KeywordIndex:
        """The BM25 index of the collection's documents, once per process per collection: read from the
        PersistentClient's directory when saved there and still the collection's size, else built from the
        collection's documents (and, for a PersistentClient, saved there). This process's writes and deletes
        keep it up to date (appended to the saved file); another process's writes are not seen until the
        count differs when a process opens it."""
        col = self.collection
        key = str(col.id)
        with _keyword_lock:
            index = _keyword_indexes.get(key)
            if index is not None:
                return index
            path = self._keyword_path()
            count = int(col.count())
            if path is not None and path.exists():
                index = KeywordIndex.load(path, journal=True)
                if len(index) != count:
                    logger.warning("%s: the saved keyword index holds %d ids, the collection %d; rebuilding it",
                                   self._name, len(index), count)
                    index = None
            if index is None:
                index = KeywordIndex()
                for ids, docs in _documents(col):
                    index.add(ids, docs)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    index.journal = path
                    index.save(path)
            _keyword_indexes[key] = index
            return index

    def _search_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        index = self.build_keyword_index()
        col = self.collection
        keep = None if filter is None else set(col.get(where=filter, include=[])["ids"])
        found = index.search(query, top_k, None if keep is None else keep.__contains__)
        if not found:
            return []
        got = col.get(ids=[i for i, _ in found], include=["documents", "metadatas"])
        none: list[Any] = [None] * len(got["ids"])
        docs: list[Any] = list(got.get("documents") or none)
        metas: list[Any] = list(got.get("metadatas") or none)
        rows = {i: (d, m) for i, d, m in zip(got["ids"], docs, metas, strict=True)}
        return [Hit(id=i, score=s, text=rows[i][0], metadata=dict(rows[i][1] or {}), keyword_score=s)
                for i, s in found if i in rows]

    # ---------------------------------------------------------------- async (AsyncHttpClient)
    def _async_settings(self) -> dict[str, Any] | None:
        """Where the sync client talks to, when it is an HttpClient; None for an embedded client."""
        try:
            settings = self.client.get_settings()
        except Exception:  # a client without settings: no async path
            return None
        if not str(getattr(settings, "chroma_api_impl", "")).endswith("fastapi.FastAPI"):
            return None
        return {
            "host": settings.chroma_server_host,
            "port": int(settings.chroma_server_http_port or 8000),
            "ssl": bool(settings.chroma_server_ssl_enabled),
            "headers": settings.chroma_server_headers,
            "tenant": getattr(self.client, "tenant", None) or "default_tenant",
            "database": getattr(self.client, "database", None) or "default_database",
        }

    async def _open_async_collection(self) -> tuple[Any, AsyncCollection]:
        import chromadb

        await self.aensure_dimension()  # the one-time create/check, through the sync client
        aclient = self._user_aclient
        if aclient is None:
            where = self._async_settings()
            assert where is not None
            aclient = await chromadb.AsyncHttpClient(**where)
        return aclient, await aclient.get_collection(self._name, embedding_function=None)

    async def _acollection(self) -> AsyncCollection | None:
        """The collection through the running loop's async client, or None to use worker threads."""
        if not self._use_async_client or (self._user_aclient is None and self._async_settings() is None):
            return None
        pending = self._aclients.get(lambda: asyncio.ensure_future(self._open_async_collection()))
        try:
            _, col = await asyncio.shield(pending)
        except BaseException:
            if pending.done():  # a failed open is not cached: the next call tries again
                self._aclients.pop_current()
            raise
        return col

    async def _close_async_client(self, client: Any) -> None:
        # ``client`` is the pending open; AsyncFastAPI keeps one httpx client per loop in a class-level
        # dict and never drops it, so the running loop's one is closed here.
        if not client.done() or client.cancelled() or client.exception() is not None:
            client.cancel()
            return
        aclient, _ = client.result()
        if aclient is self._user_aclient:
            return
        clients = getattr(getattr(aclient, "_server", None), "_clients", None)
        http = clients.pop(hash(asyncio.get_running_loop()), None) if isinstance(clients, dict) else None
        if http is not None:
            await http.aclose()

    async def _awrite(
        self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        col = await self._acollection()
        if col is None:
            await super()._awrite(ids, vectors, texts, metadatas)
            return
        keywords = self._keywords_if_kept()
        await col.upsert(**self._upsert_args(ids, vectors, texts, metadatas))
        if keywords is not None:
            keywords.add(ids, texts)

    async def _asearch_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        col = await self._acollection()
        if col is None:
            return await super()._asearch_vector(vector, top_k, filter)
        return self._hits(await col.query(**self._query_args(vector, top_k, filter)), col)

    async def acount(self) -> int:
        """Async twin of ``count``."""
        col = await self._acollection()
        if col is None:
            return await super().acount()
        return int(await col.count())

    async def adelete(self, ids: Sequence[str]) -> None:
        """Async twin of ``delete``."""
        id_list = check_ids(ids)
        if not id_list:
            return
        col = await self._acollection()
        if col is None:
            await super().adelete(id_list)
            return
        keywords = self._keywords_if_kept()
        await col.delete(ids=id_list)
        if keywords is not None:
            keywords.delete(id_list)

    @classmethod
    def from_settings(cls, settings: ChromaSettings, embedder: Embedder) -> ChromaStore:
        """Open the store ``settings`` describe (``HttpClient`` or ``PersistentClient`` from ``uri``)."""
        assert settings.uri is not None  # from_config checked the location
        return cls(settings.uri, settings.collection, embedder, metadata=settings.metadata,
                   strict_model=settings.strict_model, use_async_client=settings.use_async_client,
                   precision=settings.precision, rescore=settings.rescore)


def _documents(col: Collection, page: int = 1000) -> Iterator[tuple[list[str], list[str]]]:
    """The collection's ids and documents, a page at a time."""
    offset = 0
    while True:
        got = col.get(include=["documents"], limit=page, offset=offset)
        ids = list(got["ids"])
        if not ids:
            return
        none: list[Any] = [None] * len(ids)
        docs: list[Any] = list(got.get("documents") or none)
        yield ids, [d or "" for d in docs]
        offset += len(ids)


def _first_row(res: Any, key: str, n: int, fill: Any) -> list[Any]:
    rows = res.get(key)
    if not rows or rows[0] is None:
        return [fill] * n
    return list(rows[0])


def _space(col: Collection) -> str:
    cfg = col.configuration_json or {}
    for part in ("hnsw", "spann"):
        sub = cfg.get(part)
        if isinstance(sub, dict) and sub.get("space"):
            return str(sub["space"])
    return str((col.metadata or {}).get("hnsw:space", "l2"))


def _score_fn(space: str) -> Any:
    # Chroma returns distances; for unit vectors each maps back to the cosine similarity.
    if space == "l2":  # squared euclidean: |a-b|^2 = 2 - 2cos
        return lambda d: 1.0 - d / 2.0
    return lambda d: 1.0 - d  # cosine: 1 - cos; ip: 1 - a.b


__all__ = [
    "CONFIG_VERSION", "EF_NAME", "KEYWORDS_DIR", "META_DIMENSION", "META_MODEL", "META_SPACE_CARD", "ChromaSettings",
    "ChromaStore", "Documents", "EmbeddingFunction", "QwenEmbeddingFunction", "chroma_client", "collection_card",
    "collection_dimension", "ensure_collection_space", "get_or_create_collection", "record_collection_card",
    "register_embedding_function", "same_model",
]
