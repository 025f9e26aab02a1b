"""`qwen-embed serve`: an OpenAI-compatible embedding server over an in-process embedder.

``build_app(embedder, reranker=None)`` returns a FastAPI app with ``GET /health``, ``GET /v1/models``
and ``POST /v1/embeddings``. Requests that arrive together are embedded together: a gatherer
collects them for a few milliseconds (up to a token budget) and runs one length-sorted pass, so 32
clients sending one text each cost about one batch, not 32. Errors have OpenAI's shape
``{"error": {"message", "type", "param", "code"}}`` and name the offending input.

Modules: ``app`` (wiring, lifespan, ``build_app``, ``run``), ``guard`` (the outermost ASGI layer: request
ids, draining, key, back-pressure, body limit, 500s), ``embeddings`` and ``rerank`` (the routes),
``gatherer`` (request gathering), ``body`` (JSON bodies), ``metrics`` (``/metrics``), ``shutdown``
(draining SIGTERM), ``errors``, ``auth``, ``settings``.
FastAPI and uvicorn are imported lazily (the ``server`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence

from .app import build_app, run
from .body import read_json_object
from .errors import APIError, error_response
from .gatherer import RequestGatherer
from .rerank import add_rerank_routes
from .settings import ServerSettings

__all__: Sequence[str] = [
    "APIError",
    "RequestGatherer",
    "ServerSettings",
    "add_rerank_routes",
    "build_app",
    "error_response",
    "read_json_object",
    "run",
]
