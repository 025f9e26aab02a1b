"""LightRAG's environment: read its ``EMBEDDING_*`` variables into an embedder, and write the ``.env``
block that makes ``lightrag-server`` embed like a given embedder."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import models
from ...embedder import Embedder
from ...errors import ConfigurationError, MissingDependencyError
from .embedding import lightrag_embedding_func

if TYPE_CHECKING:  # pragma: no cover
    from lightrag.utils import EmbeddingFunc

    from ...remote import RemoteEmbedder

logger = logging.getLogger(__name__)

#: LightRAG's defaults (lightrag/constants.py, 1.5.x) for the variables it reads.
DEFAULT_EMBEDDING_BATCH_NUM = 10
DEFAULT_EMBEDDING_FUNC_MAX_ASYNC = 8
DEFAULT_EMBEDDING_TIMEOUT = 30
#: LightRAG's marker for "explicitly no prefix" in EMBEDDING_QUERY_PREFIX / EMBEDDING_DOCUMENT_PREFIX.
NO_PREFIX = "NO_PREFIX"
#: The LightRAG bindings whose endpoint is an OpenAI-compatible ``/v1/embeddings``.
OPENAI_COMPATIBLE_BINDINGS = ("openai", "ollama")

_TRUE = ("true", "1", "yes", "t", "on")  # what LightRAG's get_env_value(..., bool) accepts
_INSTRUCT_RE = re.compile(r"\AInstruct: (?P<task>.*)\nQuery:\Z", re.DOTALL)


@dataclass
class LightRAGEmbeddingEnv:
    """The embedding settings of a LightRAG environment (``EMBEDDING_*``), parsed and checked."""

    host: str
    model: str = "Qwen3-Embedding-0.6B"
    api_key: str | None = field(default=None, repr=False)
    dim: int | None = None
    send_dim: bool = False
    token_limit: int | None = None
    func_max_async: int = DEFAULT_EMBEDDING_FUNC_MAX_ASYNC
    batch_num: int = DEFAULT_EMBEDDING_BATCH_NUM
    timeout: float = float(DEFAULT_EMBEDDING_TIMEOUT)
    query_instruction: str | None = None  # None: the model's default; "": no instruction
    binding: str = "openai"

    def embedder(self) -> RemoteEmbedder:
        """A RemoteEmbedder that produces what LightRAG expects from these settings."""
        from ...remote import RemoteEmbedder

        return RemoteEmbedder(
            self.host,
            self.model,
            api_key=self.api_key,
            api_key_env="EMBEDDING_BINDING_API_KEY" if self.api_key else None,
            dimensions=self.dim,
            send_dimensions=self.send_dim,
            query_instruction=self.query_instruction,
            batch_size=self.batch_num,
            max_concurrency=self.func_max_async,
            timeout=self.timeout,
        )

    def embedding_func(self) -> EmbeddingFunc:
        """``lightrag_embedding_func`` over ``embedder()``, with ``EMBEDDING_TOKEN_LIMIT`` as max_token_size."""
        return lightrag_embedding_func(self.embedder(), max_token_size=self.token_limit)


def _env_str(env: Mapping[str, str], key: str, *, special_none: bool = True) -> str | None:
    value = env.get(key)
    if value is None or (special_none and value == "None"):
        return None
    value = value.strip()
    return value or None


def _env_int(env: Mapping[str, str], key: str, default: int | None) -> int | None:
    raw = _env_str(env, key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        # LightRAG silently falls back to its default here; a typo should not go unnoticed.
        raise ConfigurationError(f"{key} must be an integer, got {raw!r}") from None
    if value < 1:
        raise ConfigurationError(f"{key} must be a positive integer, got {value}")
    return value


def _env_bool(env: Mapping[str, str], key: str) -> bool | None:
    raw = env.get(key)
    if raw is None:
        return None
    return raw.strip().lower() in _TRUE


def _instruction_from_prefix(prefix: str, key: str) -> str:
    if prefix == NO_PREFIX:
        return ""
    m = _INSTRUCT_RE.match(prefix)
    if not m:
        raise ConfigurationError(
            f"{key}={prefix!r:.120} is not a Qwen3 query prefix: expected 'Instruct: <task>\\nQuery:' "
            f"or {NO_PREFIX}"
        )
    return m.group("task")


def _merged_env(environ: Mapping[str, str] | None, dotenv_path: str | os.PathLike[str] | None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) over the ``.env`` at ``dotenv_path``, as lightrag-server merges them."""
    env: dict[str, str] = dict(os.environ if environ is None else environ)
    if dotenv_path is None:
        return env
    try:
        from dotenv import dotenv_values
    except ImportError as exc:
        raise MissingDependencyError("python-dotenv", "lightrag", "reading a LightRAG .env") from exc
    if not Path(dotenv_path).is_file():
        raise ConfigurationError(f"no .env file at {os.fspath(dotenv_path)!r}")
    for key, value in dotenv_values(dotenv_path).items():
        if value is not None:
            env.setdefault(key, value)
    return env


def _binding_and_host(env: Mapping[str, str]) -> tuple[str, str]:
    binding = (_env_str(env, "EMBEDDING_BINDING") or "openai").lower()
    if binding not in OPENAI_COMPATIBLE_BINDINGS:
        raise ConfigurationError(
            f"EMBEDDING_BINDING={binding!r}: only OpenAI-compatible endpoints are supported "
            f"({', '.join(OPENAI_COMPATIBLE_BINDINGS)}); SGLang, vLLM, TEI and `qwen-embed serve` "
            "all use 'openai'"
        )
    host = _env_str(env, "EMBEDDING_BINDING_HOST")
    if not host:
        raise ConfigurationError(
            "missing EMBEDDING_BINDING_HOST: set it to the embedding server's URL, "
            "e.g. http://localhost:30000/v1"
        )
    return binding, host


def _token_limit(env: Mapping[str, str]) -> int | None:
    """``EMBEDDING_TOKEN_LIMIT``, or the old name ``MAX_EMBED_TOKENS`` when only that is set."""
    token_limit = _env_int(env, "EMBEDDING_TOKEN_LIMIT", None)
    legacy = _env_int(env, "MAX_EMBED_TOKENS", None)
    if token_limit is None and legacy is not None:
        logger.info("MAX_EMBED_TOKENS is the old name of EMBEDDING_TOKEN_LIMIT; using %d", legacy)
        return legacy
    if legacy is not None and legacy != token_limit:
        logger.warning(
            "EMBEDDING_TOKEN_LIMIT=%s and the old MAX_EMBED_TOKENS=%s disagree; LightRAG 1.5 reads "
            "EMBEDDING_TOKEN_LIMIT", token_limit, legacy,
        )
    return token_limit


def _query_instruction(env: Mapping[str, str]) -> str | None:
    """The query instruction LightRAG's prefix variables describe (None: the model's default)."""
    asymmetric = _env_bool(env, "EMBEDDING_ASYMMETRIC")
    query_prefix = env.get("EMBEDDING_QUERY_PREFIX")
    doc_prefix = env.get("EMBEDDING_DOCUMENT_PREFIX")
    instruction: str | None = None
    if asymmetric is False:
        # lightrag-server then embeds queries bare; match it so query vectors stay comparable.
        instruction = ""
    elif query_prefix not in (None, "None"):
        assert query_prefix is not None
        instruction = _instruction_from_prefix(query_prefix, "EMBEDDING_QUERY_PREFIX")
    if asymmetric is not False and doc_prefix not in (None, "None", NO_PREFIX):
        raise ConfigurationError(
            f"EMBEDDING_DOCUMENT_PREFIX={doc_prefix!r:.80}: Qwen3 embeds documents without any "
            f"prefix; set it to {NO_PREFIX} or remove it"
        )
    return instruction


def _timeout(env: Mapping[str, str]) -> float:
    raw = _env_str(env, "EMBEDDING_TIMEOUT")
    if raw is None:
        return float(DEFAULT_EMBEDDING_TIMEOUT)
    try:
        timeout = float(raw)
    except ValueError:
        raise ConfigurationError(f"EMBEDDING_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(timeout) or timeout <= 0:
        raise ConfigurationError(f"EMBEDDING_TIMEOUT must be a positive number, got {raw!r}")
    return timeout


def read_lightrag_env(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | os.PathLike[str] | None = None
) -> LightRAGEmbeddingEnv:
    """Parse LightRAG's embedding variables from ``environ`` (default ``os.environ``).

    With ``dotenv_path``, that ``.env`` is read too and, as in ``lightrag-server``, variables already
    in the environment win over the file. Names read: ``EMBEDDING_BINDING`` (openai or ollama),
    ``EMBEDDING_BINDING_HOST`` (required), ``EMBEDDING_BINDING_API_KEY``, ``EMBEDDING_MODEL``,
    ``EMBEDDING_DIM``, ``EMBEDDING_SEND_DIM``, ``EMBEDDING_TOKEN_LIMIT`` (older guides:
    ``MAX_EMBED_TOKENS``), ``EMBEDDING_FUNC_MAX_ASYNC``, ``EMBEDDING_BATCH_NUM``,
    ``EMBEDDING_TIMEOUT``, and ``EMBEDDING_ASYMMETRIC`` / ``EMBEDDING_QUERY_PREFIX`` /
    ``EMBEDDING_DOCUMENT_PREFIX`` for the query instruction.
    """
    env = _merged_env(environ, dotenv_path)
    binding, host = _binding_and_host(env)
    return LightRAGEmbeddingEnv(
        host=host,
        model=_env_str(env, "EMBEDDING_MODEL") or "Qwen3-Embedding-0.6B",
        api_key=_env_str(env, "EMBEDDING_BINDING_API_KEY", special_none=False),
        dim=_env_int(env, "EMBEDDING_DIM", None),
        send_dim=bool(_env_bool(env, "EMBEDDING_SEND_DIM")),
        token_limit=_token_limit(env),
        func_max_async=_env_int(env, "EMBEDDING_FUNC_MAX_ASYNC", DEFAULT_EMBEDDING_FUNC_MAX_ASYNC)
        or DEFAULT_EMBEDDING_FUNC_MAX_ASYNC,
        batch_num=_env_int(env, "EMBEDDING_BATCH_NUM", DEFAULT_EMBEDDING_BATCH_NUM) or DEFAULT_EMBEDDING_BATCH_NUM,
        timeout=_timeout(env),
        query_instruction=_query_instruction(env),
        binding=binding,
    )


def embedder_from_lightrag_env(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | os.PathLike[str] | None = None
) -> RemoteEmbedder:
    """Build the embedder from LightRAG's own ``EMBEDDING_*`` variables (see ``read_lightrag_env``).

    ``EMBEDDING_DIM`` becomes ``dimensions`` (truncated client-side when the server does not
    shorten vectors itself), ``EMBEDDING_SEND_DIM`` decides whether ``dimensions`` is sent,
    ``EMBEDDING_BATCH_NUM`` / ``EMBEDDING_FUNC_MAX_ASYNC`` / ``EMBEDDING_TIMEOUT`` become batch size,
    concurrency and timeout. The key is read from ``EMBEDDING_BINDING_API_KEY`` and never shown.

    >>> emb = embedder_from_lightrag_env({"EMBEDDING_BINDING_HOST": "http://localhost:30000/v1",
    ...                                   "EMBEDDING_DIM": "512"})
    >>> emb.dimension
    512
    """
    return read_lightrag_env(environ, dotenv_path=dotenv_path).embedder()


def lightrag_embedding_func_from_env(
    environ: Mapping[str, str] | None = None, *, dotenv_path: str | os.PathLike[str] | None = None
) -> EmbeddingFunc:
    """``lightrag_embedding_func(embedder_from_lightrag_env(...))`` with ``EMBEDDING_TOKEN_LIMIT`` applied."""
    return read_lightrag_env(environ, dotenv_path=dotenv_path).embedding_func()


def _dotenv_quote(value: str, key: str) -> str:
    if "${" in value:
        raise ConfigurationError(f"{key}: a value containing '${{' would be expanded by python-dotenv")
    if re.fullmatch(r"[A-Za-z0-9_./:@+-]*", value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def lightrag_env_values(
    embedder: Embedder,
    *,
    host: str | None = None,
    model: str | None = None,
    max_token_size: int | None = None,
    api_key_env: str | None = None,
    batch_num: int | None = None,
    func_max_async: int | None = None,
    timeout: float | None = None,
    vector_store: str | Mapping[str, Any] | None = None,
    workspace: str | None = None,
) -> dict[str, str]:
    """The ``EMBEDDING_*`` variables that make ``lightrag-server`` embed like ``embedder``, and with
    ``vector_store`` (a store spec, see ``lightrag_storage_values``) those of its vector storage.

    ``host`` defaults to a RemoteEmbedder's base URL; for any other embedder (e.g. a LocalEmbedder
    you serve with ``qwen-embed serve``) pass the URL the server listens on. The key is written as
    ``${VAR}`` (python-dotenv expands it from the environment at load time), never as its value:
    ``api_key_env`` names the variable, defaulting to the embedder's own key variable; with no key
    at all ``EMPTY`` is written, which keyless servers accept and the openai client needs.
    The query instruction becomes ``EMBEDDING_QUERY_PREFIX`` with ``EMBEDDING_ASYMMETRIC=true``
    and ``EMBEDDING_DOCUMENT_PREFIX=NO_PREFIX``.
    """
    from ...remote import RemoteEmbedder

    remote = embedder if isinstance(embedder, RemoteEmbedder) else None
    url = host or (remote.openai_base_url if remote is not None else None)
    if not url:
        raise ConfigurationError(
            f"{type(embedder).__name__} runs in-process; lightrag-server needs an HTTP endpoint: "
            "serve the model (e.g. `qwen-embed serve`) and pass host='http://HOST:PORT/v1'"
        )
    dimension = embedder.dimension
    native = embedder.native_dimension
    values: dict[str, str] = {
        "EMBEDDING_BINDING": "openai",
        "EMBEDDING_BINDING_HOST": url.rstrip("/"),
    }
    key_env = api_key_env or (remote.api_key_env if remote is not None else None)
    if key_env is None and remote is not None and remote._api_key:
        key_env = "QWEN_EMBED_API_KEY"
    values["EMBEDDING_BINDING_API_KEY"] = f"${{{key_env}}}" if key_env else "EMPTY"
    values["EMBEDDING_MODEL"] = model or embedder.model
    values["EMBEDDING_DIM"] = str(dimension)
    # lightrag-server does no client-side truncation: a shortened (MRL) width must come from the server.
    shortened = embedder.dimensions is not None and (native is None or dimension < native)
    if shortened and remote is not None and not remote.send_dimensions:
        raise ConfigurationError(
            f"{embedder.model!r} at {dimension}-d is truncated client-side (this server does not take "
            "'dimensions', or sending it was turned off); lightrag-server cannot do that. Serve the model "
            "with Matryoshka dimensions enabled, or use the native dimension, or run LightRAG in Python "
            "with lightrag_embedding_func"
        )
    values["EMBEDDING_SEND_DIM"] = "true" if shortened else "false"
    if max_token_size is not None:
        values["EMBEDDING_TOKEN_LIMIT"] = str(int(max_token_size))
    values["EMBEDDING_FUNC_MAX_ASYNC"] = str(func_max_async or embedder.max_concurrency)
    values["EMBEDDING_BATCH_NUM"] = str(batch_num or embedder.batch_size)
    seconds = timeout if timeout is not None else (remote.timeout if remote is not None else None)
    if seconds is not None:
        values["EMBEDDING_TIMEOUT"] = str(max(1, math.ceil(seconds)))  # LightRAG parses an int
    instruction = embedder.query_instruction
    if instruction:
        values["EMBEDDING_ASYMMETRIC"] = "true"
        values["EMBEDDING_QUERY_PREFIX"] = models.format_query("", instruction)
        values["EMBEDDING_DOCUMENT_PREFIX"] = NO_PREFIX
    else:
        values["EMBEDDING_ASYMMETRIC"] = "false"
    if vector_store is not None:
        values.update(lightrag_storage_values(vector_store, dimension, workspace=workspace))
    return values


#: pgvector's widest HNSW index: ``vector`` up to 2,000 dimensions, ``halfvec`` up to 4,000 (pgvector README)
_PG_VECTOR_INDEX_MAX, _PG_HALFVEC_INDEX_MAX = 2000, 4000


def lightrag_storage_values(
    vector_store: str | Mapping[str, Any], dimension: int, *, workspace: str | None = None
) -> dict[str, str]:
    """The variables that point LightRAG's vector storage at the database a store spec names.

    - ``postgresql://user@host:port/db`` (or the dict of a ``pgvector`` spec with ``conninfo``): LightRAG's
      ``PGVectorStorage`` (``LIGHTRAG_VECTOR_STORAGE``, ``POSTGRES_HOST``/``PORT``/``USER``/``DATABASE``; a
      Unix-socket folder as host works, asyncpg takes it). ``POSTGRES_VECTOR_INDEX_TYPE`` follows pgvector's
      limits as our own store does: ``HNSW`` up to 2,000 dimensions, ``HNSW_HALFVEC`` up to 4,000, and above
      that a ConfigurationError (LightRAG indexes every table). The password is written as ``${VAR}`` from
      the spec's ``password_env``, never as its value. ``m`` / ``ef_construction`` become
      ``POSTGRES_HNSW_M`` / ``POSTGRES_HNSW_EF``; a ``pgvector:///PGDATA`` folder is refused (start the
      bundled server with ``start_embedded_postgres`` and pass its conninfo).
    - ``qdrant+http(s)://host:6333``: ``QdrantVectorDBStorage`` (``QDRANT_URL``, ``QDRANT_API_KEY`` as
      ``${VAR}`` from ``api_key_env``). Qdrant local mode is refused: LightRAG opens
      ``QdrantClient(url=QDRANT_URL, api_key=...)`` and nothing else (lightrag/kg/qdrant_impl.py, 1.5.7).

    ``workspace`` becomes ``POSTGRES_WORKSPACE`` / ``QDRANT_WORKSPACE``.

    >>> v = lightrag_storage_values("postgresql://rag@db.example:5433/kb", 2560)
    >>> v["LIGHTRAG_VECTOR_STORAGE"], v["POSTGRES_HOST"], v["POSTGRES_PORT"], v["POSTGRES_VECTOR_INDEX_TYPE"]
    ('PGVectorStorage', 'db.example', '5433', 'HNSW_HALFVEC')
    """
    from ..spec import parse_store_spec

    spec = parse_store_spec(vector_store)
    values: dict[str, str]
    if spec["store"] == "pgvector":
        values = _postgres_values(spec, dimension)
        if workspace:
            values["POSTGRES_WORKSPACE"] = workspace
    elif spec["store"] == "qdrant":
        location = str(spec.get("location") or "")
        if not location.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"LightRAG's QdrantVectorDBStorage reaches Qdrant by URL only (QdrantClient(url=QDRANT_URL), "
                f"lightrag/kg/qdrant_impl.py): Qdrant local mode ({location!r}) cannot back it; run a Qdrant "
                "server and pass qdrant+http://host:6333"
            )
        values = {"LIGHTRAG_VECTOR_STORAGE": "QdrantVectorDBStorage", "QDRANT_URL": location}
        if spec.get("api_key_env"):
            values["QDRANT_API_KEY"] = f"${{{spec['api_key_env']}}}"
        if workspace:
            values["QDRANT_WORKSPACE"] = workspace
    else:
        raise ConfigurationError(
            f"LightRAG's vector storage is written for pgvector and qdrant specs, not {spec['store']!r} "
            "(Milvus: milvus_lite_env / MILVUS_URI)"
        )
    return values


def _postgres_values(spec: Mapping[str, Any], dimension: int) -> dict[str, str]:
    conninfo = spec.get("conninfo")
    if not conninfo:
        raise ConfigurationError(
            "LightRAG connects to a running PostgreSQL: start the bundled one with "
            "qwen_embed_adapters.adapters.pgvector.start_embedded_postgres(pgdata) and pass the conninfo it returns"
        )
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise MissingDependencyError("psycopg", "pgvector", "reading a PostgreSQL conninfo") from None
    params = conninfo_to_dict(str(conninfo))
    if dimension > _PG_HALFVEC_INDEX_MAX:
        raise ConfigurationError(
            f"LightRAG's PGVectorStorage indexes every table, and pgvector's HNSW index takes at most "
            f"{_PG_VECTOR_INDEX_MAX} dimensions as vector and {_PG_HALFVEC_INDEX_MAX} as halfvec; this embedder "
            f"gives {dimension}: embed at {_PG_HALFVEC_INDEX_MAX} or fewer (Qwen3-Embedding's MRL: dimensions=)"
        )
    values = {
        "LIGHTRAG_VECTOR_STORAGE": "PGVectorStorage",
        "POSTGRES_HOST": str(params.get("host") or "localhost"),
        "POSTGRES_PORT": str(params.get("port") or 5432),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_DATABASE": str(params.get("dbname") or params.get("user") or "postgres"),
        "POSTGRES_VECTOR_INDEX_TYPE": "HNSW" if dimension <= _PG_VECTOR_INDEX_MAX else "HNSW_HALFVEC",
        "POSTGRES_HNSW_M": str(spec.get("m") or 16),
        "POSTGRES_HNSW_EF": str(spec.get("ef_construction") or 64),
    }
    # LightRAG refuses to start PGVectorStorage without POSTGRES_PASSWORD in the environment
    # (STORAGE_ENV_REQUIREMENTS, lightrag/kg/__init__.py): empty when the server needs none (trust, a socket)
    values["POSTGRES_PASSWORD"] = f"${{{spec['password_env']}}}" if spec.get("password_env") else ""
    return values


_BLOCK_BEGIN = "# >>> qwen-embed-adapters: embedding settings for lightrag-server >>>"
_BLOCK_END = "# <<< qwen-embed-adapters <<<"


def lightrag_env_block(embedder: Embedder, **kwargs: Any) -> str:
    """The ``.env`` text for ``lightrag-server`` (see ``lightrag_env_values`` for the arguments)."""
    values = lightrag_env_values(embedder, **kwargs)
    lines = [_BLOCK_BEGIN]
    if values["EMBEDDING_SEND_DIM"] == "true":
        lines.append(
            "# EMBEDDING_SEND_DIM=true: the server must shorten vectors (vLLM: --hf-overrides "
            "'{\"is_matryoshka\": true}'; SGLang: matryoshka_dimensions); lightrag-server cannot."
        )
    lines += [f"{k}={_dotenv_quote(v, k) if not v.startswith('${') else v}" for k, v in values.items()]
    lines.append(_BLOCK_END)
    return "\n".join(lines) + "\n"


def write_lightrag_env(path: str | os.PathLike[str], embedder: Embedder, **kwargs: Any) -> Path:
    """Write (or update) the embedding block of the ``.env`` at ``path`` for ``lightrag-server``.

    Other lines of an existing file are kept; earlier assignments of the variables written here,
    and an earlier block written by this function, are removed so the file has one value for each.
    """
    block = lightrag_env_block(embedder, **kwargs)
    keys = set(lightrag_env_values(embedder, **kwargs)) | {
        "EMBEDDING_TOKEN_LIMIT", "MAX_EMBED_TOKENS", "EMBEDDING_QUERY_PREFIX", "EMBEDDING_DOCUMENT_PREFIX",
    }
    if kwargs.get("vector_store") is not None:  # another storage's variables from an earlier block go too
        keys |= {"POSTGRES_PASSWORD", "POSTGRES_WORKSPACE", "QDRANT_API_KEY", "QDRANT_WORKSPACE"}
    target = Path(path)
    kept: list[str] = []
    if target.exists():
        inside = False
        for line in target.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped == _BLOCK_BEGIN:
                inside = True
                continue
            if stripped == _BLOCK_END:
                inside = False
                continue
            name = stripped.removeprefix("export ").split("=", 1)[0].strip()
            if inside or ("=" in stripped and not stripped.startswith("#") and name in keys):
                continue
            kept.append(line)
    text = "\n".join(kept).rstrip("\n")
    target.write_text((text + "\n\n" if text else "") + block, encoding="utf-8")
    return target


__all__ = [
    "DEFAULT_EMBEDDING_BATCH_NUM",
    "DEFAULT_EMBEDDING_FUNC_MAX_ASYNC",
    "DEFAULT_EMBEDDING_TIMEOUT",
    "NO_PREFIX",
    "OPENAI_COMPATIBLE_BINDINGS",
    "LightRAGEmbeddingEnv",
    "embedder_from_lightrag_env",
    "lightrag_embedding_func_from_env",
    "lightrag_env_block",
    "lightrag_env_values",
    "lightrag_storage_values",
    "read_lightrag_env",
    "write_lightrag_env",
]
