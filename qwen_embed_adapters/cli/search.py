"""``qwen-embed search``: print a store's ranked hits for a query."""

from __future__ import annotations

import argparse
import json

from ..errors import InvalidInputError
from .options import build_embedder, open_store
from .output import close_quietly, format_hits


def run(args: argparse.Namespace) -> int:
    """Embed a query and print the store's nearest records."""
    filt = None
    if args.filter:
        try:
            filt = json.loads(args.filter)
        except ValueError as exc:
            raise InvalidInputError(f"--filter must be JSON, e.g. '{{\"lang\": \"zh\"}}': {exc}") from None
    embedder = build_embedder(args)
    store = None
    try:
        store = open_store(args, embedder)
        hits = store.search(args.query, top_k=args.top_k, filter=filt, instruction=args.instruction,
                            mode=getattr(args, "mode", "dense"))
        if args.json:
            for h in hits:
                row = {"id": h.id, "score": round(h.score, 6), "text": h.text, "metadata": h.metadata}
                for name in ("vector_score", "keyword_score"):
                    value = getattr(h, name)
                    if value is not None:
                        row[name] = round(value, 6)
                print(json.dumps(row, ensure_ascii=False))
        else:
            print(format_hits(hits, width=args.width))
        return 0
    finally:
        close_quietly(store, embedder)


__all__ = [
    "run",
]
