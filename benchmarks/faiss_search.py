"""FaissStore search against the seeds' hand-written FAISS code, on the same vectors.

The seeds (guide 001, §5.2-5.3) build ``faiss.IndexFlatIP(d)``, ``index.add(embeddings)`` and search one
query at a time after ``faiss.normalize_L2``, then look the text up in a Python list. This script
times exactly that against ``FaissStore`` (flat, and HNSW at several ``ef_search``) on the same corpus
and queries, one query per call, and measures recall@k of HNSW against the exact result.

Vectors come from FakeEmbedder (deterministic, with shared-word structure like real text embeddings),
so the run needs no model and no network:

    python benchmarks/faiss_search.py                       # 100k x 1024-d, 500 queries
    python benchmarks/faiss_search.py --n 20000 --dim 256   # quicker
    python benchmarks/faiss_search.py --append docs/benchmarks.md
    python benchmarks/faiss_search.py --quick               # 2,000 x 64-d, 20 queries: seconds, never written

Prints a Markdown table; ``--append FILE`` writes it as its own section of FILE (replaced on each run).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support.bench_docs import write_section

WORDS = (
    "capital city river mountain vector database embedding model query passage search index cluster "
    "china france japan beijing paris tokyo history science music football weather market price stock "
    "energy solar battery car train flight hotel doctor hospital medicine school student teacher exam "
    "cloud server network python rust memory disk cache latency throughput language translation poem "
    "novel film actor camera photo garden flower tree forest ocean island desert winter summer rain"
).split()


def corpus(n: int, seed: int) -> list[str]:
    """``n`` distinct short texts drawn from a small vocabulary (so neighbours exist)."""
    rng = random.Random(seed)
    return [f"{' '.join(rng.choices(WORDS, k=rng.randint(5, 14)))} #{i}" for i in range(n)]


def seed_code_search(index: object, documents: list[str], q: np.ndarray, k: int) -> list[tuple[float, str]]:
    """The guide's per-query code: 2-D array, normalize_L2, search, look the texts up."""
    import faiss

    query_embedding = np.array([q], dtype=np.float32)
    faiss.normalize_L2(query_embedding)
    distances, indices = index.search(query_embedding, k)  # type: ignore[attr-defined]
    return [(float(s), documents[i]) for i, s in zip(indices[0], distances[0], strict=True)]


def timed(fn, queries, repeats: int = 3) -> tuple[float, list]:  # type: ignore[no-untyped-def]
    """Best of ``repeats`` passes over the queries (the machine is shared: contention only adds time)."""
    fn(queries[0])  # warm-up
    best, out = float("inf"), []
    for _ in range(repeats):
        out = []
        start = time.perf_counter()
        for q in queries:
            out.append(fn(q))
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="corpus size (default 100000)")
    parser.add_argument("--dim", type=int, default=1024, help="vector width (default 1024, Qwen3-Embedding-0.6B)")
    parser.add_argument("--queries", type=int, default=500, help="queries timed per row (default 500)")
    parser.add_argument("-k", type=int, default=10, help="top k (default 10)")
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--omp-threads", type=int, default=None,
                        help="faiss OpenMP threads (1 avoids stalls on a machine shared with other jobs)")
    parser.add_argument("--append", default=None, help="write the table as its section of this Markdown file (replaced on each run)")
    parser.add_argument("--quick", action="store_true", help="2,000 x 64-d, 20 queries: seconds, never written")
    args = parser.parse_args(argv)
    if args.quick:
        if args.append:
            parser.error("--quick figures are not written to a Markdown file")
        parser.set_defaults(n=2_000, dim=64, queries=20, ef_search=[16, 64])
        args = parser.parse_args(argv)

    import faiss

    if args.omp_threads:
        faiss.omp_set_num_threads(args.omp_threads)
    emb = FakeEmbedder(dimensions=args.dim)
    texts = corpus(args.n, seed=1)
    print(f"embedding {args.n} texts ({args.dim}-d, FakeEmbedder) ...", file=sys.stderr)
    t0 = time.perf_counter()
    vectors = emb.embed_documents(texts)
    query_texts = [f"{' '.join(random.Random(10_000 + i).choices(WORDS, k=4))}" for i in range(args.queries)]
    queries = emb.embed_queries(query_texts)
    print(f"  {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    rows: list[tuple[str, float, float, float | None]] = []  # name, build s, qps, recall

    # 1. The seeds' hand-written code.
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(args.dim)
    index.add(vectors)
    build = time.perf_counter() - t0
    secs, seed_out = timed(lambda q: seed_code_search(index, texts, q, args.k), queries)
    exact = [[t for _, t in r] for r in seed_out]
    rows.append(("seeds: `IndexFlatIP` + list of texts (hand-written)", build, len(queries) / secs, None))

    # 2. FaissStore, exact.
    t0 = time.perf_counter()
    flat = FaissStore(emb)
    flat.add_embeddings(texts, vectors)
    build = time.perf_counter() - t0
    secs, flat_out = timed(lambda q: [h.text for h in flat.search_by_vector(q, args.k)], queries)
    recall_flat = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(flat_out, exact, strict=True)])
    rows.append(("`FaissStore(index=\"flat\")`.search_by_vector", build, len(queries) / secs, float(recall_flat)))

    # 3. FaissStore, HNSW at several ef_search.
    print("building HNSW ...", file=sys.stderr)
    t0 = time.perf_counter()
    hnsw = FaissStore(emb, index="hnsw", hnsw_m=args.hnsw_m, ef_construction=args.ef_construction)
    hnsw.add_embeddings(texts, vectors)
    build = time.perf_counter() - t0
    for ef in args.ef_search:
        hnsw.ef_search = ef
        secs, out = timed(lambda q: [h.text for h in hnsw.search_by_vector(q, args.k)], queries)
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(out, exact, strict=True)])
        rows.append((f"`FaissStore(index=\"hnsw\")`, M={args.hnsw_m}, ef_search={ef}", build, len(queries) / secs,
                     float(recall)))

    # 4. End to end from query text (FakeEmbedder query embedding included).
    sample = query_texts[: min(200, len(query_texts))]
    secs, _ = timed(lambda qt: flat.search(qt, top_k=args.k), sample)
    rows.append(("`FaissStore.search(text)` flat, incl. FakeEmbedder query embedding", 0.0, len(sample) / secs, None))

    cmd = "python benchmarks/faiss_search.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"### FAISS search: FaissStore vs the seeds' hand-written code, {args.n:,} x {args.dim}-d "
        f"({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, faiss {faiss.__version__}, "
        f"{faiss.omp_get_max_threads()} OpenMP threads, numpy {np.__version__}; FakeEmbedder vectors of "
        f"synthetic texts; {len(queries)} queries, one per call, top-{args.k}; queries/s is the best of 3 "
        "passes (the machine was shared with other jobs).",
        "",
        f"| method | build (s) | queries/s | recall@{args.k} vs exact |",
        "|---|---:|---:|---:|",
    ]
    for name, b, qps, rec in rows:
        lines.append(f"| {name} | {b:.1f} | {qps:,.0f} | {'' if rec is None else f'{rec:.3f}'} |")
    lines += [
        "",
        "Build time for FaissStore includes keeping the texts and ids beside the index. Recall is measured "
        "against the seeds' exact `IndexFlatIP` result on the same queries.",
        "",
    ]
    table = "\n".join(lines)
    print(table)
    if args.append:
        write_section("faiss_search", table, doc=Path(args.append))
    return 0


if __name__ == "__main__":
    sys.exit(main())
