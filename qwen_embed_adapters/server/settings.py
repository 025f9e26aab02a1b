"""What the app needs beyond the embedder, shared by every route."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import PurePath

DEFAULT_MAX_INPUTS = 2048
DEFAULT_GATHER_MS = 20.0
#: A batch closes once no request has arrived for this long (or at DEFAULT_GATHER_MS, or the token budget).
DEFAULT_GATHER_GAP_MS = 2.0
DEFAULT_PAYLOAD_LIMIT = 2_000_000  # bytes, as TEI's --payload-limit
DEFAULT_MAX_CONCURRENT = 512  # requests served or waiting at once, as TEI
#: Tokens of gathered requests `qwen-embed serve` puts in one model call on a CPU (the gatherer's budget).
#: The call itself cuts forward passes by LocalEmbedder's per-call default: 1,024 padded tokens on quiet
#: cores, 8,192 on shared ones (``local.tokens.default_batch_tokens``). Gathering is kept apart from the
#: pass size because they want different things: one call per many requests saves a thread hand-off per
#: request, while on a quiet CPU 1,024-token passes stay in cache (all-MiniLM-L6-v2, 256 short queries,
#: quiet 2-core machine: 253 texts/s at 1,024 against 179 at 8,192; docs/benchmarks.md, "Serving side by
#: side"). Before, the gatherer followed the pass size: 8,192 for both.
SERVE_CPU_GATHER_TOKENS = 8192


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
    "DEFAULT_GATHER_GAP_MS",
    "DEFAULT_GATHER_MS",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MAX_INPUTS",
    "DEFAULT_PAYLOAD_LIMIT",
    "SERVE_CPU_GATHER_TOKENS",
    "ServerSettings",
    "model_key",
    "served_name",
]
