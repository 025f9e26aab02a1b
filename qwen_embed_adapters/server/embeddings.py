"""``POST /v1/embeddings``: OpenAI's request and response, checked item by item; ``input_type: "query"`` (NIM,
Cohere) wraps inputs as Qwen3 queries, with an optional ``instruction``."""

# No `from __future__ import annotations`: FastAPI resolves route annotations (Request) at runtime.

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import models
from ..embedder import Embedder
from ..errors import InvalidInputError, QwenEmbedError
from ..vectors import truncate_normalize
from .body import check_text, read_json_object
from .errors import APIError
from .gatherer import RequestGatherer
from .metrics import ServerMetrics
from .settings import ServerSettings

#: No token of a real vocabulary is longer than this many characters on average over a whole text, so a
#: text over ``max_length * CHARS_PER_TOKEN`` characters is over ``max_length`` tokens without tokenising
#: it (a 2 MB string would take seconds to tokenise). Only pathological text (long runs of one symbol)
#: averages more; under --auto-truncate it is cut to this many characters, then to max_length tokens.
CHARS_PER_TOKEN = 16
#: Answers above this many floats are encoded in a worker thread, not on the event loop.
THREAD_ENCODE_FLOATS = 64 * 1024
#: Requests above this many characters are tokenised (counted) in a worker thread; smaller ones on the event
#: loop, where it takes well under a millisecond: a thread hand-off per request cost more than that on
#: busy cores (docs/benchmarks.md, "Serving side by side").
THREAD_COUNT_CHARS = 8 * 1024


def parse_input(value: Any, max_inputs: int) -> list[str]:
    """``input`` as a list of non-empty strings, or APIError(400) naming the bad item."""
    if value is None:
        raise APIError(400, "'input' is required: a string or a list of strings", param="input")
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise APIError(
            400, f"'input' must be a string or a list of strings, got {type(value).__name__}", param="input"
        )
    if not items:
        raise APIError(400, "'input' is an empty list; send at least one string", param="input")
    if len(items) > max_inputs:
        raise APIError(
            400, f"'input' holds {len(items)} items; this server takes at most {max_inputs} per request",
            param="input", code="too_many_inputs",
        )
    for i, item in enumerate(items):
        _check_item(item, "input" if isinstance(value, str) else f"input[{i}]")
    return items


def _check_item(item: Any, where: str) -> None:
    if isinstance(item, (int, list)) and not isinstance(item, bool):
        raise APIError(
            400, f"{where} is {type(item).__name__}: token-id arrays are not supported, send text "
            "(LangChain's OpenAIEmbeddings sends token ids unless created with check_embedding_ctx_length=False)",
            param="input",
        )
    if not isinstance(item, str):
        raise APIError(400, f"{where} is {type(item).__name__}, not a string", param="input")
    if not item:
        raise APIError(400, f"{where} is an empty string", param="input")
    check_text(item, where, "input")


#: ``input_type`` values (NVIDIA NIM's and Cohere's name for it); "passage" is NIM's word for a document.
INPUT_TYPES = ("query", "document", "passage")


def apply_input_type(texts: list[str], input_type: Any, instruction: Any, embedder: Embedder) -> list[str]:
    """Texts as the model should see them: wrapped as Qwen3 queries for ``input_type="query"``, else as sent.

    ``instruction`` replaces the embedder's ``query_instruction`` (``""`` for no wrapping); it only goes
    with ``input_type="query"``. A bad value is APIError(400) naming it.
    """
    if input_type is not None and input_type not in INPUT_TYPES:
        raise APIError(
            400, f"'input_type' must be 'query' or 'document' (or NIM's 'passage'), got {input_type!r:.50}",
            param="input_type", code="invalid_input_type",
        )
    if instruction is not None and not isinstance(instruction, str):
        raise APIError(400, f"'instruction' must be a string, got {type(instruction).__name__}",
                       param="instruction")
    if input_type != "query":
        if instruction is not None:
            raise APIError(400, f"'instruction' only applies to input_type 'query', got input_type "
                           f"{input_type!r:.50}; documents are embedded as sent", param="instruction")
        return texts
    if instruction is not None:
        check_text(instruction, "instruction", "instruction")
    return embedder.format_queries(texts, instruction)


def dimension_range(embedder: Embedder) -> tuple[int, int]:
    top = embedder.dimension
    info = models.lookup(embedder.model)
    low = info.min_dim if info is not None and info.min_dim else 1
    return min(low, top), top


def parse_dimensions(value: Any, embedder: Embedder) -> int | None:
    if value is None:
        return None
    low, top = dimension_range(embedder)
    if isinstance(value, bool) or not isinstance(value, int):
        raise APIError(400, f"'dimensions' must be an integer, got {value!r:.50}", param="dimensions")
    if not low <= value <= top:
        raise APIError(
            400, f"'dimensions' must be between {low} and {top} for this model, got {value}",
            param="dimensions", code="invalid_dimensions",
        )
    return value


def parse_format(value: Any) -> str:
    fmt = "float" if value is None else value
    if fmt not in ("float", "base64"):
        raise APIError(
            400, f"'encoding_format' must be 'float' or 'base64', got {fmt!r:.50}", param="encoding_format"
        )
    return str(fmt)


def encode_vectors(vectors: np.ndarray, fmt: str) -> list[Any]:
    if fmt == "base64":
        le = np.ascontiguousarray(vectors, dtype="<f4")
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in le]
    out: list[Any] = np.asarray(vectors, dtype=np.float32).tolist()
    return out


def render(vectors: np.ndarray, fmt: str, model: str, total_tokens: int) -> bytes:
    """OpenAI's embeddings answer as JSON bytes."""
    encoded = encode_vectors(vectors, fmt)
    payload = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(encoded)],
        "model": model,
        "usage": {"prompt_tokens": total_tokens, "total_tokens": total_tokens},
    }
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


class EmbeddingsRoute:
    """The body of ``POST /v1/embeddings`` over one embedder (and its gatherer, when gathering)."""

    def __init__(self, embedder: Embedder, settings: ServerSettings, gatherer: RequestGatherer | None,
                 metrics: ServerMetrics | None = None) -> None:
        self.embedder = embedder
        self.settings = settings
        self.gatherer = gatherer
        self.metrics = metrics or ServerMetrics()

    def bound_chars(self, texts: list[str], single: bool) -> list[str]:
        """Refuse (or, under auto-truncate, cut) texts too long in characters to fit, before tokenising them."""
        limit = self.settings.max_length
        if limit is None:
            return texts
        cap = limit * CHARS_PER_TOKEN
        out = list(texts)
        for i, text in enumerate(texts):
            if len(text) <= cap:
                continue
            if self.settings.auto_truncate:
                out[i] = text[:cap]
                continue
            where = "input" if single else f"input[{i}]"
            raise APIError(
                400, f"{where} is {len(text)} characters long, far over the {limit} tokens this model takes "
                "(shorten it, or start the server with --auto-truncate)",
                param="input", code="context_length_exceeded",
            )
        return out

    def count_tokens(self, texts: list[str]) -> list[int]:
        counts = self.embedder.count_tokens(texts)
        return counts if counts is not None else [max(1, len(t.split())) for t in texts]

    def check_model(self, model: Any) -> None:
        if model is not None and (not isinstance(model, str) or not self.settings.knows_model(model)):
            raise APIError(
                404, f"model {model!r:.100} is not served here; this server serves {self.settings.model_name!r}",
                param="model", code="model_not_found",
            )

    def check_lengths(self, counts: list[int], single: bool) -> None:
        """Refuse (or, under auto-truncate, cap) counts over the model's limit; ``counts`` is updated in place."""
        limit = self.settings.max_length
        if limit is None:
            return
        for i, n in enumerate(counts):
            if n <= limit:
                continue
            if self.settings.auto_truncate:
                counts[i] = limit
                continue
            where = "input" if single else f"input[{i}]"
            raise APIError(
                400, f"{where} is {n} tokens long; this model takes at most {limit} "
                "(shorten it, or start the server with --auto-truncate)",
                param="input", code="context_length_exceeded",
            )

    async def embed(self, texts: list[str], counts: list[int]) -> np.ndarray:
        embed_fn: Callable[[list[str]], np.ndarray] = self.embedder.embed_texts
        try:
            if self.gatherer is not None:
                return await self.gatherer.submit(texts, counts)
            queued = time.perf_counter()

            def timed() -> np.ndarray:
                self.metrics.observe_queue(time.perf_counter() - queued)
                self.metrics.observe_batch(len(texts))
                return embed_fn(texts)

            return await asyncio.to_thread(timed)
        except InvalidInputError as exc:
            raise APIError(400, str(exc), param="input") from None
        except QwenEmbedError as exc:
            raise APIError(500, f"embedding failed: {exc}", type="server_error") from None

    async def __call__(self, request: Any) -> Any:
        from fastapi.responses import Response

        body = await read_json_object(request)
        self.check_model(body.get("model"))
        single = isinstance(body.get("input"), str)
        texts = parse_input(body.get("input"), self.settings.max_inputs)
        texts = apply_input_type(texts, body.get("input_type"), body.get("instruction"), self.embedder)
        texts = self.bound_chars(texts, single)
        fmt = parse_format(body.get("encoding_format", "float"))
        dims = parse_dimensions(body.get("dimensions"), self.embedder)
        small = sum(map(len, texts)) <= THREAD_COUNT_CHARS
        counts = self.count_tokens(texts) if small else await asyncio.to_thread(self.count_tokens, texts)
        self.check_lengths(counts, single)
        self.metrics.observe_inputs("/v1/embeddings", len(texts), int(sum(counts)))
        vectors = await self.embed(texts, counts)
        if dims is not None and dims != vectors.shape[1]:
            vectors = truncate_normalize(vectors, dims)
        args = (vectors, fmt, self.settings.model_name, int(sum(counts)))
        big = vectors.size > THREAD_ENCODE_FLOATS
        content = await asyncio.to_thread(render, *args) if big else render(*args)
        return Response(content, media_type="application/json")


def add_embedding_routes(app: Any, embedder: Embedder, settings: ServerSettings,
                         gatherer: RequestGatherer | None, metrics: ServerMetrics | None = None) -> EmbeddingsRoute:
    """Register ``POST /v1/embeddings``."""
    from fastapi import Request

    route = EmbeddingsRoute(embedder, settings, gatherer, metrics)

    async def embeddings(request: Request) -> Any:
        return await route(request)

    app.add_api_route("/v1/embeddings", embeddings, methods=["POST"])
    return route


__all__ = [
    "CHARS_PER_TOKEN",
    "EmbeddingsRoute",
    "INPUT_TYPES",
    "THREAD_COUNT_CHARS",
    "THREAD_ENCODE_FLOATS",
    "add_embedding_routes",
    "apply_input_type",
    "dimension_range",
    "encode_vectors",
    "parse_dimensions",
    "parse_format",
    "parse_input",
    "render",
]
