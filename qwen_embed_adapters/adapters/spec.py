"""The one store registry, and plain specs -> vector stores: ``store_from_spec(spec, embedder)``.

    from qwen_embed_adapters.adapters.spec import store_from_spec

    store = store_from_spec("milvus:///data/kb.db?collection=kb", embedder)      # Milvus Lite file
    store = store_from_spec("milvus+http://milvus:19530/kb", embedder)           # a Milvus server (+https too)
    store = store_from_spec("chroma+http://chroma:8000/docs", embedder)          # a Chroma server
    store = store_from_spec("chroma:///data/chroma/docs", embedder)              # PersistentClient(/data/chroma)
    store = store_from_spec("pinecone://kb-abc123.svc.pinecone.io?namespace=x", embedder)  # key: $PINECONE_API_KEY
    store = store_from_spec("faiss:///data/faiss-kb", embedder)                  # FaissStore(path=...)
    store = store_from_spec("postgresql://me@db:5432/rag?table=kb", embedder)    # password: ?password_env=VAR or libpq's own
    store = store_from_spec("pgvector:///data/pgdata?table=kb", embedder)        # starts the bundled PostgreSQL there
    store = store_from_spec("qdrant:///data/qdrant?collection=kb", embedder)     # Qdrant local mode on a folder
    store = store_from_spec("qdrant+http://qdrant:6333/kb", embedder)            # a Qdrant server (+https too)
    store = store_from_spec({"store": "milvus", "uri": "./kb.db", "collection": "kb"}, embedder)

``parse_store_spec`` turns either form into the plain dict (every setting filled in) that
``store_from_spec`` builds from, the same dict ``store.to_config()`` gives: JSON-safe, free of secrets, fit
to ship to another process. Its keys are the fields of the store's settings dataclass (``MilvusSettings``,
``ChromaSettings``, ``PineconeSettings``, ``FaissSettings``, ``PgVectorSettings``, ``QdrantSettings``). Credentials never go into a spec: a spec
names the environment variable that holds them (``token_env`` for Milvus, ``api_key_env`` for Pinecone,
default ``PINECONE_API_KEY``). URI query values are read as the setting's type
(``faiss:kb?hnsw_m=16``, ``milvus:kb.db?use_async_client=false``).

``STORES`` is the only place a store is declared: its store class (and through it its settings), its
URI parser, whether it is local to one process, how the width of a collection is read from the
database's own client object, and the CLI's ``--uri`` / ``--collection`` / extra flags for it. The CLI,
``ray.py`` and the framework wrappers read it. A relative path is written without slashes
(``milvus:kb.db``, ``faiss:indexes/kb``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..embedder import Embedder
    from .base import StoreSettings, VectorStore

_SECRET_KEYS = ("token", "api_key", "apikey", "key", "password", "secret")


@dataclass(frozen=True)
class CliFlag:
    """A store's own CLI flag: ``--flag VALUE`` sets the setting ``setting`` (its default, the setting's)."""

    flag: str
    setting: str
    help: str
    metavar: str | None = None


@dataclass(frozen=True)
class StoreKind:
    """One registered store.

    ``store_class`` imports the store's module (lazily: its SDK stays unimported until used) and returns
    its ``VectorStore`` class, whose ``settings_class`` gives the spec's keys and defaults and whose
    ``from_config`` builds it. ``from_uri`` turns a parsed URI into settings. ``dimension_of(handle,
    name=None, field=None)`` reads the vector width a database object holds (a Chroma collection, a
    ``MilvusClient`` and collection name, a Pinecone index), None when it holds none yet.
    """

    store_class: Callable[[], type[VectorStore]]
    from_uri: Callable[[SplitResult, str, dict[str, str]], dict[str, Any]]
    dimension_of: Callable[..., int | None] | None = None
    #: one process only (an in-memory index saved to a folder): Ray workers cannot write into it; a
    #: callable decides from the parsed spec (Qdrant: local mode is, a server is not)
    local_only: bool | Callable[[dict[str, Any]], bool] = False
    #: the CLI: which setting ``--uri`` fills and its default, which setting ``--collection`` fills
    uri_setting: str | None = None
    default_uri: str | None = None
    uri_help: str = ""
    collection_setting: str | None = None
    flags: tuple[CliFlag, ...] = ()
    #: ``qwen-embed demo``: (folder under the demo's directory, what it is) for a store needing no server
    embedded: tuple[str, str] | None = None
    #: a user name (never a password) may stand in the URI: libpq's ``postgresql://user@host/db``
    user_in_uri: bool = False
    #: the store this name stands for (``postgresql`` -> ``pgvector``); an alias is no ``--store`` choice
    alias_of: str | None = None

    @property
    def settings_class(self) -> type[StoreSettings]:
        cls = self.store_class().settings_class
        assert cls is not None, "a registered store declares its settings"
        return cls

    def defaults(self) -> dict[str, Any]:
        """Every setting with its default (None where a setting has no default)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self.settings_class):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
            else:
                out[f.name] = None
        return out


def redact_spec(spec: Any) -> str:
    """A spec as it may be shown: no user:password@, secret-looking query values masked."""
    if isinstance(spec, Mapping):
        return repr({k: ("***" if k.lower() in _SECRET_KEYS else v) for k, v in spec.items()})
    if not isinstance(spec, str):
        return repr(spec)
    try:
        parts = urlsplit(spec)
        netloc = parts.netloc.rpartition("@")[2]
        query = "&".join(
            f"{k}={'***' if k.lower() in _SECRET_KEYS else v}" for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparsable spec>"


def _bad(spec: Any, why: str) -> ConfigurationError:
    return ConfigurationError(f"bad store spec {redact_spec(spec)}: {why}")


# ---------------------------------------------------------------------------- URI helpers
def _local_path(parts: SplitResult) -> str:
    """``scheme:///abs/path`` -> /abs/path; ``scheme:rel/path`` or ``scheme://./rel`` -> a relative path."""
    if parts.netloc in ("", "localhost"):
        return parts.path
    if parts.netloc in (".", "..", "~"):
        return os.path.expanduser(parts.netloc + parts.path)
    raise ValueError(f"{parts.netloc!r} is a host, but this scheme takes a local path (scheme:///abs or scheme:rel)")


def _server_url(parts: SplitResult, transport: str) -> str:
    if not parts.hostname:
        raise ValueError("a server spec needs a host")
    return urlunsplit((transport, parts.netloc, "", "", ""))


def _one_segment(path: str) -> str | None:
    segs = [s for s in path.split("/") if s]
    if len(segs) > 1:
        raise ValueError(f"the path names one collection, got {path!r}")
    return segs[0] if segs else None


def _milvus_uri(parts: SplitResult, transport: str, query: dict[str, str]) -> dict[str, Any]:
    if transport in ("http", "https"):
        out: dict[str, Any] = {"uri": _server_url(parts, transport)}
        name = _one_segment(parts.path)
        if name:
            out["collection"] = name
        return {**out, **query}
    if transport:
        raise ValueError(f"milvus+{transport} is not a transport; use milvus+http or milvus+https")
    return {"uri": _local_path(parts), **query}


def _chroma_uri(parts: SplitResult, transport: str, query: dict[str, str]) -> dict[str, Any]:
    if transport in ("http", "https"):
        out: dict[str, Any] = {"uri": _server_url(parts, transport)}
        name = _one_segment(parts.path)
        if name:
            out["collection"] = name
        return {**out, **query}
    if transport:
        raise ValueError(f"chroma+{transport} is not a transport; use chroma+http or chroma+https")
    path = _local_path(parts).rstrip("/")
    if "collection" in query:  # the whole path is the directory
        return {"uri": path, **query}
    folder, _, name = path.rpartition("/")
    if not folder or not name:
        raise ValueError("chroma:///DIR/COLLECTION (or chroma:///DIR?collection=NAME) names a directory and a collection")
    return {"uri": folder, "collection": name, **query}


def _pinecone_uri(parts: SplitResult, transport: str, query: dict[str, str]) -> dict[str, Any]:
    if transport not in ("", "http", "https"):
        raise ValueError(f"pinecone+{transport} is not a transport; use pinecone:// (https) or pinecone+http")
    if parts.path.strip("/"):
        raise ValueError("pinecone://INDEX-HOST takes no path; the namespace goes in ?namespace=")
    return {"host": _server_url(parts, transport or "https"), **query}


def _faiss_uri(parts: SplitResult, transport: str, query: dict[str, str]) -> dict[str, Any]:
    if transport:
        raise ValueError("faiss:///DIR is a local folder; it has no transport")
    return {"path": _local_path(parts), **query}


def _postgresql_uri(parts: SplitResult, transport: str, query: dict[str, Any]) -> dict[str, Any]:
    if transport:
        raise ValueError("postgresql://USER@HOST:PORT/DB takes no +transport")
    if not parts.hostname and "host" not in query:
        raise ValueError("postgresql://USER@HOST:PORT/DB needs a host (or ?host=/socket/dir)")
    user = f"{parts.username}@" if parts.username else ""
    conninfo = urlunsplit(("postgresql", user + parts.netloc.rpartition("@")[2], parts.path, "", ""))
    for key in ("host", "sslmode"):  # libpq settings that stay in the conninfo
        if key in query:
            conninfo += ("&" if "?" in conninfo else "?") + f"{key}={query.pop(key)}"
    return {"conninfo": conninfo, **query}


def _pgvector_uri(parts: SplitResult, transport: str, query: dict[str, Any]) -> dict[str, Any]:
    if transport:
        raise ValueError("pgvector:///PGDATA is a local folder (the bundled server); use postgresql:// for a server")
    return {"pgdata": _local_path(parts), **query}


def _qdrant_uri(parts: SplitResult, transport: str, query: dict[str, Any]) -> dict[str, Any]:
    if transport in ("http", "https"):
        out: dict[str, Any] = {"location": _server_url(parts, transport)}
        name = _one_segment(parts.path)
        if name:
            out["collection"] = name
        return {**out, **query}
    if transport:
        raise ValueError(f"qdrant+{transport} is not a transport; use qdrant+http or qdrant+https")
    return {"location": _local_path(parts) or ":memory:", **query}


# ---------------------------------------------------------------------------- the stores
def _milvus() -> type[VectorStore]:
    from .milvus import MilvusStore

    return MilvusStore


def _chroma() -> type[VectorStore]:
    from .chroma import ChromaStore

    return ChromaStore


def _pinecone() -> type[VectorStore]:
    from .pinecone import PineconeStore

    return PineconeStore


def _faiss() -> type[VectorStore]:
    from .faiss import FaissStore

    return FaissStore


def _pgvector() -> type[VectorStore]:
    from .pgvector import PgVectorStore

    return PgVectorStore


def _qdrant() -> type[VectorStore]:
    from .qdrant import QdrantStore

    return QdrantStore


def _qdrant_local(spec: dict[str, Any]) -> bool:
    # local mode (":memory:" or a folder) lives in one client of one process; it locks the folder
    return not str(spec.get("location") or "").startswith(("http://", "https://"))


def _milvus_dimension(client: Any, name: str | None = None, field: str | None = None) -> int | None:
    from .milvus import collection_dimension

    return collection_dimension(client, name or "", field)


def _chroma_dimension(collection: Any, name: str | None = None, field: str | None = None) -> int | None:
    from .chroma import collection_dimension

    return collection_dimension(collection)


def _pinecone_dimension(index: Any, name: str | None = None, field: str | None = None) -> int | None:
    from .pinecone import index_dimension

    return index_dimension(index)


#: CLI flags of the settings every store has (``StoreSettings``' keyword-only fields: the space card)
COMMON_FLAGS: tuple[CliFlag, ...] = (
    CliFlag("--space-check", "space_check", "the space card check: adopt, strict or off (off is a foot-gun: "
            "docs/space.md)", "MODE"),
    CliFlag("--space-tolerance", "space_tolerance", "lowest per-probe cosine accepted as the collection's "
            "vector space", "COSINE"),
)

#: the store the CLI uses when none is named (``--store``, ``$QWEN_EMBED_STORE``)
DEFAULT_STORE = "milvus"

#: store name (the URI scheme before any ``+transport``, or the dict's ``"store"``) -> its kind.
STORES: dict[str, StoreKind] = {
    "milvus": StoreKind(
        _milvus, _milvus_uri, _milvus_dimension,
        uri_setting="uri", default_uri="./qwen_embed.db", collection_setting="collection",
        uri_help="milvus: a Milvus Lite .db path or http://host:19530", embedded=("demo.db", "Milvus Lite"),
    ),
    "chroma": StoreKind(
        _chroma, _chroma_uri, _chroma_dimension,
        uri_setting="uri", default_uri="./chroma_db", collection_setting="collection",
        uri_help="chroma: a directory or http://host:8000", embedded=("chroma", "persistent Chroma"),
    ),
    "pinecone": StoreKind(
        _pinecone, _pinecone_uri, _pinecone_dimension,
        uri_setting="controller_host", collection_setting="index", uri_help="pinecone: optional control-plane host",
        flags=(
            CliFlag("--namespace", "namespace", "pinecone namespace"),
            CliFlag("--pinecone-api-key-env", "api_key_env", "environment variable with the Pinecone key", "VAR"),
            CliFlag("--cloud", "cloud", "pinecone: cloud of a new serverless index"),
            CliFlag("--region", "region", "pinecone: region of a new index"),
        ),
    ),
    "faiss": StoreKind(
        _faiss, _faiss_uri, local_only=True, uri_setting="path", default_uri="./faiss_index",
        uri_help="faiss: a folder",
    ),
    "pgvector": StoreKind(
        _pgvector, _pgvector_uri, uri_setting="pgdata", default_uri="./pgdata", collection_setting="table",
        uri_help="pgvector: postgresql://user@host/db, or a folder for the bundled PostgreSQL",
    ),
    # postgresql:// (and postgres://) URIs are pgvector specs on a server
    "postgresql": StoreKind(_pgvector, _postgresql_uri, user_in_uri=True, alias_of="pgvector"),
    "postgres": StoreKind(_pgvector, _postgresql_uri, user_in_uri=True, alias_of="pgvector"),
    "qdrant": StoreKind(
        _qdrant, _qdrant_uri, local_only=_qdrant_local, uri_setting="location", default_uri="./qdrant_data", collection_setting="collection",
        uri_help="qdrant: a folder (local mode), :memory: or http://host:6333",
    ),
}


# ---------------------------------------------------------------------------- public
def _typed(field: dataclasses.Field[Any], raw: str) -> Any:
    """A URI query value as the setting's type (annotations are strings: ``int | None``)."""
    ann = str(field.type)
    if raw == "" and "None" in ann:
        return None
    if ann.startswith("bool"):
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{field.name}={raw!r} is not true or false")
    try:
        if ann.startswith("int"):
            return int(raw)
        if ann.startswith("float"):
            return float(raw)
        if ann.startswith("Mapping"):
            return json.loads(raw)
    except ValueError:
        raise ValueError(f"{field.name}={raw!r} is not {ann.split(' |')[0]}") from None
    return raw


def _dict_from_uri(spec: str) -> dict[str, Any]:
    try:
        parts = urlsplit(spec.strip())
    except ValueError as exc:
        raise _bad(spec, str(exc)) from None
    name, _, transport = parts.scheme.partition("+")
    if name not in STORES:
        raise _bad(spec, f"unknown store {name or spec!r}; expected one of {', '.join(STORES)} (as a URI scheme)")
    if parts.password or (parts.username and not STORES[name].user_in_uri):
        raise _bad(spec, "credentials do not belong in a spec: put them in an environment variable and name it "
                         "(?token_env=VAR for milvus, ?api_key_env=VAR for pinecone and qdrant, "
                         "?password_env=VAR for postgresql)")
    kind = STORES[name]
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    fields = {f.name: f for f in dataclasses.fields(kind.settings_class)}
    try:
        typed = {k: _typed(fields[k], v) if k in fields else v for k, v in query.items()}
        return {"store": name, **kind.from_uri(parts, transport, typed)}
    except ValueError as exc:
        raise _bad(spec, str(exc)) from None


def parse_store_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """The plain dict (``"store"`` plus every setting of that store, defaults filled in) a URI or dict
    stands for; ``store.to_config()`` gives the same shape.

    Raises ConfigurationError naming the spec (credentials redacted) on an unknown store, an unknown key,
    a bad value, a credential inside the spec, or a missing location.
    """
    if isinstance(spec, str):
        raw = _dict_from_uri(spec)
    elif isinstance(spec, Mapping):
        raw = dict(spec)
    else:
        raise _bad(spec, "a store spec is a URI string or a dict with a 'store' key")
    name = raw.pop("store", None)
    kind = STORES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise _bad(spec, f"unknown store {name!r}; expected one of {', '.join(STORES)}")
    secrets = sorted(k for k in raw if isinstance(k, str) and k.lower() in _SECRET_KEYS)
    if secrets:
        raise _bad(spec, f"{secrets} would put a credential in the spec: set an environment variable and name it instead")
    name = kind.alias_of or name
    try:
        settings = kind.settings_class.from_config(raw, what=f"{name} store")
    except ConfigurationError as exc:
        raise _bad(spec, str(exc)) from None
    why = settings.missing_location()
    if why:
        raise _bad(spec, f"the {name} store {why}")
    return {"store": name, **settings.to_config()}


def store_from_spec(spec: str | Mapping[str, Any], embedder: Embedder) -> VectorStore:
    """Build the store a URI or dict names, bound to ``embedder`` (created with its dimension if missing).

    >>> store = store_from_spec("milvus:///tmp/kb.db?collection=kb", embedder)  # doctest: +SKIP
    """
    plain = parse_store_spec(spec)
    return STORES[plain["store"]].store_class().from_config(plain, embedder)


def store_dimension(store: str, handle: Any, name: str | None = None, field: str | None = None) -> int | None:
    """The vector width ``handle`` (a database client object of the store ``store``) holds, read the way
    that store's entry in ``STORES`` declares; None when it holds none yet."""
    kind = STORES.get(store)
    if kind is None or kind.dimension_of is None:
        raise ConfigurationError(f"no way to read a {store!r} store's dimension is registered")
    return kind.dimension_of(handle, name, field)


def is_local_only(spec: str | Mapping[str, Any]) -> bool:
    """True when the store a spec names lives in one process (Ray workers cannot write into it)."""
    plain = parse_store_spec(spec)
    local = STORES[plain["store"]].local_only
    return bool(local(plain)) if callable(local) else local


__all__ = [
    "COMMON_FLAGS",
    "DEFAULT_STORE",
    "STORES",
    "CliFlag",
    "StoreKind",
    "is_local_only",
    "parse_store_spec",
    "redact_spec",
    "store_dimension",
    "store_from_spec",
]
