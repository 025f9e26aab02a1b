"""The LightRAG ``EmbeddingFunc`` over an Embedder, and the names LightRAG derives from a model."""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ...embedder import Embedder
from ...errors import ConfigurationError, DimensionMismatchError, InvalidInputError, MissingDependencyError
from ...settings import check_int
from ...space import DEFAULT_TOLERANCE

if TYPE_CHECKING:  # pragma: no cover
    from lightrag.utils import EmbeddingFunc

logger = logging.getLogger(__name__)


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


def lightrag_embedding_func(
    embedder: Embedder,
    *,
    max_token_size: int | None = None,
    model_name: str | None = None,
    send_dimensions: bool = False,
    working_dir: str | os.PathLike[str] | None = None,
    workspace: str = "",
    space_check: str = "adopt",
    space_tolerance: float = DEFAULT_TOLERANCE,
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
    - ``working_dir`` (LightRAG's, with its ``workspace``): before its first call of the process the function
      checks the directory's space card (``card.py``: another vector space of the same width raises
      ``VectorSpaceMismatchError`` naming the worst probe) or records one; ``space_check`` ("adopt",
      "strict", "off") and ``space_tolerance`` as for a store. Call ``ensure_lightrag_space`` before
      ``LightRAG(...)`` too when a mismatch must leave LightRAG's document stores untouched.

    The function returns float32 arrays of shape ``(len(texts), dimension)``, rows of unit norm.
    """
    if not isinstance(embedder, Embedder):
        raise ConfigurationError(f"lightrag_embedding_func needs an Embedder, got {type(embedder).__name__}")
    check_int("max_token_size", max_token_size, minimum=1, optional=True)
    cls = _embedding_func_class()
    guard = None
    if working_dir is not None:
        from .card import WorkingDirCard

        guard = WorkingDirCard(working_dir, workspace=workspace, space_check=space_check, tolerance=space_tolerance)
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
        if guard is not None:
            await guard.aprove(embedder)  # once per process: later calls return at once
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


__all__ = ["lightrag_collection_suffix", "lightrag_embedding_func", "lightrag_model_name"]
