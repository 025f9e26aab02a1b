"""``qwen-embed bench``: embedding throughput of an engine on the bundled corpus."""

from __future__ import annotations

import argparse
import time

from .corpus import cycled_texts
from .options import build_embedder
from .output import close_quietly


def run(args: argparse.Namespace) -> int:
    """Embed N texts from the bundled corpus (cycled) and print throughput."""
    texts = cycled_texts(args.n, "{text} ({i})")
    embedder = build_embedder(args)
    try:
        embedder.embed_documents(texts[: min(8, len(texts))])  # load / connect / learn the dimension
        rows = []
        for rnd in range(args.rounds):
            t0 = time.perf_counter()
            out = embedder.embed_documents(texts)
            dt = time.perf_counter() - t0
            rows.append((rnd + 1, len(texts), dt, len(texts) / dt if dt > 0 else float("inf")))
        print(f"engine: {embedder!r}")
        print(f"{'round':>5}  {'texts':>6}  {'seconds':>8}  {'texts/s':>9}")
        for r, n, dt, tps in rows:
            print(f"{r:>5}  {n:>6}  {dt:8.2f}  {tps:9.1f}")
        print(f"output: {out.shape[0]} x {out.shape[1]} float32")
        return 0
    finally:
        close_quietly(embedder)


__all__ = [
    "run",
]
