"""What the native keyword side costs: ingest with and without it, and a keyword query, on Qdrant (local
mode), Milvus Lite and pgvector (the embedded PostgreSQL 18 server).

    python benchmarks/keyword_cost.py                  # 3,000 stdlib functions, prints a table
    python benchmarks/keyword_cost.py --append-docs    # also writes its section of docs/benchmarks.md (replaced on each run)
    python benchmarks/keyword_cost.py --quick          # 300 functions: seconds, never written

The texts are functions of this interpreter's standard library (``benchmarks/stdlib_corpus.py``, shuffled
with seed 0); vectors come from FakeEmbedder (384-d), whose cost is the same in both ingest columns, so the
difference is the keyword side: the analyzer and BM25 function in Milvus, the client-side terms and the
sparse vector in Qdrant, the tsvector and its GIN index in PostgreSQL. Queries are function names (one
keyword search each, top 10) after one warm-up search (Milvus Lite flushes its rows then).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stdlib_corpus import stdlib_functions  # noqa: E402
from qwen_embed_adapters.adapters.base import VectorStore  # noqa: E402
from qwen_embed_adapters.testing import FakeEmbedder  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402
from tests.support.postgres import discard, fresh_server, server_dir  # noqa: E402


def measure(make: Callable[[bool], VectorStore], texts: list[str], ids: list[str], queries: list[str]) -> list[float]:
    """Ingest seconds without and with the keyword side, and milliseconds per keyword query."""
    out: list[float] = []
    for keyword in (False, True):
        store = make(keyword)
        try:
            t0 = time.perf_counter()
            store.add_texts(texts, ids=ids)
            out.append(time.perf_counter() - t0)
            if keyword:
                store.search(queries[0], mode="keyword")
                t0 = time.perf_counter()
                for q in queries:
                    store.search(q, mode="keyword", top_k=10)
                out.append((time.perf_counter() - t0) / len(queries) * 1000)
        finally:
            store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--append-docs", action="store_true")
    ap.add_argument("--quick", action="store_true", help="300 functions, 10 queries: seconds, never written")
    args = ap.parse_args()
    if args.quick:
        args.n, args.queries, args.append_docs = 300, 10, False

    functions = stdlib_functions()
    random.Random(0).shuffle(functions)
    seen: set[str] = set()
    chosen = [f for f in functions if not (f.qualname in seen or seen.add(f.qualname))][: args.n]
    texts, ids = [f.code for f in chosen], [f.qualname for f in chosen]
    queries = [f.name for f in chosen[: args.queries]]
    emb = FakeEmbedder(dimensions=384)
    from qwen_embed_adapters.retrieval import tokenize

    tokenize("预热 warm-up")  # jieba loads its dictionary once per process (seconds): not a per-text cost

    from qwen_embed_adapters.adapters.milvus import MilvusStore
    from qwen_embed_adapters.adapters.pgvector import PgVectorStore
    from qwen_embed_adapters.adapters.qdrant import QdrantStore

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("Qdrant local (:memory:)", measure(lambda kw: QdrantStore(":memory:", "bench", emb, keyword=kw),
                                                       texts, ids, queries)))
        rows.append(("Milvus Lite", measure(lambda kw: MilvusStore(f"{tmp}/m{int(kw)}.db", "bench", emb, keyword=kw),
                                           texts, ids, queries)))
    pgdata = server_dir()  # a copy of the cached cluster (tests/support/postgres.py), discarded after
    try:
        conninfo = fresh_server(pgdata)
        rows.append(("pgvector (PostgreSQL 18, HNSW)",
                     measure(lambda kw: PgVectorStore(conninfo, f"bench_{int(kw)}", emb, keyword=kw), texts, ids, queries)))
    finally:
        discard(pgdata)

    lines = ["| store | texts | ingest s, dense only | ingest s, with keyword side | extra ms/text | keyword query ms |",
             "|---|---|---|---|---|---|"]
    for name, (plain, keyword, query_ms) in rows:
        lines.append(f"| {name} | {len(texts):,} | {plain:.2f} | {keyword:.2f} | "
                     f"{(keyword - plain) / len(texts) * 1000:.2f} | {query_ms:.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.append_docs:
        note = (f"\n### Keyword side cost ({_dt.date.today()}, {platform.machine()}, Python {platform.python_version()})\n\n"
                f"`python benchmarks/keyword_cost.py`: {len(texts):,} stdlib functions, FakeEmbedder 384-d, "
                f"{len(queries)} function-name queries.\n\n")
        write_section("keyword_cost", note + table)


if __name__ == "__main__":
    main()
