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
def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registered by the local-engine work (server.py)."""


# ---------------------------------------------------------------------------- embed, ingest, search, doctor, bench, demo
def _add_embed(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registered by the ingestion/CLI work."""


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
