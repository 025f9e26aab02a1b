"""Peak RSS of `ingest()` streaming 10,000 vs 100,000 texts from a generator.

Each run is a fresh child process that reads its texts from a generator (never a list), embeds them with
FakeEmbedder (no model: the figure is the pipeline's and the store's memory, not a model's) and writes them
either to Milvus Lite or to a store that drops every batch (the pipeline alone). The parent samples the
child's RSS (and its children's, in case the store runs helpers) every 20 ms and reports the peak.

    python benchmarks/ingest_memory.py            # prints the table and appends it to docs/benchmarks.md
    python benchmarks/ingest_memory.py --no-docs  # print only
    python benchmarks/ingest_memory.py --quick    # 1,000 vs 5,000 texts: seconds, print only

Target: the peak grows by less than 64 MB from 10,000 to 100,000 texts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DIM = 64
BATCH = 256


def child(store_kind: str, n: int, path: str) -> None:
    """Run one ingestion (in this process) and print the report."""
    sys.path.insert(0, str(REPO))

    import numpy as np

    from qwen_embed_adapters.adapters.base import Hit, VectorStore
    from qwen_embed_adapters.ingest import ingest
    from qwen_embed_adapters.testing import FakeEmbedder

    class NullStore(VectorStore):
        """Drops every batch: what ingest() itself holds."""

        written = 0

        @property
        def name(self) -> str:
            return "null"

        def ensure_dimension(self) -> int:
            return self.embedder.dimension

        def _write(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
            self.written += len(ids)

        def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
            return []

        def count(self) -> int:
            return self.written

        def delete(self, ids: Any) -> None:
            pass

    def texts() -> Any:
        for i in range(n):
            yield f"document {i}: 第{i}段文本, about topic {i % 1000} with a little more text to embed, id {i * 7919}"

    class Forget(list):  # type: ignore[type-arg]
        """A ``calls`` log that keeps nothing: FakeEmbedder logs every text for tests, which would grow."""

        def append(self, item: Any) -> None:
            pass

    emb = FakeEmbedder(dimensions=DIM, batch_size=BATCH)
    emb.calls = Forget()
    if store_kind == "milvus":
        from qwen_embed_adapters.adapters.milvus import MilvusStore

        store: Any = MilvusStore(os.path.join(path, "mem.db"), "mem", emb)
    elif store_kind == "milvus-http":
        from qwen_embed_adapters.adapters.milvus import MilvusStore

        store = MilvusStore(path, "mem", emb)  # path is the server's http:// URI
    else:
        store = NullStore(emb)
    t0 = time.perf_counter()
    report = ingest(store, texts(), batch_size=BATCH, progress=False, skip_existing=False)
    print(f"RESULT {report.written} {store.count()} {time.perf_counter() - t0:.2f}", flush=True)
    if hasattr(store, "close"):
        store.close()


def _sample(proc: subprocess.Popen[str]) -> int:
    import psutil

    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    return peak


def peak_rss(store_kind: str, n: int) -> tuple[float, float, int, int, float | None]:
    """(peak MB of the ingesting process, seconds, written, count, database server's RSS MB or None)."""
    import contextlib

    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ}
        env.pop("MILVUS_URI", None)
        server: Any = contextlib.nullcontext(tmp)
        data_dir = Path(tmp) / "milvus-data"
        if store_kind == "milvus-http":
            # Milvus Lite as its own process, like a Milvus server: the ingesting process's memory is
            # then the pipeline's and the client's alone; the database's is reported beside it.
            sys.path.insert(0, str(REPO))
            from tests.support.milvus_fixtures import milvus_lite_server

            data_dir.mkdir()
            server = milvus_lite_server(data_dir)
        with server as target:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", store_kind, str(n), target],
                stdout=subprocess.PIPE, text=True, env=env,
            )
            peak = _sample(proc)
            server_mb = None
            if store_kind == "milvus-http":
                server_mb = sum(
                    p.memory_info().rss for p in psutil.process_iter(["cmdline"])
                    if str(data_dir) in " ".join(p.info["cmdline"] or [])
                ) / 2**20
        out = proc.stdout.read() if proc.stdout else ""
        if proc.returncode != 0:
            raise RuntimeError(f"child {store_kind} {n} failed with {proc.returncode}")
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        _, written, count, secs = line.split()
        return peak / 2**20, float(secs), int(written), int(count), server_mb


NOTE = """
The pipeline itself is flat: at most `prefetch + 1` batches are in memory whatever the input size. With
Milvus Lite inside the ingesting process (a `.db` path) the process also holds the database, which keeps
the loaded collection (texts, ids, vectors, segments) in memory and grows with every row: that row misses
the target because of the database, not the ingestion. With the same Milvus Lite run as its own process
(`milvus-lite server`, reached over `http://` exactly like a Milvus server or cluster), the ingesting
process stays flat and the database's memory is the server's (last column). For corpora in the millions,
point `MilvusStore` / `qwen-embed ingest --uri` at a server.
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--child", nargs=3, metavar=("STORE", "N", "DIR"), help=argparse.SUPPRESS)
    p.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000])
    p.add_argument("--no-docs", action="store_true", help="do not append to docs/benchmarks.md")
    p.add_argument("--quick", action="store_true", help="1,000 vs 5,000 texts: seconds, implies --no-docs")
    args = p.parse_args()
    if args.quick:
        p.set_defaults(sizes=[1_000, 5_000], no_docs=True)
        args = p.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return 0
    small, big = args.sizes
    rows = []
    for kind, label in (
        ("null", "pipeline only (store drops batches)"),
        ("milvus", "Milvus Lite, in the ingesting process (`./file.db`)"),
        ("milvus-http", "Milvus Lite as a server process (`http://`), ingesting process only"),
    ):
        a = peak_rss(kind, small)
        b = peak_rss(kind, big)
        assert a[2] == small and b[2] == big and a[3] == small and b[3] == big, (a, b)
        rows.append((label, a, b))
    import pymilvus

    head = (
        f"### Ingestion memory: {small:,} vs {big:,} texts from a generator ({dt.date.today()})\n\n"
        f"{DIM}-d FakeEmbedder vectors, batches of {BATCH}, prefetch 2; peak RSS of a fresh process (sampled every "
        f"20 ms); pymilvus {pymilvus.__version__}; {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores. `python benchmarks/ingest_memory.py`\n\n"
        f"| store | peak MB, {small:,} | peak MB, {big:,} | growth MB | seconds, {big:,} | target < 64 MB "
        f"| database server RSS MB, {small:,} / {big:,} |\n"
        "|---|---:|---:|---:|---:|---|---:|\n"
    )
    body = "".join(
        f"| {label} | {a[0]:.0f} | {b[0]:.0f} | {b[0] - a[0]:+.0f} | {b[1]:.1f} | "
        f"{'met' if b[0] - a[0] < 64 else 'missed'} | "
        f"{'-' if a[4] is None or b[4] is None else f'{a[4]:.0f} / {b[4]:.0f}'} |\n"
        for label, a, b in rows
    )
    table = head + body
    print(table)
    if not args.no_docs:
        sys.path.insert(0, str(REPO))
        from tests.support.bench_docs import write_section

        write_section("ingest_memory", table + NOTE)
        print("written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
