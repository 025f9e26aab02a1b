"""Chroma quickstart, fully offline.

Uses ``FakeEmbedder`` (deterministic hashed-word vectors, no model, no network) so it runs anywhere;
swap in a real embedder for real semantics:

    RemoteEmbedder("http://localhost:30000/v1", model="Qwen3-Embedding-0.6B", dimensions=512)
    LocalEmbedder("Qwen/Qwen3-Embedding-0.6B", dimensions=512)

Run:  python examples/chroma_quickstart.py [--path ./chroma-db]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import chromadb
from chromadb.config import Settings

from qwen_embed_adapters.adapters.chroma import ChromaStore, get_or_create_collection
from qwen_embed_adapters.errors import DimensionMismatchError
from qwen_embed_adapters.testing import FakeEmbedder

DOCS = {
    "beijing": "Beijing is the capital of China",
    "paris": "Paris is the capital of France",
    "photo": "Photosynthesis turns light into chemical energy",
    "rust": "The Rust borrow checker prevents data races",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="PersistentClient folder (default: a temporary one)")
    args = parser.parse_args()
    path = args.path or tempfile.mkdtemp(prefix="chroma-quickstart-")

    embedder = FakeEmbedder(dimensions=64, query_instruction="Given a question, find the passage")
    client = chromadb.PersistentClient(path, settings=Settings(anonymized_telemetry=False))

    # 1. A Chroma collection bound to the embedder: Chroma calls it for documents and for query_texts.
    col = get_or_create_collection(client, "quickstart", embedder)
    col.upsert(ids=list(DOCS), documents=list(DOCS.values()))
    res = col.query(query_texts=["What is the capital of France?"], n_results=2)
    print("query_texts  ->", res["ids"][0], "distances", [round(d, 3) for d in res["distances"][0]])
    print("metadata     ->", col.metadata)

    # 2. The same data through the shape Milvus, Pinecone and FAISS share.
    store = ChromaStore(client, "quickstart-store", embedder)
    store.add_texts(DOCS.values(), metadatas=[{"key": k} for k in DOCS])
    for hit in store.search("borrow checker", top_k=2):
        print(f"store.search -> {hit.score:.3f} {hit.metadata['key']}: {hit.text}")

    # 3. One dimension per collection: a 32-d embedder is refused before anything is written.
    try:
        get_or_create_collection(client, "quickstart", FakeEmbedder(dimensions=32))
    except DimensionMismatchError as exc:
        print("refused      ->", exc)

    # 4. A new process re-opens the collection with only the import: Chroma rebuilds the function.
    script = (
        "import sys, chromadb, qwen_embed_adapters.adapters.chroma\n"
        "col = chromadb.PersistentClient(sys.argv[1]).get_collection('quickstart')\n"
        "print(col.query(query_texts=['capital of China'], n_results=1)['ids'][0])\n"
    )
    out = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    print("new process  ->", out.stdout.strip() or out.stderr.strip()[-300:])
    print("data in      ->", path)
    return 0 if out.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
