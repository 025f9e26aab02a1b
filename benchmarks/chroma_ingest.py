"""Add N documents to Chroma through our function and through Chroma's own OpenAIEmbeddingFunction.

    python benchmarks/chroma_ingest.py                  # 5,000 documents, 1024-d, prints a table
    python benchmarks/chroma_ingest.py --append-docs    # also writes its section of docs/benchmarks.md (replaced on each run)
    python benchmarks/chroma_ingest.py --quick          # 200 documents, 64-d: seconds, never written

Both functions talk to the same OpenAI-compatible server (tests/support/openai_server.py, hash vectors,
``--service-time`` seconds per request), once uncapped and once capped at 32 inputs per request like
TEI's default ``--max-client-batch-size``. Each way writes into a fresh collection of one
PersistentClient, and the count is checked. The ways:

1. ``OpenAIEmbeddingFunction``, one ``collection.add`` of every document (Chroma's function sends them
   all in one request);
2. ``OpenAIEmbeddingFunction``, ``add`` called per 32 documents (what a user must do for a capped server);
3. ``QwenEmbeddingFunction`` via ``get_or_create_collection``, one ``add`` of every document
   (the embedder batches, runs requests concurrently, halves its batch on HTTP 413);
4. ``ChromaStore.add_texts`` (content-hash ids, embed + upsert per 256).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402
from chromadb.config import Settings  # noqa: E402

from qwen_embed_adapters.adapters.chroma import ChromaStore, get_or_create_collection  # noqa: E402
from qwen_embed_adapters.remote import RemoteEmbedder  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402
from tests.support.openai_server import EmbeddingServer  # noqa: E402

MODEL = "Qwen3-Embedding-0.6B"


def corpus(n: int) -> list[str]:
    words = ["river", "market", "engine", "garden", "signal", "harbor", "lantern", "meadow", "quartz", "violin"]
    return [
        f"document {i}: the {words[i % 10]} near the {words[(i // 10) % 10]} keeps the {words[(i // 100) % 10]} busy"
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--cap", type=int, default=32, help="inputs per request the capped server takes")
    ap.add_argument("--service-time", type=float, default=0.0, help="seconds per embedding request")
    ap.add_argument("--append-docs", action="store_true")
    ap.add_argument("--quick", action="store_true", help="200 documents, 64-d: seconds, never written")
    args = ap.parse_args()
    if args.quick:
        if args.append_docs:
            ap.error("--quick figures are not written to docs/benchmarks.md")
        ap.set_defaults(n=200, dim=64)
        args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    texts = corpus(args.n)
    ids = [f"d{i}" for i in range(args.n)]
    rows: list[tuple[str, str, str, str]] = []  # server, way, seconds or error, texts/s

    with tempfile.TemporaryDirectory() as tmp:
        client = chromadb.PersistentClient(str(Path(tmp) / "db"), settings=Settings(anonymized_telemetry=False))
        counter = iter(range(1_000_000))

        for server_label, cap in (("uncapped", None), (f"capped at {args.cap}", args.cap)):
            with EmbeddingServer(
                dim=args.dim, model=MODEL, max_batch=cap, service_time=args.service_time
            ) as srv:

                def chroma_ef() -> Any:
                    return OpenAIEmbeddingFunction(api_key="unused", api_base=srv.base_url, model_name=MODEL)

                def ours() -> RemoteEmbedder:
                    return RemoteEmbedder(srv.base_url, model=MODEL, dimensions=args.dim)

                def run(way: str, fn: Callable[[str], Any], server_label: str = server_label) -> None:
                    name = f"bench-{next(counter)}"
                    t0 = time.perf_counter()
                    try:
                        count = fn(name)
                    except Exception as exc:  # the point of way 1 against a capped server
                        msg = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
                        rows.append((server_label, way, msg, "0"))
                        print(f"{server_label:<14} {way:<58} {msg}", flush=True)
                        return
                    seconds = time.perf_counter() - t0
                    assert count == args.n, (way, count)
                    rows.append((server_label, way, f"{seconds:.2f}", f"{args.n / seconds:,.0f}"))
                    print(f"{server_label:<14} {way:<58} {seconds:7.2f} s {args.n / seconds:8.0f} texts/s", flush=True)

                def chroma_one_add(name: str) -> int:
                    col = client.create_collection(name, embedding_function=chroma_ef())
                    col.add(ids=ids, documents=texts)
                    return int(col.count())

                def chroma_chunked(name: str) -> int:
                    col = client.create_collection(name, embedding_function=chroma_ef())
                    step = args.cap
                    for i in range(0, args.n, step):
                        col.add(ids=ids[i : i + step], documents=texts[i : i + step])
                    return int(col.count())

                def ours_one_add(name: str) -> int:
                    with ours() as emb:
                        col = get_or_create_collection(client, name, emb)
                        col.add(ids=ids, documents=texts)
                        return int(col.count())

                def ours_store(name: str) -> int:
                    with ours() as emb:
                        store = ChromaStore(client, name, emb)
                        store.add_texts(texts)
                        return store.count()

                run("1. Chroma OpenAIEmbeddingFunction, one add", chroma_one_add)
                if cap is not None:
                    run(f"2. Chroma OpenAIEmbeddingFunction, add per {args.cap}", chroma_chunked)
                run("3. QwenEmbeddingFunction, one add", ours_one_add)
                run("4. ChromaStore.add_texts", ours_store)

    lines = [
        f"### Chroma ingestion, {args.n:,} documents ({_dt.date.today().isoformat()})",
        "",
        f"{args.dim}-d vectors; embedding server: tests/support/openai_server.py (hash vectors, "
        f"{args.service_time * 1000:.0f} ms per request), uncapped and capped at {args.cap} inputs per request "
        f"(HTTP 413 above, like TEI's default); chromadb {chromadb.__version__} PersistentClient; "
        f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores. "
        "`python benchmarks/chroma_ingest.py`",
        "",
        "| server | way | seconds | texts/s | vs Chroma's function |",
        "|---|---|---:|---:|---:|",
    ]
    # the ratio is against Chroma's own function on the same server: one add, or per-cap adds when
    # one add fails
    base: dict[str, float] = {}
    for s, w, _sec, tps in rows:
        if w[:2] in ("1.", "2.") and tps != "0" and s not in base:
            base[s] = float(tps.replace(",", ""))
    for s, w, sec, tps in rows:
        ratio = f"{float(tps.replace(',', '')) / base[s]:.2f}x" if s in base and tps != "0" else "-"
        lines.append(f"| {s} | {w} | {sec} | {tps} | {ratio} |")
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    if args.append_docs:
        path = write_section("chroma_ingest", table)
        print(f"written to {path}")


if __name__ == "__main__":
    main()
