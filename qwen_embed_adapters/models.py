"""What is known of each model: native dimension, MRL range, context length, default instruction."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigurationError
from .settings import check_int

DEFAULT_QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


@dataclass(frozen=True)
class ModelInfo:
    """Facts about one embedding model."""

    name: str
    native_dim: int
    min_dim: int | None  # smallest MRL dimension, None when the model has no MRL
    max_tokens: int
    default_instruction: str  # "" means queries are not wrapped
    pooling: str = "last"

    @property
    def supports_mrl(self) -> bool:
        return self.min_dim is not None


QWEN3_EMBEDDING: dict[str, ModelInfo] = {
    "0.6b": ModelInfo("Qwen/Qwen3-Embedding-0.6B", 1024, 32, 32768, DEFAULT_QWEN3_INSTRUCTION),
    "4b": ModelInfo("Qwen/Qwen3-Embedding-4B", 2560, 32, 32768, DEFAULT_QWEN3_INSTRUCTION),
    "8b": ModelInfo("Qwen/Qwen3-Embedding-8B", 4096, 32, 32768, DEFAULT_QWEN3_INSTRUCTION),
}

# Matches the names servers use: "Qwen/Qwen3-Embedding-0.6B", "Qwen3-Embedding-0.6B",
# Ollama's "qwen3-embedding:0.6b", GGUF repos "Qwen3-Embedding-4B-GGUF", local folders.
_QWEN3_RE = re.compile(r"qwen3[-_]embedding[-_:]?(0\.6b|4b|8b)", re.IGNORECASE)


def lookup(model: str) -> ModelInfo | None:
    """Return what is known of ``model`` (any common spelling), or None for an unknown model."""
    m = _QWEN3_RE.search(model.replace("\\", "/"))
    if m:
        return QWEN3_EMBEDDING[m.group(1).lower()]
    return None


def is_qwen3(model: str) -> bool:
    """True for any Qwen3-Embedding model name, including sizes this table does not know."""
    return "qwen3-embedding" in model.lower().replace("_", "-")


def default_instruction(model: str) -> str:
    """The query instruction used when none is given: Qwen3's default task, or none for other models."""
    info = lookup(model)
    if info is not None:
        return info.default_instruction
    return DEFAULT_QWEN3_INSTRUCTION if is_qwen3(model) else ""


def check_dimensions(model: str, dimensions: int | None, native_dim: int | None = None) -> None:
    """Refuse a requested MRL dimension that the model cannot produce.

    >>> check_dimensions("Qwen3-Embedding-0.6B", 512)
    >>> check_dimensions("Qwen3-Embedding-0.6B", 2048)
    Traceback (most recent call last):
    ...
    qwen_embed_adapters.errors.ConfigurationError: dimensions=2048 is above the native ...
    """
    if dimensions is None:
        return
    check_int("dimensions", dimensions)
    info = lookup(model)
    native = native_dim if native_dim is not None else (info.native_dim if info else None)
    min_dim = info.min_dim if info and info.min_dim else 1
    if dimensions < min_dim:
        raise ConfigurationError(
            f"dimensions={dimensions} is below the smallest dimension {min_dim} of {model!r}"
        )
    if native is not None and dimensions > native:
        raise ConfigurationError(
            f"dimensions={dimensions} is above the native dimension {native} of {model!r}; "
            f"Matryoshka (MRL) truncation can only shorten vectors, choose {min_dim}..{native}"
        )


def format_query(query: str, instruction: str) -> str:
    """Qwen3's query format; no space after ``Query:``. An empty instruction leaves the query as is."""
    if not instruction:
        return query
    return f"Instruct: {instruction}\nQuery:{query}"


__all__ = [
    "DEFAULT_QWEN3_INSTRUCTION",
    "ModelInfo",
    "QWEN3_EMBEDDING",
    "check_dimensions",
    "default_instruction",
    "format_query",
    "is_qwen3",
    "lookup",
]
