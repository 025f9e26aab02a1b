"""Ingest N texts into Milvus Lite four ways and compare throughput.

    python benchmarks/milvus_ingest.py                    # 10,000 texts, 1024-d, prints a table
    python benchmarks/milvus_ingest.py --append-docs      # also writes its section of docs/benchmarks.md (replaced on each run)
    python benchmarks/milvus_ingest.py --quick            # 512 texts, 64-d, 10 ms: seconds, never written

The embedding model is the project's fake OpenAI-compatible server (tests/support/openai_server.py)
with ``--service-time`` seconds per request and one slot, standing in for a GPU server that answers one
batch at a time. The ways:

1. seeds: what the guides do — the openai client embeds batch after batch, then one ``insert`` of
   every row (vectors as Python lists);
2. naive loop: embed a batch with RemoteEmbedder, insert it, repeat;
3. ``MilvusStore.add_texts``: validation, content-hash ids, batched embed + upsert (one after the other);
4. ``ingest(store, texts)``: the same store, embedding the next batches while the current one is written.

Every way writes into a fresh collection of the same Milvus Lite file and the count is checked.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qwen_embed_adapters.adapters.base import content_id  # noqa: E402
from qwen_embed_adapters.adapters.milvus import MilvusStore, milvus_rows  # noqa: E402
from qwen_embed_adapters.ingest import ingest  # noqa: E402
from qwen_embed_adapters.remote import RemoteEmbedder  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402
from tests.support.milvus_fixtures import corpus  # noqa: E402
from tests.support.openai_server import EmbeddingServer  # noqa: E402

MODEL = "Qwen3-Embedding-0.6B"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256, help="texts per insert / write batch")
    ap.add_argument("--embed-batch", type=int, default=64, help="texts per embedding request")
    ap.add_argument("--service-time", type=float, default=0.1, help="seconds per embedding request")
    ap.add_argument("--append-docs", action="store_true")
    ap.add_argument("--quick", action="store_true", help="512 texts, 64-d, 10 ms per request: seconds, never written")
    args = ap.parse_args()
    if args.quick:
        if args.append_docs:
            ap.error("--quick figures are not written to docs/benchmarks.md")
        ap.set_defaults(n=512, dim=64, service_time=0.01)
        args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)  # Milvus Lite's AllocTimestamp noise

    texts = corpus(args.n, prefix="bench")
    results: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddingServer(
        dim=args.dim, model=MODEL, service_time=args.service_time, slots=1
    ) as srv:
        db = str(Path(tmp) / "bench.db")

        def new_store(name: str) -> MilvusStore:
            emb = RemoteEmbedder(srv.base_url, model=MODEL, batch_size=args.embed_batch, dimensions=args.dim)
            store = MilvusStore(db, name, emb, write_batch_size=args.batch)
            store.ensure_collection()
            return store

        def run(label: str, name: str, fn: Callable[[MilvusStore], None]) -> None:
            store = new_store(name)
            t0 = time.perf_counter()
            fn(store)
            seconds = time.perf_counter() - t0
            assert store.count() == args.n, (label, store.count())
            results.append((label, seconds))
            print(f"{label:<42} {seconds:8.2f} s  {args.n / seconds:8.0f} texts/s", flush=True)
            store.embedder.close()
            store.close()

        def seeds(store: MilvusStore) -> None:
            from openai import OpenAI

            client = OpenAI(base_url=srv.base_url, api_key="unused")
            vectors: list[list[float]] = []
            for i in range(0, len(texts), args.embed_batch):
                resp = client.embeddings.create(model=MODEL, input=texts[i : i + args.embed_batch],
                                                dimensions=args.dim)
                vectors.extend(d.embedding for d in resp.data)
            rows = [{"id": content_id(t), "text": t, "metadata": {}, "vector": v} for t, v in zip(texts, vectors, strict=True)]
            store.client.insert(store.collection, rows)

        def naive(store: MilvusStore) -> None:
            for i in range(0, len(texts), args.batch):
                chunk = texts[i : i + args.batch]
                vecs = store.embedder.embed_documents(chunk)
                store.client.insert(store.collection, milvus_rows([content_id(t) for t in chunk], vecs, chunk, [{}] * len(chunk)))

        run("1. seeds: embed all, then one insert", "seeds", seeds)
        run("2. naive loop: embed a batch, insert it", "naive", naive)
        run("3. MilvusStore.add_texts", "add_texts", lambda s: s.add_texts(texts) and None)
        run("4. ingest(store): embedding overlaps writing", "ingest", lambda s: ingest(s, texts, progress=False) and None)

    base = results[0][1]
    lines = [
        f"### Milvus Lite ingestion, {args.n:,} texts ({_dt.date.today().isoformat()})",
        "",
        f"{args.dim}-d vectors; embedding server: {args.service_time * 1000:.0f} ms per request of "
        f"{args.embed_batch} texts, one at a time (a stand-in for a GPU); write batches of {args.batch}; "
        f"Milvus Lite {_version('milvus-lite')}, pymilvus {_version('pymilvus')}; "
        f"{platform.machine()}, Python {platform.python_version()}. `python benchmarks/milvus_ingest.py`",
        "",
        "| way | seconds | texts/s | vs seeds |",
        "|---|---:|---:|---:|",
    ]
    for label, seconds in results:
        lines.append(f"| {label} | {seconds:.1f} | {args.n / seconds:,.0f} | {base / seconds:.2f}x |")
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    if args.append_docs:
        path = write_section("milvus_ingest", table)
        print(f"written to {path}")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
