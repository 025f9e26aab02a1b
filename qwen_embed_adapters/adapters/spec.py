"""Plain specs -> vector stores: ``store_from_spec(spec, embedder)`` with a URI or a dict.

    from qwen_embed_adapters.adapters.spec import store_from_spec

    store = store_from_spec("milvus:///data/kb.db?collection=kb", embedder)      # Milvus Lite file
    store = store_from_spec("milvus+http://milvus:19530/kb", embedder)           # a Milvus server (+https too)
    store = store_from_spec("chroma+http://chroma:8000/docs", embedder)          # a Chroma server
    store = store_from_spec("chroma:///data/chroma/docs", embedder)              # PersistentClient(/data/chroma)
    store = store_from_spec("pinecone://kb-abc123.svc.pinecone.io?namespace=x", embedder)  # key: $PINECONE_API_KEY
    store = store_from_spec("faiss:///data/faiss-kb", embedder)                  # FaissStore(path=...)
    store = store_from_spec("postgresql://me@db:5432/rag?table=kb", embedder)    # password: ?password_env=VAR or libpq's own
    store = store_from_spec("pgvector:///data/pgdata?table=kb", embedder)        # starts the bundled PostgreSQL on that folder
    store = store_from_spec("qdrant:///data/qdrant?collection=kb", embedder)     # Qdrant local mode on a folder
    store = store_from_spec("qdrant+http://qdrant:6333/kb", embedder)            # a Qdrant server (+https too)
    store = store_from_spec({"store": "milvus", "uri": "./kb.db", "collection": "kb"}, embedder)

``parse_store_spec`` turns either form into the plain dict (every key filled in) that
``store_from_spec`` builds from: JSON-safe, free of secrets, fit to ship to another process.
Credentials never go into a spec: a spec names the environment variable that holds them
(``token_env`` for Milvus, ``api_key_env`` for Pinecone, default ``PINECONE_API_KEY``).

Stores are registered by name in ``STORES``; a new store is its module plus one entry there.
A relative path is written without slashes (``milvus:kb.db``, ``faiss:indexes/kb``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

from ..errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from ..embedder import Embedder
    from .base import VectorStore

_SECRET_KEYS = ("token", "api_key", "apikey", "key", "password", "secret")


@dataclass(frozen=True)
class StoreKind:
    """One registered store: its spec keys with their defaults, a URI parser and a builder."""

    defaults: Mapping[str, Any]
    from_uri: Callable[[SplitResult, str, dict[str, str]], dict[str, Any]]
    build: Callable[[dict[str, Any], Embedder], VectorStore]
    check: Callable[[dict[str, Any]], str | None] = lambda spec: None
    #: a user name (never a password) may stand in the URI: libpq's ``postgresql://user@host/db``
    user_in_uri: bool = False
    #: the store this name stands for (``postgresql`` -> ``pgvector``), if it is an alias
    alias_of: str | None = None


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


def _postgresql_uri(parts: SplitResult, transport: str, query: dict[str, str]) -> dict[str, Any]:
    if transport:
        raise ValueError("postgresql://USER@HOST:PORT/DB takes no +transport")
    if not parts.hostname and "host" not in query:
        raise ValueError("postgresql://USER@HOST:PORT/DB needs a host (or ?host=/socket/dir)")
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    conninfo = urlunsplit(("postgresql", user + netloc, parts.path, "", ""))
    for key in ("host", "sslmode"):  # libpq settings that stay in the conninfo
        if key in query:
            conninfo += ("&" if "?" in conninfo else "?") + f"{key}={query.pop(key)}"
    return {"conninfo": conninfo, **query}


def _pgvector_uri(parts: SplitResult, transport: str, query: dict[str, str]) -> dict[str, Any]:
    if transport:
        raise ValueError("pgvector:///PGDATA is a local folder (the bundled server); use postgresql:// for a server")
    return {"pgdata": _local_path(parts), **query}


def _qdrant_uri(parts: SplitResult, transport: str, query: dict[str, str]) -> dict[str, Any]:
    if transport in ("http", "https"):
        out: dict[str, Any] = {"location": _server_url(parts, transport)}
        name = _one_segment(parts.path)
        if name:
            out["collection"] = name
        return {**out, **query}
    if transport:
        raise ValueError(f"qdrant+{transport} is not a transport; use qdrant+http or qdrant+https")
    path = _local_path(parts)
    return {"location": path or ":memory:", **query}


# ---------------------------------------------------------------------------- builders
def _env_secret(var: str, what: str) -> str:
    value = os.environ.get(var, "")
    if not value:
        raise ConfigurationError(f"{what} needs a key in ${var}, which is not set (or name another variable)")
    return value


def _build_milvus(spec: dict[str, Any], embedder: Embedder) -> VectorStore:
    from .milvus import MilvusStore

    token = _env_secret(spec["token_env"], "the milvus store's token_env") if spec["token_env"] else None
    kwargs: dict[str, Any] = {"metric": spec["metric"], "token": token}
    if spec["db_name"]:
        kwargs["db_name"] = spec["db_name"]
    return MilvusStore(spec["uri"], spec["collection"], embedder, **kwargs)


def chroma_client(uri: str) -> Any:
    """``chromadb.HttpClient`` for an http(s) URL, else ``chromadb.PersistentClient(path=uri)``."""
    try:
        import chromadb
    except ImportError:
        raise MissingDependencyError("chromadb", "chroma", "the chroma store") from None
    if uri.startswith(("http://", "https://")):
        parts = urlsplit(uri)
        return chromadb.HttpClient(host=parts.hostname or "localhost",
                                   port=parts.port or (443 if parts.scheme == "https" else 8000),
                                   ssl=parts.scheme == "https")
    return chromadb.PersistentClient(path=uri)


def _build_chroma(spec: dict[str, Any], embedder: Embedder) -> VectorStore:
    from .chroma import ChromaStore

    return ChromaStore(chroma_client(str(spec["uri"])), spec["collection"], embedder)


def _build_pinecone(spec: dict[str, Any], embedder: Embedder) -> VectorStore:
    from .pinecone import PineconeStore

    try:
        from pinecone import Pinecone
    except ImportError:
        raise MissingDependencyError("pinecone", "pinecone", "the pinecone store") from None
    key = _env_secret(spec["api_key_env"], "the pinecone store")
    if spec["host"]:
        index = Pinecone(api_key=key).Index(host=spec["host"])
        return PineconeStore(index, embedder, namespace=spec["namespace"], name=spec["index"] or None)
    pc = Pinecone(api_key=key, host=spec["controller_host"]) if spec["controller_host"] else Pinecone(api_key=key)
    return PineconeStore.create(pc, spec["index"], embedder, cloud=spec["cloud"], region=spec["region"],
                                namespace=spec["namespace"])


def _build_faiss(spec: dict[str, Any], embedder: Embedder) -> VectorStore:
    from .faiss import FaissStore

    return FaissStore(embedder, path=spec["path"], metric=spec["metric"], index=spec["index"])


def _int_or_none(spec: dict[str, Any], key: str) -> int | None:
    value = spec[key]
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"store spec key {key!r} must be an int, got {value!r}") from None


def _build_pgvector(spec: dict[str, Any], embedder: Embedder) -> VectorStore:
    from .pgvector import PgVectorStore, start_embedded_postgres

    if spec["conninfo"]:
        conninfo = str(spec["conninfo"])
        if spec["password_env"]:
            from psycopg.conninfo import make_conninfo

            conninfo = make_conninfo(conninfo, password=_env_secret(spec["password_env"], "the pgvector store's password_env"))
    else:
        conninfo = start_embedded_postgres(spec["pgdata"])
    index = spec["index"]
    return PgVectorStore(
        conninfo, spec["table"], embedder, schema=spec["schema"] or None,
        index=None if index in (None, "", "none", "None") else index, vector_type=spec["vector_type"],
        m=_int_or_none(spec, "m") or 16, ef_construction=_int_or_none(spec, "ef_construction") or 64,
        ef_search=_int_or_none(spec, "ef_search"),
    )


def _build_qdrant(spec: dict[str, Any], embedder: Embedder) -> VectorStore:
    from .qdrant import QdrantStore

    key = _env_secret(spec["api_key_env"], "the qdrant store's api_key_env") if spec["api_key_env"] else None
    return QdrantStore(spec["location"], spec["collection"], embedder, api_key=key,
                       vector_name=spec["vector_name"] or None, ef_search=_int_or_none(spec, "ef_search"))


_PGVECTOR_DEFAULTS: dict[str, Any] = {
    "conninfo": None, "pgdata": None, "table": "documents", "schema": None, "password_env": None,
    "index": "hnsw", "vector_type": "auto", "m": 16, "ef_construction": 64, "ef_search": None,
}


def _check_pgvector(spec: dict[str, Any]) -> str | None:
    if bool(spec.get("conninfo")) == bool(spec.get("pgdata")):
        return "needs exactly one of 'conninfo' (a server) and 'pgdata' (the bundled server's folder)"
    return None


_CHROMA_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")


def _check_chroma(spec: dict[str, Any]) -> str | None:
    if not spec.get("uri"):
        return "needs 'uri'"
    name = spec.get("collection")
    if not isinstance(name, str) or not _CHROMA_NAME.fullmatch(name):
        return (f"takes collection names of 3-512 characters from [a-zA-Z0-9._-], starting and ending with a "
                f"letter or digit; got {name!r}")
    return None


def _needs(*keys: str) -> Callable[[dict[str, Any]], str | None]:
    def check(spec: dict[str, Any]) -> str | None:
        if any(spec.get(k) for k in keys):
            return None
        return "needs " + " or ".join(repr(k) for k in keys)

    return check


#: store name (the URI scheme before any ``+transport``, or the dict's ``"store"``) -> its kind.
STORES: dict[str, StoreKind] = {
    "milvus": StoreKind({"uri": None, "collection": "documents", "token_env": None, "db_name": None,
                         "metric": "COSINE"}, _milvus_uri, _build_milvus, _needs("uri")),
    "chroma": StoreKind({"uri": None, "collection": "documents"}, _chroma_uri, _build_chroma, _check_chroma),
    "pinecone": StoreKind({"host": None, "index": None, "namespace": "", "api_key_env": "PINECONE_API_KEY",
                           "controller_host": None, "cloud": "aws", "region": "us-east-1"},
                          _pinecone_uri, _build_pinecone, _needs("host", "index")),
    "faiss": StoreKind({"path": None, "metric": "cosine", "index": "flat"}, _faiss_uri, _build_faiss,
                       _needs("path")),
    "pgvector": StoreKind(_PGVECTOR_DEFAULTS, _pgvector_uri, _build_pgvector, _check_pgvector),
    # postgresql:// (and postgres://) URIs are pgvector specs on a server
    "postgresql": StoreKind(_PGVECTOR_DEFAULTS, _postgresql_uri, _build_pgvector, _check_pgvector, user_in_uri=True,
                             alias_of="pgvector"),
    "postgres": StoreKind(_PGVECTOR_DEFAULTS, _postgresql_uri, _build_pgvector, _check_pgvector, user_in_uri=True,
                             alias_of="pgvector"),
    "qdrant": StoreKind({"location": ":memory:", "collection": "documents", "api_key_env": None,
                         "vector_name": None, "ef_search": None}, _qdrant_uri, _build_qdrant, _needs("location")),
}


# ---------------------------------------------------------------------------- public
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
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    try:
        return {"store": name, **STORES[name].from_uri(parts, transport, query)}
    except ValueError as exc:
        raise _bad(spec, str(exc)) from None


def parse_store_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """The plain dict (``"store"`` plus every key of that store, defaults filled in) a URI or dict stands for.

    Raises ConfigurationError naming the spec (credentials redacted) on an unknown store, an unknown key,
    a credential inside the spec, or a missing location.
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
    secrets = sorted(k for k in raw if k.lower() in _SECRET_KEYS)
    if secrets:
        raise _bad(spec, f"{secrets} would put a credential in the spec: set an environment variable and name it instead")
    unknown = sorted(set(raw) - set(kind.defaults))
    if unknown:
        raise _bad(spec, f"unknown {name} setting(s) {unknown}; known: {sorted(kind.defaults)}")
    name = kind.alias_of or name
    out = {"store": name, **kind.defaults, **raw}
    why = kind.check(out)
    if why:
        raise _bad(spec, f"the {name} store {why}")
    return out


def store_from_spec(spec: str | Mapping[str, Any], embedder: Embedder) -> VectorStore:
    """Build the store a URI or dict names, bound to ``embedder`` (created with its dimension if missing).

    >>> store = store_from_spec("milvus:///tmp/kb.db?collection=kb", embedder)  # doctest: +SKIP
    """
    plain = parse_store_spec(spec)
    return STORES[plain["store"]].build(plain, embedder)
