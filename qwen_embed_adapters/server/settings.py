"""What the app needs beyond the embedder, shared by every route."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import PurePath

DEFAULT_MAX_INPUTS = 2048
DEFAULT_GATHER_MS = 5.0
DEFAULT_PAYLOAD_LIMIT = 2_000_000  # bytes, as TEI's --payload-limit
DEFAULT_MAX_CONCURRENT = 512  # requests served or waiting at once, as TEI
#: Padded tokens per forward pass `qwen-embed serve` gives a CPU model when --max-batch-tokens is not set.
#: A server's cores are shared by definition (its own event loop, its clients, other jobs), and on shared
#: cores a few large passes beat many small ones: on 2 busy cores (load 11-15) all-MiniLM-L6-v2 embedded
#: 64 chunks of ~200 tokens at 3.2 texts/s with 8,192 vs 1.5 with LocalEmbedder's 1,024, and 256 short
#: queries at 23.2 vs 11.5 (docs/benchmarks.md, "Serving side by side"). The gatherer's budget follows it.
SERVE_CPU_BATCH_TOKENS = 8192


@dataclass
class ServerSettings:
    """What the app needs beyond the embedder; shared with routes added later (e.g. /v1/rerank)."""

    model_name: str
    api_key: str | None = None
    max_inputs: int = DEFAULT_MAX_INPUTS
    gather_ms: float = DEFAULT_GATHER_MS
    max_gather_tokens: int = 16384
    auto_truncate: bool = False
    max_length: int | None = None
    payload_limit: int = DEFAULT_PAYLOAD_LIMIT
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    aliases: set[str] = field(default_factory=set)
    created: int = field(default_factory=lambda: int(time.time()))

    def knows_model(self, name: str) -> bool:
        return model_key(name) in self.aliases


def model_key(name: str) -> str:
    """How a model name is compared: its last path part, lower case."""
    return PurePath(name.rstrip("/\\")).name.lower() if name else ""


def served_name(model: str) -> str:
    """The id a model is served under: its folder name (``Qwen/Qwen3-Embedding-0.6B`` -> ``Qwen3-Embedding-0.6B``)."""
    return PurePath(model.rstrip("/\\")).name or model


__all__ = [
    "DEFAULT_GATHER_MS",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MAX_INPUTS",
    "DEFAULT_PAYLOAD_LIMIT",
    "SERVE_CPU_BATCH_TOKENS",
    "ServerSettings",
    "model_key",
    "served_name",
]
