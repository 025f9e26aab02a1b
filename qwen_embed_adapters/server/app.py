"""App wiring: settings, lifespan, ``build_app`` and ``run``."""

# No `from __future__ import annotations`: FastAPI resolves route annotations (Request) at runtime.

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ..embedder import Embedder
from ..errors import MissingDependencyError
from .auth import install_auth
from .embeddings import add_embedding_routes
from .errors import import_fastapi, install_error_handlers
from .gatherer import RequestGatherer
from .rerank import add_rerank_routes
from .settings import DEFAULT_GATHER_MS, DEFAULT_MAX_INPUTS, ServerSettings, model_key, served_name

logger = logging.getLogger("qwen_embed_adapters.server")


def _add_info_routes(app: Any, settings: ServerSettings, reranker: Any) -> None:
    """``GET /health`` and ``GET /v1/models``."""

    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def list_models() -> dict[str, Any]:
        names = [settings.model_name]
        rname = getattr(reranker, "model", None) if reranker is not None else None
        if rname:
            names.append(served_name(str(rname)))
        data = [{"id": n, "object": "model", "created": settings.created, "owned_by": "qwen-embed-adapters"}
                for n in names]
        return {"object": "list", "data": data}

    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/v1/models", list_models, methods=["GET"])


def _lifespan(gatherer: RequestGatherer | None) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if gatherer is not None:
            await gatherer.start()
        try:
            yield
        finally:
            if gatherer is not None:
                await gatherer.stop()

    return lifespan


def build_app(
    embedder: Embedder,
    reranker: Any = None,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    gather_ms: float = DEFAULT_GATHER_MS,
    max_gather_tokens: int | None = None,
    auto_truncate: bool = False,
) -> Any:
    """The FastAPI app serving ``embedder`` on OpenAI's ``/v1/embeddings`` (and ``reranker``, when given).

    ``gather_ms=0`` turns request gathering off (each request is its own model call). Inputs longer
    than the embedder's ``max_input_tokens`` are refused with a 400 unless ``auto_truncate``.

    >>> app = build_app(LocalEmbedder("Qwen/Qwen3-Embedding-0.6B"), api_key="s3cret")  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=30000)  # doctest: +SKIP
    """
    fastapi = import_fastapi()
    name = model_name or served_name(embedder.model)
    settings = ServerSettings(
        model_name=name,
        api_key=api_key or None,
        max_inputs=max_inputs,
        gather_ms=gather_ms,
        max_gather_tokens=max_gather_tokens or int(getattr(embedder, "max_batch_tokens", 16384)),
        auto_truncate=auto_truncate,
        max_length=embedder.max_input_tokens,
        aliases={model_key(name), model_key(embedder.model)},
    )
    gatherer = (
        RequestGatherer(embedder.embed_texts, window_s=gather_ms / 1000.0, max_tokens=settings.max_gather_tokens)
        if gather_ms > 0
        else None
    )
    app = fastapi.FastAPI(title="qwen-embed serve", lifespan=_lifespan(gatherer))
    app.state.embedder = embedder
    app.state.reranker = reranker
    app.state.settings = settings
    app.state.gatherer = gatherer
    install_error_handlers(app)
    install_auth(app, settings.api_key)
    _add_info_routes(app, settings, reranker)
    add_embedding_routes(app, embedder, settings, gatherer)
    if reranker is not None:
        add_rerank_routes(app, reranker, settings)
    return app


def run(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 30000,
    log_level: str = "warning",
) -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise MissingDependencyError("uvicorn", "server", "qwen-embed serve") from None
    uvicorn.run(app, host=host, port=port, log_level=log_level)
