"""Several processes share one CachedEmbedder file (as Ray workers do): no lost writes, no wrong answers."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sqlite3
from pathlib import Path

import numpy as np

from qwen_embed_adapters.cache import CachedEmbedder
from qwen_embed_adapters.testing import FakeEmbedder

N = 400


def texts(start: int, stop: int) -> list[str]:
    return [f"passage number {i} about topic {i % 7}" for i in range(start, stop)]


def worker(blob: bytes, start: int, stop: int, rounds: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    cached: CachedEmbedder = pickle.loads(blob)  # as Ray sends it: inner embedder + cache settings
    expected = FakeEmbedder(dimensions=32).embed_documents(texts(start, stop))
    ok = True
    after_first = 0
    for r in range(rounds):
        # small interleaved batches so the two processes' reads and writes overlap
        for i in range(start, stop, 20):
            got = cached.embed_documents(texts(i, min(i + 20, stop)))
            ok &= bool(np.array_equal(got, expected[i - start:i - start + len(got)]))
        if r == 0:
            after_first = cached.misses  # at most stop - start: the other process may have written some
        ok &= cached.misses == after_first  # later rounds: every text is in the file
    out.put((start, ok, cached.hits, cached.misses))


def test_two_processes_write_and_read_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    cached = CachedEmbedder(FakeEmbedder(dimensions=32), path)
    blob = pickle.dumps(cached)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # overlapping ranges: both processes write texts 200..399, each its own 200 more
    procs = [ctx.Process(target=worker, args=(blob, 0, N, 3, out)),
             ctx.Process(target=worker, args=(blob, 200, 200 + N, 3, out))]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for start, ok, hits, misses in results:
        assert ok, f"process starting at {start} got a vector that is not the inner embedder's"
        assert hits + misses == 3 * N
        assert misses <= N and hits >= 2 * N  # the later rounds are all hits
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 200 + N  # every text once
        assert conn.execute("SELECT COUNT(*) FROM spaces").fetchone()[0] == 1  # both found the same space
    # the parent, opening the file afterwards, answers everything from it
    everything = texts(0, 200 + N)
    np.testing.assert_array_equal(cached.embed_documents(everything),
                                  FakeEmbedder(dimensions=32).embed_documents(everything))
    assert (cached.hits, cached.misses) == (200 + N, 0)
