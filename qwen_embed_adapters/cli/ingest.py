"""``qwen-embed ingest``: .txt/.md/.jsonl files, chunked by paragraphs, into a store."""

from __future__ import annotations

import argparse
import json

from ..errors import IngestError, InvalidInputError
from .options import build_embedder, open_store, save_if_local, store_spec
from .output import close_quietly


def run(args: argparse.Namespace) -> int:
    """Chunk .txt/.md/.jsonl files by paragraphs and ingest them into a store."""
    from ..ingest import expand_paths, ingest, iter_file_records

    files = expand_paths(args.paths)
    if not files:
        raise InvalidInputError(f"no .txt/.md/.jsonl files under {', '.join(args.paths)}")
    kind = store_spec(args)["store"]
    embedder = build_embedder(args)
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
