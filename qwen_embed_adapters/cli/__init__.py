"""`qwen-embed`: serve, embed, ingest, search, doctor, bench, demo.

This module is the argument registry: each subcommand is registered by one ``_add_<name>(subparsers)``
function below, and its body is ``run(args)`` in the module of the same name (``cli/embed.py`` ...),
imported only when that command runs so `qwen-embed --help` stays fast. Shared options live in
``cli/options.py``, shared output in ``cli/output.py``. The engine is chosen by flags or environment
(``--base-url`` means remote, else the in-process engine).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


_RAW = argparse.RawDescriptionHelpFormatter


def _command(module: str, *, wrap: bool = True) -> Callable[[argparse.Namespace], int]:
    """``qwen_embed_adapters.cli.<module>.run``, imported only when the command runs; ``wrap`` turns the
    library's errors into one ``error: ...`` line (serve reports its own)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        from .output import friendly

        body = importlib.import_module(f"{__name__}.{module}").run
        return (friendly(body) if wrap else body)(args)

    return run


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`qwen-embed serve`: an OpenAI-compatible /v1/embeddings server over LocalEmbedder."""
    from .serve import SERVE_API_KEY_ENV

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
    p.add_argument("--max-batch-tokens", type=int, default=None,
                   help="padded tokens per forward pass (default: 16384 on CUDA/MPS; on a CPU 1024, or 8192 while other processes keep the cores busy during its passes, see local.cpu_is_shared)")
    p.add_argument("--max-inputs", type=int, default=2048, help="most inputs per request (default 2048)")
    p.add_argument("--gather-ms", type=float, default=20.0,
                   help="gather concurrent requests for this long into one batch (0 turns gathering off)")
    p.add_argument("--gather-gap-ms", type=float, default=2.0,
                   help="close a batch once no request arrived for this long (default 2; 0: wait the whole --gather-ms)")
    p.add_argument("--auto-truncate", action="store_true",
                   help="truncate over-long inputs instead of answering 400")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.add_argument("--reranker", default=None, metavar="MODEL",
                   help="also serve POST /v1/rerank with this Qwen3-Reranker (hub id or folder)")
    p.add_argument("--payload-limit", type=int, default=2_000_000,
                   help="largest request body in bytes; larger ones get 413 (default 2000000)")
    p.add_argument("--max-concurrent-requests", type=int, default=512,
                   help="requests served or waiting at once; more get 429 with Retry-After (default 512)")
    p.add_argument("--graceful-timeout", type=float, default=30.0,
                   help="on SIGTERM, seconds to let requests in progress finish before exiting (default 30)")
    p.set_defaults(func=_command("serve", wrap=False))


def _add_embed(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`qwen-embed embed`: texts from a file or stdin to .npy or JSONL."""
    from .options import add_engine_args

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
    p.set_defaults(func=_command("embed"))


def _add_ingest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`qwen-embed ingest`: .txt/.md/.jsonl files, chunked by paragraphs, into a store."""
    from .options import add_engine_args, add_store_args

    p = sub.add_parser(
        "ingest", help="chunk .txt/.md/.jsonl files and ingest them into a vector store (--store)",
        formatter_class=_RAW,
        description="Chunk files by paragraphs under a token limit, embed and store them. Ids are content "
                    "hashes (or the JSONL 'id'), so running the same command again stores only what is missing.",
        epilog="""examples:
  qwen-embed ingest docs/ --store milvus --uri ./kb.db --collection kb --base-url http://localhost:30000/v1
  qwen-embed ingest notes.md faq.jsonl --store chroma --uri ./chroma_db --max-tokens 400
  PINECONE_API_KEY=... qwen-embed ingest corpus.jsonl --store pinecone --collection kb --dimensions 512
  qwen-embed ingest docs/ --store faiss --uri ./faiss_kb                 # a FAISS index saved in a folder
  qwen-embed ingest docs/ --store-spec chroma+http://localhost:8000/kb   # one URI for the whole store
  qwen-embed ingest docs/ --ray --store-spec milvus+http://milvus:19530/kb # embed and write on Ray Data
""",
    )
    p.add_argument("paths", nargs="+", help="files or directories (.txt, .md, .jsonl)")
    p.add_argument("--max-tokens", type=int, default=512, help="chunk size limit in (estimated) tokens [512]")
    p.add_argument("--batch-size", type=int, default=None, help="records per embed/write step [the store's]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="embed and write on Ray Data: a cluster address (ray://head:10001, auto) or, with no "
                        "value, a local Ray started for this run")
    p.add_argument("--ray-concurrency", type=int, default=2, metavar="N",
                   help="with --ray: embedding actors (one model each) [2]")
    p.add_argument("--ray-gpus", type=float, default=0, metavar="G", help="with --ray: GPUs per actor [0]")
    p.add_argument("--no-keywords", action="store_true",
                   help="do not build a client-side store's keyword index (FAISS, Chroma) now; "
                        "the first `search --mode keyword|hybrid` builds it instead")
    add_store_args(p)
    add_engine_args(p)
    p.set_defaults(func=_command("ingest"))


def _add_search(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`qwen-embed search`: print a store's ranked hits for a query."""
    from .options import add_engine_args, add_store_args

    p = sub.add_parser(
        "search", help="search a store with a query and print ranked hits", formatter_class=_RAW,
        description="Embed QUERY (with the Qwen3 query instruction) and print the nearest records, best first; "
                    "--mode keyword or hybrid also (or only) matches its terms.",
        epilog="""examples:
  qwen-embed search "capital of China" --store milvus --uri ./kb.db --collection kb -k 3
  qwen-embed search "如何重置密码" --store chroma --uri ./chroma_db --filter '{"lang": "zh"}' --json
  qwen-embed search "ERR_QUOTA_EXCEEDED" --store faiss --uri ./faiss_kb --mode hybrid   # exact terms too
""",
    )
    p.add_argument("query", help="the query text")
    p.add_argument("--mode", choices=("dense", "keyword", "hybrid"), default="dense",
                   help="dense (vectors), keyword (BM25 / the engine's full-text search) or hybrid "
                        "(both, fused by reciprocal rank; docs/retrieval.md) [dense]")
    p.add_argument("-k", "--top-k", type=int, default=5, help="how many hits [5]")
    p.add_argument("--filter", default=None, help="metadata filter as JSON, e.g. '{\"lang\": \"zh\"}'")
    p.add_argument("--instruction", default=None, help="query task instruction [the model's default]")
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    p.add_argument("--width", type=int, default=100, help="characters of text shown per hit [100]")
    add_store_args(p)
    add_engine_args(p)
    p.set_defaults(func=_command("search"))


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`qwen-embed doctor`: check an endpoint or a local model and print a pass/fail table."""
    from .options import add_engine_args

    p = sub.add_parser(
        "doctor", help="check an endpoint or a local model: reachable, model, dimension, norms, similarity",
        formatter_class=_RAW,
        description="Checks an OpenAI-compatible endpoint (--base-url) or an in-process model: reachable, model "
                    "name, dimension, `dimensions` support, base64 support, the norms of 1,000 vectors, and "
                    "similar pairs scoring above dissimilar ones (Chinese, English, code); against an endpoint also "
                    "padding bugs (a text alone vs in a batch of longer ones), non-determinism and, with "
                    "--reference, the vectors vs the same weights run in-process. Prints a table with a "
                    "fix for each failure; exits 1 when a check fails.",
        epilog="""examples:
  qwen-embed doctor --base-url http://localhost:30000/v1 --model Qwen3-Embedding-0.6B
  qwen-embed doctor --model ./models/Qwen3-Embedding-0.6B          # in-process
  qwen-embed doctor --base-url http://localhost:8080/v1 --json
  qwen-embed doctor --base-url http://localhost:8080/v1 --reference ./models/Qwen3-Embedding-0.6B
  qwen-embed doctor --store milvus:///data/kb.db?collection=kb --base-url http://localhost:30000/v1
""",
    )
    p.add_argument("--store", metavar="URI", default=None,
                   help="a store spec (faiss:///data/kb, chroma:///data/chroma/docs, milvus:///data/kb.db?collection=kb"
                        ", ...): print its space card and each probe's cosine against this embedder; exits 3 when "
                        "the embedder gives another vector space (docs/space.md)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="with --store: lowest per-probe cosine accepted [the store's space_tolerance, 0.99]")
    p.add_argument("--samples", type=int, default=1000, help="vectors whose norms are checked [1000]")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--reference", metavar="MODEL_DIR",
                   help="with --base-url: compare the server's vectors with this model folder run in-process")
    add_engine_args(p)
    p.set_defaults(func=_command("doctor"))


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`qwen-embed bench`: embedding throughput of an engine."""
    from .options import add_engine_args

    p = sub.add_parser(
        "bench", help="measure embedding throughput (texts/s) of an endpoint or a local model",
        formatter_class=_RAW,
        description="Embeds N texts from the bundled corpus and prints the time and texts/s of each round.",
        epilog="""examples:
  qwen-embed bench --base-url http://localhost:30000/v1 -n 2000
  qwen-embed bench --model Qwen/Qwen3-Embedding-0.6B --device cuda -n 500 --rounds 3
""",
    )
    p.add_argument("-n", type=int, default=1000, help="texts per round [1000]")
    p.add_argument("--rounds", type=int, default=1, help="rounds [1]")
    add_engine_args(p)
    p.set_defaults(func=_command("bench"))


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`qwen-embed demo`: the bundled corpus into an embedded store, then a few queries."""
    p = sub.add_parser(
        "demo", help="index a bundled Chinese/English/code corpus in-process and run a few queries",
        formatter_class=_RAW,
        description="Indexes 300 bundled chunks (Chinese, English, code) into Milvus Lite or a persistent Chroma "
                    "with the in-process engine and prints the top hits for a few queries. Uses "
                    "Qwen/Qwen3-Embedding-0.6B where it can be loaded; otherwise the packaged all-MiniLM-L6-v2, "
                    "with a loud warning.",
        epilog="""examples:
  qwen-embed demo
  qwen-embed demo --store chroma --path ./demo-index -q "长江有多长？" -q "binary search"
  qwen-embed demo --model /models/Qwen3-Embedding-0.6B
""",
    )
    from ..adapters.spec import DEFAULT_STORE, STORES

    embedded = tuple(name for name, kind in STORES.items() if kind.embedded)
    default = DEFAULT_STORE if DEFAULT_STORE in embedded else embedded[0]
    p.add_argument("--store", choices=embedded, default=default, help=f"embedded store [{default}]")
    p.add_argument("--path", default=None, help="keep the index in this directory [a temporary one]")
    p.add_argument("--model", default=None, help="model folder or hub id [Qwen/Qwen3-Embedding-0.6B]")
    p.add_argument("--device", default="auto", help="cuda, mps, cpu or auto [auto]")
    p.add_argument("-q", "--query", action="append", default=None, help="a query (repeatable) [5 built-in ones]")
    p.add_argument("-k", "--top-k", type=int, default=3, help="hits per query [3]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--engine", choices=("local", "fake"), default="local", help=argparse.SUPPRESS)
    p.set_defaults(func=_command("demo"))


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



__all__ = ["Registrar", "build_parser", "main"]
