"""Re-ingesting a corpus through CachedEmbedder: cold (empty cache) vs warm (every text cached).

A re-ingestion (a rebuilt index, a new collection, another database) of texts embedded before is the
case the cache is for (issue #25). This script ingests the same corpus into a fresh FAISS store three
times over a real model: without a cache, through a CachedEmbedder on an empty file (cold), and through a
new CachedEmbedder on the now-full file (warm: a new process would see the same). The model is
LocalEmbedder on the tiny random Qwen3 (``make_tiny_qwen3``: Qwen3's architecture, hidden size 64), or
``--model DIR`` for a real folder; a bigger model only widens the gap, since a hit costs no model time.

    python benchmarks/cache_reingest.py                          # 20,000 texts
    python benchmarks/cache_reingest.py --quick                  # 300 texts, seconds, writes nothing
    python benchmarks/cache_reingest.py --append docs/benchmarks.md

Prints a Markdown table; ``--append FILE`` writes it as its own section of FILE (replaced on each run) (ignored with ``--quick``).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qwen_embed_adapters.adapters.faiss import FaissStore  # noqa: E402
from qwen_embed_adapters.cache import CachedEmbedder  # noqa: E402
from qwen_embed_adapters.embedder import Embedder  # noqa: E402
from qwen_embed_adapters.ingest import IngestReport, ingest  # noqa: E402
from qwen_embed_adapters.local import LocalEmbedder  # noqa: E402
from qwen_embed_adapters.testing import make_tiny_qwen3  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402

WORDS = ("vector database embedding query retrieval passage capital China Beijing model token batch "
         "server index cosine similarity machine learning river mountain market 机器 学习 向量 数据库").split()


def corpus(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct texts of 10 to 60 words."""
    rng = random.Random(seed)
    return [f"{' '.join(rng.choices(WORDS, k=rng.randint(10, 60)))} #{i}" for i in range(n)]


def timed_ingest(embedder: Embedder, texts: list[str]) -> tuple[float, IngestReport]:
    store = FaissStore(embedder)
    t0 = time.perf_counter()
    report = ingest(store, texts, progress=False)
    return time.perf_counter() - t0, report


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="texts (default 20000)")
    parser.add_argument("--model", default=None, help="a model folder (default: the tiny random Qwen3)")
    parser.add_argument("--quick", action="store_true", help="300 texts, seconds; never writes a file")
    parser.add_argument("--append", default=None, help="write the table as its section of this Markdown file (replaced on each run)")
    args = parser.parse_args(argv)
    n = 300 if args.quick else args.n

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or make_tiny_qwen3(Path(tmp) / "tiny-qwen3")
        texts = corpus(n)
        load_before = uptime()
        inner = LocalEmbedder(folder, device="cpu")
        inner.embed_documents(texts[:64])  # load the model and warm it before any timing
        path = Path(tmp) / "cache.sqlite"

        plain_s, plain = timed_ingest(inner, texts)
        cold_emb = CachedEmbedder(inner, path)
        _ = cold_emb.fingerprint  # the probes, once per process: not part of an ingestion's time
        cold_s, cold = timed_ingest(cold_emb, texts)
        cold_emb.close()
        warm_emb = CachedEmbedder(LocalEmbedder(folder, device="cpu"), path)  # a fresh object on the same file
        _ = warm_emb.fingerprint
        warm_s, warm = timed_ingest(warm_emb, texts)
        with sqlite3.connect(path) as conn:
            entries = conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        size_mb = path.stat().st_size / 1e6 + sum(
            p.stat().st_size for p in Path(tmp).glob("cache.sqlite-*")) / 1e6
        dim = inner.dimension
        load_after = uptime()

    model = args.model or "tiny random Qwen3 (make_tiny_qwen3, hidden 64)"
    cmd = "python benchmarks/cache_reingest.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = [
        ("no cache: `FaissStore(LocalEmbedder)`", plain_s, plain, None),
        ("cold: `CachedEmbedder` on an empty file", cold_s, cold, cold.cache_hit_rate),
        ("warm: new `CachedEmbedder` on the full file", warm_s, warm, warm.cache_hit_rate),
    ]
    lines = [
        f"### Re-ingestion through CachedEmbedder: cold vs warm, {n:,} texts ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Model: {model}, {dim}-d, LocalEmbedder on CPU; store: FaissStore (flat), fresh for each row; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}.  ",
        f"Load before: `{load_before}`  ",
        f"Load after: `{load_after}`",
        "",
        "| run | seconds | texts/s | cache hit rate | vs cold |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, secs, report, rate in rows:
        assert report.written == n, report
        shown_rate = "" if rate is None else f"{rate:.0%}"
        lines.append(f"| {name} | {secs:.2f} | {n / secs:,.0f} | {shown_rate} | {cold_s / secs:.1f}x |")
    lines += [
        "",
        f"Warm is {cold_s / warm_s:.1f}x faster than cold; the cold pass costs {cold_s / plain_s - 1:+.0%} over no "
        f"cache (hashing, lookups, one SQLite transaction per batch). The file holds {entries:,} vectors "
        f"({size_mb:.1f} MB with its WAL). The space card's probes (9 texts, once per process) are embedded "
        "before the timing.",
        "",
    ]
    table = "\n".join(lines)
    print(table)
    if args.append and not args.quick:
        write_section("cache_reingest", table, doc=Path(args.append))
    return 0


if __name__ == "__main__":
    sys.exit(main())
