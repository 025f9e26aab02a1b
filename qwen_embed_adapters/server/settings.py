"""What the app needs beyond the embedder, shared by every route."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from .errors import APIError

DEFAULT_MAX_INPUTS = 2048
DEFAULT_GATHER_MS = 5.0


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


async def read_json_object(request: Any) -> dict[str, Any]:
    """The request body as a JSON object, or an APIError(400) saying what is wrong with it."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body
