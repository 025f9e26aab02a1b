"""LightRAG adapter: an ``EmbeddingFunc`` with Qwen3 query instructions, LightRAG's own environment,
a ``.env`` block for ``lightrag-server``, and a dimension guard for existing working dirs.

LightRAG (lightrag-hku >= 1.5) calls its embedding function with ``context="query"`` when it
searches and ``context="document"`` when it indexes, provided the function declares
``supports_asymmetric=True``. That is exactly where Qwen3's query instruction belongs::

    from lightrag import LightRAG
    from qwen_embed_adapters import RemoteEmbedder
    from qwen_embed_adapters.adapters.lightrag import ensure_lightrag_dimension, lightrag_embedding_func

    emb = RemoteEmbedder("http://localhost:30000/v1", "Qwen3-Embedding-0.6B", dimensions=512)
    ensure_lightrag_dimension("./rag_storage", emb)          # before LightRAG opens the dir
    rag = LightRAG(working_dir="./rag_storage", embedding_func=lightrag_embedding_func(emb), ...)

Nothing here imports LightRAG, pymilvus or faiss until a function needs them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import models
from ..embedder import Embedder
from ..errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
)

if TYPE_CHECKING:  # pragma: no cover
    from lightrag.utils import EmbeddingFunc

    from ..remote import RemoteEmbedder

logger = logging.getLogger(__name__)

#: LightRAG's defaults (lightrag/constants.py, 1.5.x) for the variables it reads.
DEFAULT_EMBEDDING_BATCH_NUM = 10
DEFAULT_EMBEDDING_FUNC_MAX_ASYNC = 8
DEFAULT_EMBEDDING_TIMEOUT = 30
#: LightRAG's marker for "explicitly no prefix" in EMBEDDING_QUERY_PREFIX / EMBEDDING_DOCUMENT_PREFIX.
NO_PREFIX = "NO_PREFIX"
#: The vector namespaces LightRAG creates (lightrag/namespace.py).
VECTOR_NAMESPACES = ("entities", "relationships", "chunks")
#: The LightRAG bindings whose endpoint is an OpenAI-compatible ``/v1/embeddings``.
OPENAI_COMPATIBLE_BINDINGS = ("openai", "ollama")

_TRUE = ("true", "1", "yes", "t", "on")  # what LightRAG's get_env_value(..., bool) accepts
_INSTRUCT_RE = re.compile(r"\AInstruct: (?P<task>.*)\nQuery:\Z", re.DOTALL)


def _embedding_func_class() -> type[EmbeddingFunc]:
    try:
        from lightrag.utils import EmbeddingFunc
    except ImportError as exc:
        raise MissingDependencyError("lightrag-hku", "lightrag", "the LightRAG adapter") from exc
    return EmbeddingFunc


def lightrag_model_name(model: str) -> str:
    """The ``model_name`` to declare to LightRAG for an embedder's model.

    LightRAG puts it (with the dimension) into Milvus/Qdrant/PG collection names, so a local folder
    path is reduced to its last component; a served name such as ``Qwen3-Embedding-0.6B`` is kept as
    is, which matches what ``lightrag-server`` declares for the same ``EMBEDDING_MODEL``.

    >>> lightrag_model_name("/models/Qwen3-Embedding-0.6B/")
    'Qwen3-Embedding-0.6B'
    >>> lightrag_model_name("Qwen/Qwen3-Embedding-0.6B")
    'Qwen/Qwen3-Embedding-0.6B'
    """
    text = model.rstrip("/\\")
    if os.path.isabs(text) or text.startswith((".", "~")) or os.path.isdir(text):
        return os.path.basename(text) or text
    return text


def lightrag_collection_suffix(model_name: str, dimension: int) -> str:
    """The suffix LightRAG 1.5 appends to vector collection names (``BaseVectorStorage._generate_collection_suffix``).

    >>> lightrag_collection_suffix("Qwen3-Embedding-0.6B", 512)
    'qwen3_embedding_0_6b_512d'
    """
    safe = re.sub(r"[^a-zA-Z0-9_]", "_", model_name.strip().lower())
    return f"{safe}_{int(dimension)}d"


# ---------------------------------------------------------------------------------------------------------
# 1. The embedding function
# ---------------------------------------------------------------------------------------------------------
def lightrag_embedding_func(
    embedder: Embedder,
    *,
    max_token_size: int | None = None,
    model_name: str | None = None,
    send_dimensions: bool = False,
) -> EmbeddingFunc:
    """A ``lightrag.utils.EmbeddingFunc`` over ``embedder``, with Qwen3 query instructions.

    - ``embedding_dim`` is the embedder's dimension (a remote embedder with no ``dimensions`` asks
      its endpoint once, here); ``model_name`` defaults to the embedder's model (a folder path is cut
      to its last part), so LightRAG's Milvus/Qdrant/PG storages name collections
      ``<namespace>_<model>_<dim>d``.
    - ``supports_asymmetric=True``: LightRAG's ``context="query"`` calls are embedded with the
      embedder's query instruction (``Instruct: ...\\nQuery:...``), ``context="document"`` calls
      (indexing; also the default when no context is given) without any.
    - ``max_token_size`` becomes LightRAG's ``embedding_token_limit`` (counted with LightRAG's
      tokenizer); None leaves the limit off.
    - ``send_dimensions=True`` makes LightRAG pass ``embedding_dim=``; it is checked against the
      embedder's dimension and a different one raises ``DimensionMismatchError``.

    The function returns float32 arrays of shape ``(len(texts), dimension)``, rows of unit norm.
    """
    if not isinstance(embedder, Embedder):
        raise ConfigurationError(f"lightrag_embedding_func needs an Embedder, got {type(embedder).__name__}")
    if max_token_size is not None and (
        isinstance(max_token_size, bool) or not isinstance(max_token_size, int) or max_token_size < 1
    ):
        raise ConfigurationError(f"max_token_size must be a positive int or None, got {max_token_size!r}")
    cls = _embedding_func_class()
    dimension = embedder.dimension
    name = model_name if model_name is not None else lightrag_model_name(embedder.model)

    async def qwen_embed(
        texts: list[str], context: str | None = "document", embedding_dim: int | None = None, **kwargs: Any
    ) -> np.ndarray:
        # LightRAG's queue wrapper consumes _priority/_timeout; called without it they land here.
        unknown = [k for k in kwargs if not k.startswith("_")]
        if unknown:
            logger.debug("LightRAG passed keyword arguments this function ignores: %s", unknown)
        if embedding_dim is not None and int(embedding_dim) != embedder.dimension:
            raise DimensionMismatchError(
                int(embedding_dim), embedder.dimension, "LightRAG embedding_func",
                f"LightRAG asked for {embedding_dim}-d vectors but {embedder.model!r} makes "
                f"{embedder.dimension}-d ones; build the EmbeddingFunc from an embedder with "
                f"dimensions={embedding_dim}",
            )
        if context == "query":
            out = await embedder.aembed_queries(texts)
        elif context in ("document", None):
            out = await embedder.aembed_documents(texts)
        else:
            raise InvalidInputError(f"context must be 'query' or 'document', got {context!r}")
        return np.ascontiguousarray(out, dtype=np.float32)

    qwen_embed.__qualname__ = qwen_embed.__name__ = f"qwen_embed[{name}]"
    return cls(
        embedding_dim=dimension,
        func=qwen_embed,
        max_token_size=max_token_size,
        send_dimensions=send_dimensions,
        model_name=name,
        supports_asymmetric=True,
    )


# ---------------------------------------------------------------------------------------------------------
# 2. LightRAG's environment: read it, and write the .env block lightrag-server reads
# ---------------------------------------------------------------------------------------------------------
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
        from ..remote import RemoteEmbedder

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
    env: dict[str, str] = dict(os.environ if environ is None else environ)
    if dotenv_path is not None:
        try:
            from dotenv import dotenv_values
        except ImportError as exc:
            raise MissingDependencyError("python-dotenv", "lightrag", "reading a LightRAG .env") from exc
        if not Path(dotenv_path).is_file():
            raise ConfigurationError(f"no .env file at {os.fspath(dotenv_path)!r}")
        for key, value in dotenv_values(dotenv_path).items():
            if value is not None:
                env.setdefault(key, value)

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
    token_limit = _env_int(env, "EMBEDDING_TOKEN_LIMIT", None)
    legacy = _env_int(env, "MAX_EMBED_TOKENS", None)
    if token_limit is None and legacy is not None:
        logger.info("MAX_EMBED_TOKENS is the old name of EMBEDDING_TOKEN_LIMIT; using %d", legacy)
        token_limit = legacy
    elif legacy is not None and legacy != token_limit:
        logger.warning(
            "EMBEDDING_TOKEN_LIMIT=%s and the old MAX_EMBED_TOKENS=%s disagree; LightRAG 1.5 reads "
            "EMBEDDING_TOKEN_LIMIT", token_limit, legacy,
        )

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

    timeout_raw = _env_str(env, "EMBEDDING_TIMEOUT")
    timeout = float(DEFAULT_EMBEDDING_TIMEOUT)
    if timeout_raw is not None:
        try:
            timeout = float(timeout_raw)
        except ValueError:
            raise ConfigurationError(f"EMBEDDING_TIMEOUT must be a number of seconds, got {timeout_raw!r}") from None
        if not math.isfinite(timeout) or timeout <= 0:
            raise ConfigurationError(f"EMBEDDING_TIMEOUT must be a positive number, got {timeout_raw!r}")

    return LightRAGEmbeddingEnv(
        host=host,
        model=_env_str(env, "EMBEDDING_MODEL") or "Qwen3-Embedding-0.6B",
        api_key=_env_str(env, "EMBEDDING_BINDING_API_KEY", special_none=False),
        dim=_env_int(env, "EMBEDDING_DIM", None),
        send_dim=bool(_env_bool(env, "EMBEDDING_SEND_DIM")),
        token_limit=token_limit,
        func_max_async=_env_int(env, "EMBEDDING_FUNC_MAX_ASYNC", DEFAULT_EMBEDDING_FUNC_MAX_ASYNC)
        or DEFAULT_EMBEDDING_FUNC_MAX_ASYNC,
        batch_num=_env_int(env, "EMBEDDING_BATCH_NUM", DEFAULT_EMBEDDING_BATCH_NUM) or DEFAULT_EMBEDDING_BATCH_NUM,
        timeout=timeout,
        query_instruction=instruction,
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
) -> dict[str, str]:
    """The ``EMBEDDING_*`` variables that make ``lightrag-server`` embed like ``embedder``.

    ``host`` defaults to a RemoteEmbedder's base URL; for any other embedder (e.g. a LocalEmbedder
    you serve with ``qwen-embed serve``) pass the URL the server listens on. The key is written as
    ``${VAR}`` (python-dotenv expands it from the environment at load time), never as its value:
    ``api_key_env`` names the variable, defaulting to the embedder's own key variable; with no key
    at all ``EMPTY`` is written, which keyless servers accept and the openai client needs.
    The query instruction becomes ``EMBEDDING_QUERY_PREFIX`` with ``EMBEDDING_ASYMMETRIC=true``
    and ``EMBEDDING_DOCUMENT_PREFIX=NO_PREFIX``.
    """
    from ..remote import RemoteEmbedder

    remote = embedder if isinstance(embedder, RemoteEmbedder) else None
    url = host or (remote.openai_base_url if remote is not None else None)
    if not url:
        raise ConfigurationError(
            f"{type(embedder).__name__} runs in-process; lightrag-server needs an HTTP endpoint: "
            "serve the model (e.g. `qwen-embed serve`) and pass host='http://HOST:PORT/v1'"
        )
    dimension = embedder.dimension
    native = embedder._native_dim
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


# ---------------------------------------------------------------------------------------------------------
# 3. The dimension guard for an existing working dir
# ---------------------------------------------------------------------------------------------------------
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


def _redact_uri(uri: str) -> str:
    return re.sub(r"//[^/@]*@", "//", uri)


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
) -> dict[str, int]:
    """Check that a LightRAG working dir's vector storage holds ``embedder``'s dimension; call it
    before ``LightRAG(...)`` opens the dir.

    ``embedder`` is an Embedder, a LightRAG ``EmbeddingFunc`` (its ``embedding_dim`` and
    ``model_name``) or a plain dimension. Raises ``DimensionMismatchError`` (``.expected`` = what the
    storage holds, ``.actual`` = the new dimension, ``.where`` = file or collection) instead of
    NanoVectorDB's assertion, or Milvus's silent switch to a new empty ``*_<dim>d`` collection.
    Supported ``vector_storage``: ``NanoVectorDBStorage``, ``FaissVectorDBStorage`` and
    ``MilvusVectorDBStorage`` (URI from ``milvus_uri``, else ``$MILVUS_URI``, else
    ``<working_dir>/milvus_lite.db`` as LightRAG does; ``$MILVUS_WORKSPACE`` is honoured). A fresh dir
    passes. Returns what was found, ``{file or collection: dimension}``.
    """
    dim, name = _target(embedder, model_name)
    if vector_storage == "NanoVectorDBStorage":
        return _check_nano(working_dir, workspace, dim)
    if vector_storage == "FaissVectorDBStorage":
        return _check_faiss(working_dir, workspace, dim)
    if vector_storage != "MilvusVectorDBStorage":
        raise ConfigurationError(
            f"vector_storage={vector_storage!r} is not checked; supported: NanoVectorDBStorage, "
            "FaissVectorDBStorage, MilvusVectorDBStorage"
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
        return _check_milvus(client, workspace, dim, name, _redact_uri(uri))
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


__all__ = [
    "DEFAULT_EMBEDDING_BATCH_NUM",
    "DEFAULT_EMBEDDING_FUNC_MAX_ASYNC",
    "DEFAULT_EMBEDDING_TIMEOUT",
    "LightRAGEmbeddingEnv",
    "NO_PREFIX",
    "embedder_from_lightrag_env",
    "ensure_lightrag_dimension",
    "lightrag_collection_suffix",
    "lightrag_embedding_func",
    "lightrag_embedding_func_from_env",
    "lightrag_env_block",
    "lightrag_env_values",
    "lightrag_model_name",
    "milvus_lite_env",
    "read_lightrag_env",
    "write_lightrag_env",
]
