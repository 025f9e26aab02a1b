"""`qwen-embed`: serve, embed, ingest, search, doctor, bench, demo.

Each subcommand is registered by one ``_add_<name>(subparsers)`` function below; the engine is chosen
by flags or environment (``--base-url`` means remote, else the in-process engine).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


# ---------------------------------------------------------------------------- serve (in-process engine issue)
SERVE_API_KEY_ENV = "QWEN_EMBED_SERVE_API_KEY"


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`qwen-embed serve`: an OpenAI-compatible /v1/embeddings server over LocalEmbedder."""
    p = sub.add_parser(
        "serve",
        help="serve a local model on an OpenAI-compatible /v1/embeddings endpoint",
        description="Serve an embedding model in-process on OpenAI's /v1/embeddings (FastAPI + uvicorn). "
        "Binds 127.0.0.1 unless --host says otherwise.",
    )
    p.add_argument("--model", default=None,
                   help="model folder or hub id (default: $QWEN_EMBED_MODEL, else Qwen/Qwen3-Embedding-0.6B)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=30000, help="port (default 30000)")
    p.add_argument("--api-key", default=None,
                   help=f"require 'Authorization: Bearer KEY' (default: ${SERVE_API_KEY_ENV}, else no key)")
    p.add_argument("--served-model-name", default=None, help="the model id clients send and /v1/models lists")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", default="auto", help="auto (bf16/fp16 on CUDA, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--max-length", type=int, default=8192, help="longest input in tokens (default 8192)")
    p.add_argument("--max-batch-tokens", type=int, default=16384, help="padded tokens per forward pass")
    p.add_argument("--max-inputs", type=int, default=2048, help="most inputs per request (default 2048)")
    p.add_argument("--gather-ms", type=float, default=5.0,
                   help="gather concurrent requests for this long into one batch (0 turns gathering off)")
    p.add_argument("--auto-truncate", action="store_true",
                   help="truncate over-long inputs instead of answering 400")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.add_argument("--reranker", default=None, metavar="MODEL",
                   help="also serve POST /v1/rerank with this Qwen3-Reranker (hub id or folder)")
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    import os

    from .errors import QwenEmbedError

    try:
        from .local import LocalEmbedder
        from .server import build_app, run

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
            from .rerank import LocalReranker

            reranker = LocalReranker(args.reranker, device=args.device, dtype=args.dtype, max_length=args.max_length,
                                     max_batch_tokens=args.max_batch_tokens)
        app = build_app(
            embedder,
            reranker,
            model_name=args.served_model_name,
            api_key=args.api_key or os.environ.get(SERVE_API_KEY_ENV) or None,
            max_inputs=args.max_inputs,
            gather_ms=args.gather_ms,
            auto_truncate=args.auto_truncate,
        )
    except QwenEmbedError as exc:
        print(f"qwen-embed serve: {exc}", file=sys.stderr)
        return 2
    name = app.state.settings.model_name
    print(
        f"qwen-embed serve: {name} ({embedder.dimension}-d, {embedder.device}) on "
        f"http://{args.host}:{args.port}/v1",
        flush=True,
    )
    if app.state.reranker is not None:
        print(f"qwen-embed serve: reranker {app.state.reranker.model} on http://{args.host}:{args.port}/v1/rerank",
              flush=True)
    run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


# ---------------------------------------------------------------------------- embed, ingest, search, doctor, bench, demo
_RAW = argparse.RawDescriptionHelpFormatter


def _command(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A subcommand body imported only when it runs (keeps `qwen-embed --help` fast)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        from .commands import friendly

        return friendly(getattr(importlib.import_module(f"qwen_embed_adapters.{module}"), name))(args)

    return run


def _add_embed(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`qwen-embed embed`: texts from a file or stdin to .npy or JSONL."""
    from .commands import add_engine_args

    p = sub.add_parser(
        "embed", help="embed texts from a file or stdin into .npy or JSONL", formatter_class=_RAW,
        description="Embed one text per line (or JSONL records with \"text\") and write float32 vectors.",
        epilog="""examples:
  qwen-embed embed notes.txt -o notes.npy --base-url http://localhost:30000/v1
  echo "北京是中国的首都" | qwen-embed embed --dimensions 256          # JSONL on stdout
  qwen-embed embed questions.txt --query -o q.jsonl                     # with the Qwen3 query instruction
""",
    )
    p.add_argument("input", nargs="?", default="-", help="text file (one text per line) or .jsonl; - for stdin")
    p.add_argument("-o", "--output", default=None, help="FILE.npy or FILE.jsonl [JSONL on stdout]")
    p.add_argument("--format", choices=("npy", "jsonl"), default=None, help="output format [from the suffix]")
    p.add_argument("--jsonl", action="store_true", help="read the input as JSONL even without a .jsonl suffix")
    p.add_argument("--query", action="store_true", help="embed as queries (adds the Qwen3 instruction)")
    p.add_argument("--instruction", default=None, help="task instruction for --query [the model's default]")
    add_engine_args(p)
    p.set_defaults(func=_command("commands", "cmd_embed"))


def _add_ingest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registered by the ingestion/CLI work."""


def _add_search(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registered by the ingestion/CLI work."""


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registered by the ingestion/CLI work."""


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registered by the ingestion/CLI work."""


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registered by the ingestion/CLI work."""


_REGISTRARS: list[Registrar] = [
    _add_serve, _add_embed, _add_ingest, _add_search, _add_doctor, _add_bench, _add_demo,
]


def build_parser() -> argparse.ArgumentParser:
    """The `qwen-embed` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="qwen-embed",
        description="Qwen3-Embedding for Chroma, Milvus, Pinecone, LightRAG and FAISS.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `qwen-embed` console script. Each subcommand sets ``func`` returning an exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    code: int = func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
