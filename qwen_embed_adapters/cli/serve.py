"""``qwen-embed serve``: an OpenAI-compatible /v1/embeddings server over LocalEmbedder."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import QwenEmbedError

SERVE_API_KEY_ENV = "QWEN_EMBED_SERVE_API_KEY"


def _serve_gather_tokens(device: str, max_batch_tokens: int | None) -> int | None:
    """Tokens the request gatherer puts in one model call on a CPU: SERVE_CPU_GATHER_TOKENS, or
    ``--max-batch-tokens`` when larger. None elsewhere: the gatherer follows the embedder's own budget.
    The model call then cuts its forward passes by LocalEmbedder's own per-call default (or
    ``--max-batch-tokens``): many requests per call, passes sized for the cores."""
    from ..local.runtime_torch import import_torch, resolve_device
    from ..server.settings import SERVE_CPU_GATHER_TOKENS

    torch, _ = import_torch("qwen-embed serve")
    if resolve_device(torch, device) != "cpu":
        return None
    return max(SERVE_CPU_GATHER_TOKENS, max_batch_tokens or 0)


def _build(args: argparse.Namespace) -> tuple[Any, Any]:
    """(embedder, app) for the flags; the models are loaded here."""
    from ..local import LocalEmbedder
    from ..server import build_app

    embedder = LocalEmbedder(
        args.model,
        device=args.device,
        dtype=args.dtype,
        max_length=args.max_length,
        max_batch_tokens=args.max_batch_tokens,
        truncate=True,
    )
    reranker = None
    if getattr(args, "reranker", None):
        from ..rerank import LocalReranker

        reranker = LocalReranker(args.reranker, device=args.device, dtype=args.dtype, max_length=args.max_length,
                                 max_batch_tokens=args.max_batch_tokens or 16384)
    app = build_app(
        embedder,
        reranker,
        model_name=args.served_model_name,
        api_key=args.api_key or os.environ.get(SERVE_API_KEY_ENV) or None,
        max_inputs=args.max_inputs,
        gather_ms=args.gather_ms,
        gather_gap_ms=args.gather_gap_ms if args.gather_gap_ms > 0 else None,
        max_gather_tokens=_serve_gather_tokens(args.device, args.max_batch_tokens),
        auto_truncate=args.auto_truncate,
        payload_limit=args.payload_limit,
        max_concurrent_requests=args.max_concurrent_requests,
    )
    return embedder, app


def run(args: argparse.Namespace) -> int:
    """Load the model(s), print where they are served, and serve until stopped."""
    try:
        embedder, app = _build(args)
    except QwenEmbedError as exc:
        print(f"qwen-embed serve: {exc}", file=sys.stderr)
        return 2
    from ..server import run as run_server

    name = app.state.settings.model_name
    print(
        f"qwen-embed serve: {name} ({embedder.dimension}-d, {embedder.device}) on "
        f"http://{args.host}:{args.port}/v1",
        flush=True,
    )
    if app.state.reranker is not None:
        print(f"qwen-embed serve: reranker {app.state.reranker.model} on http://{args.host}:{args.port}/v1/rerank",
              flush=True)
    run_server(app, host=args.host, port=args.port, log_level=args.log_level,
               graceful_timeout=args.graceful_timeout)
    return 0


__all__ = [
    "SERVE_API_KEY_ENV",
    "run",
]
