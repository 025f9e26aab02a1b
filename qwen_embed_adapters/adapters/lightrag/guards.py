"""Working-dir guards: refuse to open a LightRAG working dir (NanoVectorDB, Faiss, Milvus, PostgreSQL +
pgvector or Qdrant storage) whose vectors have another dimension than the embedder's, before LightRAG
asserts or, worse, silently starts an empty collection; and point LightRAG's Milvus storage at a Milvus
Lite file."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..._urls import redact_url
from ...embedder import Embedder
from ...errors import ConfigurationError, DimensionMismatchError, MissingDependencyError
from .embedding import lightrag_collection_suffix, lightrag_model_name

#: The vector namespaces LightRAG creates (lightrag/namespace.py).
VECTOR_NAMESPACES = ("entities", "relationships", "chunks")

_NANO_DIM_RE = re.compile(rb'\A\s*\{\s*"embedding_dim"\s*:\s*(\d+)')
_REBUILD_HINT = (
    "use a new working_dir/workspace, go back to the old dimension, or re-embed with "
    "`lightrag-rebuild-vdb` under the new settings"
)


def _target(embedder: Any, model_name: str | None) -> tuple[int, str | None]:
    if isinstance(embedder, Embedder):
        return embedder.dimension, model_name or lightrag_model_name(embedder.model)
    dim = getattr(embedder, "embedding_dim", None)
    if isinstance(dim, int) and not isinstance(dim, bool):
        return dim, model_name or getattr(embedder, "model_name", None)
    if isinstance(embedder, int) and not isinstance(embedder, bool):
        return embedder, model_name
    raise ConfigurationError(
        f"expected an Embedder, a LightRAG EmbeddingFunc or a dimension, got {type(embedder).__name__}"
    )


def _nano_dim(path: Path) -> int:
    with path.open("rb") as fh:
        head = fh.read(256)
    m = _NANO_DIM_RE.match(head)
    if m:
        return int(m.group(1))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return int(data["embedding_dim"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{os.fspath(path)!r} is not a NanoVectorDB file ({exc})") from None


def _workspace_dir(working_dir: str | os.PathLike[str], workspace: str) -> Path:
    return Path(working_dir) / workspace if workspace else Path(working_dir)


def _check_nano(working_dir: str | os.PathLike[str], workspace: str, dim: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for ns in VECTOR_NAMESPACES:
        path = _workspace_dir(working_dir, workspace) / f"vdb_{ns}.json"
        if not path.is_file():
            continue
        held = _nano_dim(path)
        found[os.fspath(path)] = held
        if held != dim:
            raise DimensionMismatchError(
                held, dim, os.fspath(path),
                f"LightRAG's NanoVectorDB would stop with 'Embedding dim mismatch'; {_REBUILD_HINT}",
            )
    return found


def _check_faiss(working_dir: str | os.PathLike[str], workspace: str, dim: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for ns in VECTOR_NAMESPACES:
        path = _workspace_dir(working_dir, workspace) / f"faiss_index_{ns}.index"
        if not path.is_file():
            continue
        try:
            import faiss
        except ImportError as exc:
            raise MissingDependencyError("faiss-cpu", "faiss", "checking a LightRAG Faiss storage") from exc
        held = int(faiss.read_index(os.fspath(path)).d)
        found[os.fspath(path)] = held
        if held != dim:
            raise DimensionMismatchError(held, dim, os.fspath(path), _REBUILD_HINT)
    return found


def _milvus_dim(info: Mapping[str, Any]) -> int | None:
    for f in info.get("fields", []):
        if f.get("name") == "vector":
            raw = (f.get("params") or {}).get("dim")
            return int(raw) if raw is not None else None
    return None


def _milvus_rows(client: Any, name: str) -> int:
    try:
        return int(client.get_collection_stats(name).get("row_count", 0))
    except Exception:  # an unknown count is treated as holding data
        return 1


def _check_milvus(
    client: Any, workspace: str, dim: int, model_name: str | None, where_uri: str
) -> dict[str, int]:
    ws = (os.environ.get("MILVUS_WORKSPACE") or "").strip() or workspace
    names = set(client.list_collections())
    found: dict[str, int] = {}
    for ns in VECTOR_NAMESPACES:
        legacy = f"{ws}_{ns}" if ws else ns
        final = f"{legacy}_{lightrag_collection_suffix(model_name, dim)}" if model_name else legacy
        pattern = re.compile(re.escape(legacy) + r"(_.+_\d+d)?")
        if final in names:
            held = _milvus_dim(client.describe_collection(final))
            if held is not None:
                found[final] = held
                if held != dim:
                    raise DimensionMismatchError(held, dim, final, f"Milvus at {where_uri}; {_REBUILD_HINT}")
            continue
        # LightRAG would create `final` empty; any other collection of this namespace holding data at
        # another dimension is the knowledge base that queries would silently miss.
        for other in sorted(n for n in names if pattern.fullmatch(n)):
            held = _milvus_dim(client.describe_collection(other))
            if held is None:
                continue
            found[other] = held
            if held != dim and _milvus_rows(client, other) > 0:
                raise DimensionMismatchError(
                    held, dim, other,
                    f"Milvus at {where_uri}: LightRAG would create an empty {final!r} next to it and "
                    f"queries would come back empty; {_REBUILD_HINT}",
                )
    return found


#: LightRAG's PGVectorStorage tables per vector namespace (NAMESPACE_TABLE_MAP, lightrag/kg/postgres_impl.py)
PG_TABLES = {"entities": "lightrag_vdb_entity", "relationships": "lightrag_vdb_relation", "chunks": "lightrag_vdb_chunks"}
#: pgvector's widest indexed ``vector`` (HNSW, IVFFlat); ``halfvec`` (POSTGRES_VECTOR_INDEX_TYPE=HNSW_HALFVEC) 4,000
_PG_INDEX_MAX = {"HNSW": 2000, "IVFFLAT": 2000, "HNSW_HALFVEC": 4000}


def _postgres_conninfo(conninfo: str | None) -> str:
    """``conninfo`` as given, else the one LightRAG's ``POSTGRES_*`` variables describe."""
    if conninfo:
        return conninfo
    try:
        from psycopg.conninfo import make_conninfo
    except ImportError as exc:
        raise MissingDependencyError("psycopg", "pgvector", "checking a LightRAG PostgreSQL storage") from exc
    env = os.environ
    params = {
        "host": env.get("POSTGRES_HOST", "localhost"), "port": env.get("POSTGRES_PORT", "5432"),
        "user": env.get("POSTGRES_USER", "postgres"), "dbname": env.get("POSTGRES_DATABASE", "postgres"),
    }
    if env.get("POSTGRES_PASSWORD"):
        params["password"] = env["POSTGRES_PASSWORD"]
    return str(make_conninfo(**params))


def _check_pg_index(dim: int) -> None:
    kind = (os.environ.get("POSTGRES_VECTOR_INDEX_TYPE") or "HNSW").strip().upper()
    limit = _PG_INDEX_MAX.get(kind)
    if limit is not None and dim > limit:
        better = "POSTGRES_VECTOR_INDEX_TYPE=HNSW_HALFVEC (up to 4000)" if dim <= 4000 else "4000 or fewer dimensions"
        raise ConfigurationError(
            f"LightRAG's PGVectorStorage would index {dim}-d vectors with {kind}, which pgvector takes up to "
            f"{limit} dimensions; use {better} (write_lightrag_env(..., vector_store=...) writes it)"
        )


def _check_pgvector(conn: Any, workspace: str, dim: int, model_name: str | None, where_uri: str) -> dict[str, int]:
    from ..pgvector import table_dimension

    ws = (os.environ.get("POSTGRES_WORKSPACE") or "").strip() or workspace or "default"
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND pg_table_is_visible(c.oid) "
        "AND c.relname LIKE 'lightrag\\_vdb\\_%'"
    ).fetchall()
    names = {str(r[0]) for r in rows}
    found: dict[str, int] = {}
    for ns in VECTOR_NAMESPACES:
        legacy = PG_TABLES[ns]
        final = f"{legacy}_{lightrag_collection_suffix(model_name, dim)}" if model_name else legacy
        pattern = re.compile(re.escape(legacy) + r"(_.+_\d+d)?")
        if final in names:
            held = table_dimension(conn, final, "content_vector")
            if held is not None:
                found[final] = held
                if held != dim:
                    raise DimensionMismatchError(held, dim, final, f"PostgreSQL at {where_uri}; {_REBUILD_HINT}")
            continue
        for other in sorted(n for n in names if pattern.fullmatch(n)):
            held = table_dimension(conn, other, "content_vector")
            if held is None:
                continue
            found[other] = held
            count = conn.execute(f'SELECT count(*) FROM "{other}" WHERE workspace = %s', [ws]).fetchone()
            if held != dim and count is not None and int(count[0]) > 0:
                raise DimensionMismatchError(
                    held, dim, other,
                    f"PostgreSQL at {where_uri}: LightRAG would create an empty {final!r} next to it and "
                    f"queries would come back empty; {_REBUILD_HINT}",
                )
    return found


def _check_qdrant(client: Any, workspace: str, dim: int, model_name: str | None, where_uri: str) -> dict[str, int]:
    from qdrant_client import models

    from ..qdrant import collection_dimension

    ws = (os.environ.get("QDRANT_WORKSPACE") or "").strip() or workspace or "_"
    names = {c.name for c in client.get_collections().collections}
    found: dict[str, int] = {}
    for ns in VECTOR_NAMESPACES:
        legacy = f"lightrag_vdb_{ns}"
        final = f"{legacy}_{lightrag_collection_suffix(model_name, dim)}" if model_name else legacy
        pattern = re.compile(re.escape(legacy) + r"(_.+_\d+d)?")
        if final in names:
            held = collection_dimension(client, final)
            if held is not None:
                found[final] = held
                if held != dim:
                    raise DimensionMismatchError(held, dim, final, f"Qdrant at {where_uri}; {_REBUILD_HINT}")
            continue
        for other in sorted(n for n in names if pattern.fullmatch(n)):
            held = collection_dimension(client, other)
            if held is None:
                continue
            found[other] = held
            mine = models.Filter(must=[models.FieldCondition(key="workspace_id", match=models.MatchValue(value=ws))])
            if held != dim and client.count(other, count_filter=mine, exact=True).count > 0:
                raise DimensionMismatchError(
                    held, dim, other,
                    f"Qdrant at {where_uri}: LightRAG would create an empty {final!r} next to it and "
                    f"queries would come back empty; {_REBUILD_HINT}",
                )
    return found


def ensure_lightrag_dimension(
    working_dir: str | os.PathLike[str],
    embedder: Any,
    *,
    vector_storage: str = "NanoVectorDBStorage",
    workspace: str = "",
    model_name: str | None = None,
    milvus_uri: str | None = None,
    milvus_token: str | None = None,
    milvus_db_name: str | None = None,
    milvus_client: Any = None,
    postgres_conninfo: str | None = None,
    qdrant_client: Any = None,
    qdrant_url: str | None = None,
) -> dict[str, int]:
    """Check that a LightRAG working dir's vector storage holds ``embedder``'s dimension; call it
    before ``LightRAG(...)`` opens the dir.

    ``embedder`` is an Embedder, a LightRAG ``EmbeddingFunc`` (its ``embedding_dim`` and
    ``model_name``) or a plain dimension. Raises ``DimensionMismatchError`` (``.expected`` = what the
    storage holds, ``.actual`` = the new dimension, ``.where`` = file or collection) instead of
    NanoVectorDB's assertion, or Milvus's silent switch to a new empty ``*_<dim>d`` collection.
    Supported ``vector_storage``: ``NanoVectorDBStorage``, ``FaissVectorDBStorage`` and
    ``MilvusVectorDBStorage`` (URI from ``milvus_uri``, else ``$MILVUS_URI``, else
    ``<working_dir>/milvus_lite.db`` as LightRAG does; ``$MILVUS_WORKSPACE`` is honoured),
    ``PGVectorStorage`` (``postgres_conninfo``, else LightRAG's ``POSTGRES_*`` variables; its
    ``lightrag_vdb_*`` tables; ``$POSTGRES_WORKSPACE`` honoured; a width above what
    ``$POSTGRES_VECTOR_INDEX_TYPE`` indexes is a ConfigurationError) and ``QdrantVectorDBStorage``
    (``qdrant_client``, else ``qdrant_url`` / ``$QDRANT_URL`` with ``$QDRANT_API_KEY``; its ``lightrag_vdb_*``
    collections; ``$QDRANT_WORKSPACE`` honoured). A fresh dir or database passes. Returns what was found,
    ``{file, table or collection: dimension}``.
    """
    dim, name = _target(embedder, model_name)
    if vector_storage == "PGVectorStorage":
        _check_pg_index(dim)
        try:
            import psycopg
        except ImportError as exc:
            raise MissingDependencyError("psycopg", "pgvector", "checking a LightRAG PostgreSQL storage") from exc
        conninfo = _postgres_conninfo(postgres_conninfo)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return _check_pgvector(conn, workspace, dim, name, redact_url(conninfo))
    if vector_storage == "QdrantVectorDBStorage":
        if qdrant_client is not None:
            return _check_qdrant(qdrant_client, workspace, dim, name, "the given client")
        try:
            from qdrant_client import QdrantClient
        except ImportError as exc:
            raise MissingDependencyError("qdrant-client", "qdrant", "checking a LightRAG Qdrant storage") from exc
        url = qdrant_url or os.environ.get("QDRANT_URL")
        if not url:
            raise ConfigurationError("QdrantVectorDBStorage: pass qdrant_url= or qdrant_client=, or set QDRANT_URL")
        qclient = QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY") or None)
        try:
            return _check_qdrant(qclient, workspace, dim, name, redact_url(url))
        finally:
            qclient.close()
    if vector_storage == "NanoVectorDBStorage":
        return _check_nano(working_dir, workspace, dim)
    if vector_storage == "FaissVectorDBStorage":
        return _check_faiss(working_dir, workspace, dim)
    if vector_storage != "MilvusVectorDBStorage":
        raise ConfigurationError(
            f"vector_storage={vector_storage!r} is not checked; supported: NanoVectorDBStorage, "
            "FaissVectorDBStorage, MilvusVectorDBStorage, PGVectorStorage, QdrantVectorDBStorage"
        )
    if milvus_client is not None:
        return _check_milvus(milvus_client, workspace, dim, name, "the given client")
    uri = milvus_uri or os.environ.get("MILVUS_URI") or os.path.join(os.fspath(working_dir), "milvus_lite.db")
    is_lite = not re.match(r"^[a-z][a-z0-9+.-]*://", uri, re.IGNORECASE)
    if is_lite and not os.path.exists(uri):
        return {}  # no Milvus Lite file yet: nothing stored, nothing to contradict
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MissingDependencyError("pymilvus", "milvus", "checking a LightRAG Milvus storage") from exc
    kwargs: dict[str, Any] = {"uri": uri}
    token = milvus_token or os.environ.get("MILVUS_TOKEN")
    if token:
        kwargs["token"] = token
    db_name = milvus_db_name if milvus_db_name is not None else (os.environ.get("MILVUS_DB_NAME") or "")
    if db_name.strip():
        kwargs["db_name"] = db_name.strip()
    client = MilvusClient(**kwargs)
    try:
        return _check_milvus(client, workspace, dim, name, redact_url(uri))
    finally:
        client.close()


@contextmanager
def milvus_lite_env(path: str | os.PathLike[str]) -> Iterator[str]:
    """Point LightRAG's ``MilvusVectorDBStorage`` at a Milvus Lite file for the duration of a block.

    LightRAG requires ``MILVUS_URI`` and ``MILVUS_DB_NAME`` in the environment, while pymilvus
    refuses a ``.db`` path in ``MILVUS_URI`` at import time; so pymilvus is imported first, then
    ``MILVUS_URI`` (absolute path) and ``MILVUS_DB_NAME`` (empty: Lite's default database) are set,
    and both are restored on exit. Yields the absolute path.
    """
    try:
        import pymilvus  # noqa: F401 - must be imported before MILVUS_URI holds a file path
    except ImportError as exc:
        raise MissingDependencyError("pymilvus", "milvus", "Milvus Lite for LightRAG") from exc
    uri = os.path.abspath(os.fspath(path))
    saved = {k: os.environ.get(k) for k in ("MILVUS_URI", "MILVUS_DB_NAME")}
    os.environ["MILVUS_URI"] = uri
    os.environ["MILVUS_DB_NAME"] = ""
    try:
        yield uri
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


__all__ = ["PG_TABLES", "VECTOR_NAMESPACES", "ensure_lightrag_dimension", "milvus_lite_env"]
