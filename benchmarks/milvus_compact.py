"""Compact vectors on Milvus Lite: what ``MilvusStore(precision="int8")`` (an HNSW_SQ index whose candidates
are re-scored with the float vectors) costs in retrieval quality next to float32 (issue 32, item 3).

The standard-library code-search set of ``benchmarks/stdlib_corpus.py`` (queries: a function's first docstring
sentence; documents: its source without the docstring; one relevant document each), embedded once with the
packaged all-MiniLM-L6-v2 (384-d) and written into one Milvus Lite collection per row through ``MilvusStore``.
Every collection is flushed, and its index built, before it is searched, so the rows are in a segment with
its vector index (Milvus Lite searches rows it has not flushed by brute force over the float vectors).
Rows: float32 with ``index_type="FLAT"`` (exact: the reference), float32 with the default AUTOINDEX (an HNSW
graph on Milvus Lite), and int8 (HNSW_SQ, 8-bit codes) at ``rescore`` 1 (the index alone) and 4 (the default).
Columns: recall@10 and nDCG@10 of the relevant function, the overlap of the top 10 with the exact top 10, the
bytes per vector of the index files Milvus Lite wrote, and the mean time of one search.

    python benchmarks/milvus_compact.py                 # 1,000 functions (about 2 minutes)
    python benchmarks/milvus_compact.py --write         # also into docs/benchmarks.md
    python benchmarks/milvus_compact.py --quick         # 150 functions: seconds, never written
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compact_vectors import embedded_corpus, scores  # noqa: E402

from qwen_embed_adapters.adapters.milvus import MilvusStore  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402
from tests.support.milvus_fixtures import index_lite, release_lite  # noqa: E402

HEADING = "## Compact vectors on Milvus Lite (int8 = HNSW_SQ, rescored)"
#: (row name, MilvusStore keywords)
ROWS: list[tuple[str, dict[str, Any]]] = [
    ("float32, FLAT (exact)", {"index_type": "FLAT"}),
    ("float32, AUTOINDEX (HNSW)", {}),
    ("int8, HNSW_SQ, rescore 1", {"precision": "int8", "rescore": 1}),
    ("int8, HNSW_SQ, rescore 4", {"precision": "int8", "rescore": 4}),
]


def _index_bytes(db: Path, collection: str) -> int:
    """Bytes of the vector index files Milvus Lite keeps for ``collection`` (its ``indexes`` folders)."""
    total = 0
    for folder in db.rglob("indexes"):
        if collection in folder.parts:
            total += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return total


def run(n: int) -> list[str]:
    ec = embedded_corpus(n)
    ids, texts, queries, doc_vecs = ec.ids, ec.texts, ec.queries, ec.doc_vecs
    rows, exact_top = [], None
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "compact.db"
        for r, (name, kwargs) in enumerate(ROWS):
            collection = f"row{r}"
            store = MilvusStore(str(db), collection, ec.emb, keyword=False, **kwargs)
            store.ensure_dimension()
            for s in range(0, len(ids), 1000):
                store.write_batch(ids[s:s + 1000], doc_vecs[s:s + 1000], texts[s:s + 1000], [{} for _ in ids[s:s + 1000]])
            index_lite(store.client, db, collection)  # out of the memtable into an indexed segment
            tops, t0 = [], time.perf_counter()
            for q in ec.query_vecs:
                tops.append([h.id for h in store._search_vector(q, 10, None)])  # the store's own search path
            per_query_ms = (time.perf_counter() - t0) * 1000 / len(queries)
            if exact_top is None:
                exact_top = tops
            recall, ndcg, overlap = scores(tops, queries, exact_top)
            index_bytes = _index_bytes(db, collection) / len(ids)
            rows.append(f"| {name} | {index_bytes:,.0f} | {recall:.3f} | {ndcg:.3f} | {overlap:.3f} | {per_query_ms:.2f} |")
            store.close()
        release_lite(db)
    return [
        f"{len(ids):,} stdlib functions (Python {ec.corpus.python}), {len(queries):,} docstring queries, all-MiniLM-L6-v2 "
        f"({doc_vecs.shape[1]}-d; embedding took {ec.embed_s:.0f} s), MilvusStore on Milvus Lite, one query per call.",
        "",
        "| index | index files bytes/vector | recall@10 | nDCG@10 | top-10 overlap with exact | ms/query |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--functions", type=int, default=1000, help="stdlib functions [1000]")
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    ap.add_argument("--quick", action="store_true", help="150 functions: seconds, never written")
    args = ap.parse_args()
    if args.quick:
        if args.write:
            ap.error("--quick figures are not written to docs/benchmarks.md")
        args.functions = 150
    logging.basicConfig(level=logging.WARNING)
    machine = f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    lines = [*run(args.functions), "", f"{machine}; `python benchmarks/milvus_compact.py --functions {args.functions}`."]
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("milvus_compact", table, heading=HEADING)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
