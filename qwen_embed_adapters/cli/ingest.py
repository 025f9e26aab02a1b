"""``qwen-embed ingest``: .txt/.md/.jsonl files, chunked by paragraphs, into a store."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import IngestError, InvalidInputError, MissingDependencyError
from .options import build_embedder, open_store, save_if_local, store_spec
from .output import close_quietly

if TYPE_CHECKING:
    from ..adapters.base import VectorStore
    from ..embedder import Embedder

logger = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Chunk .txt/.md/.jsonl files by paragraphs and ingest them into a store."""
    from ..ingest import expand_paths, ingest, iter_file_records

    files = expand_paths(args.paths)
    if not files:
        raise InvalidInputError(f"no .txt/.md/.jsonl files under {', '.join(args.paths)}")
    kind = store_spec(args)["store"]
    embedder = build_embedder(args)
    if args.ray is not None:
        try:
            return _run_on_ray(args, files, embedder)
        finally:
            close_quietly(None, embedder)
    store = None
    try:
        store = open_store(args, embedder)
        records = iter_file_records(files, max_tokens=args.max_tokens)
        try:
            report = ingest(store, records, batch_size=args.batch_size, progress=not args.no_progress)
        except IngestError as exc:
            if args.json and exc.report is not None:
                print(json.dumps({**exc.report.as_dict(), "error": str(exc)}, ensure_ascii=False))
            raise
        else:
            _build_keywords(store, args)
        finally:
            save_if_local(store)  # what was written stays written, even after a failure
        if args.json:
            out = report.as_dict()
            out.pop("failed_ids", None)
            print(json.dumps({**out, "count": store.count()}, ensure_ascii=False))
        else:
            print(f"{len(files)} files -> {store.name!r} ({kind}): {report}; the store now holds "
                  f"{store.count()} records")
        return 0
    finally:
        close_quietly(store, embedder)


def _build_keywords(store: VectorStore, args: argparse.Namespace) -> None:
    """A client-side store's keyword index (FAISS, Chroma), built now so that it is saved with the store
    and the first keyword search does not pay for it; native stores index terms as they write."""
    if store.keyword_support != "client" or getattr(args, "no_keywords", False):
        return
    try:
        store.build_keyword_index()
    except MissingDependencyError as exc:
        logger.warning("keyword index not built (%s); dense search is unaffected", exc)


def _run_on_ray(args: argparse.Namespace, files: list[Path], embedder: Embedder) -> int:
    """``--ray``: the files are chunked here, then embedded by an actor pool and written by Ray tasks."""
    from ..ingest import iter_file_records
    from ..ray import ingest_ray, require_ray

    ray = require_ray()
    if not ray.is_initialized():
        if args.ray == "local":
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=args.ray, log_to_driver=False)
    records = list(iter_file_records(files, max_tokens=args.max_tokens))
    ds = ray.data.from_items(records)
    report = ingest_ray(ds, store_spec(args), embedder, batch_size=args.batch_size or 256,
                        concurrency=args.ray_concurrency, num_gpus=args.ray_gpus)
    if args.json:
        out = report.as_dict()
        out.pop("failed_ids", None)
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"{len(files)} files -> {store_spec(args)['store']} on Ray: {report}")
    return 0


__all__ = [
    "run",
]
