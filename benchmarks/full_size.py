"""LocalEmbedder vs sentence-transformers at Qwen3-Embedding's real size (random weights, issue 18).

Speed does not depend on the values of the weights, so ``make_qwen3(size=...)`` (the real
configuration, random weights, the real 151,669-row embedding matrix, the tiny tokenizer) costs what
the real model costs. Mixed lengths (10 to 2,000 tokens, log-uniform). Each engine runs in its own
process (peak RSS is that process's own), one untimed warm-up on a few texts, then one timed pass.
Reports tokens/s, texts/s, peak RSS, padded tokens / real tokens (from each engine's own batching
rule), and the largest difference between the vectors (fails above ``--tolerance``).

    python benchmarks/full_size.py                                   # CPU, 0.6B shape, 16 texts
    python benchmarks/full_size.py --device cuda --size 0.6B --texts 512 --max-tokens 8192

The model folder is built once and cached under ``${QWEN_EMBED_CACHE:-~/.cache/qwen-embed-adapters}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ("vector database embedding query retrieval passage capital China Beijing model token batch "
         "server index cosine similarity machine learning 机器 学习 向量 数据库").split()
ST_BATCH = 32  # sentence-transformers' default encode batch size


def model_folder(size: str) -> str:
    from qwen_embed_adapters.testing import make_qwen3

    cache = Path(os.environ.get("QWEN_EMBED_CACHE", Path.home() / ".cache" / "qwen-embed-adapters"))
    folder = cache / f"random-qwen3-{size}-seed0"
    if not (folder / "modules.json").is_file():
        print(f"building {folder} ...", file=sys.stderr)
        make_qwen3(folder, size=size, seed=0)
    return str(folder)


def corpus(n: int, tokenizer: object, lo: int, hi: int, seed: int = 0) -> list[str]:
    """n texts whose token counts spread log-uniformly from ``lo`` to ``hi``."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        target = int(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        words = [rng.choice(WORDS) for _ in range(target)]
        while len(tokenizer(" ".join(words))["input_ids"]) > target and len(words) > 3:  # type: ignore[operator]
            words = words[: int(len(words) * 0.9)]
        texts.append(" ".join(words))
    return texts


def worker(engine: str, folder: str, texts_file: str, out: str, device: str) -> None:
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    if engine == "local":
        from qwen_embed_adapters.local import LocalEmbedder

        emb = LocalEmbedder(folder, device=device, dtype="float32")

        def encode(xs: list[str]) -> np.ndarray:
            return emb.embed_documents(xs)

        lengths = emb.token_counts(texts)
        plan = emb._plan_batches(texts)
        padded = sum(max(lengths[i] for i in b) * len(b) for b in plan)
    else:
        import torch
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(folder, device=device, model_kwargs={"torch_dtype": torch.float32})
        st.max_seq_length = 8192

        def encode(xs: list[str]) -> np.ndarray:
            return np.asarray(st.encode(xs, batch_size=ST_BATCH, normalize_embeddings=True))

        lengths = [len(st.tokenizer(t)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # ST sorts by characters
        chunks = [order[i:i + ST_BATCH] for i in range(0, len(order), ST_BATCH)]
        padded = sum(max(lengths[i] for i in c) * len(c) for c in chunks)
    encode(texts[:4])  # warm-up
    t0 = time.perf_counter()
    vecs = encode(texts)
    seconds = time.perf_counter() - t0
    np.save(out + ".npy", vecs.astype(np.float32))
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(out + ".json").write_text(json.dumps({
        "seconds": seconds, "tokens": sum(lengths), "texts": len(texts), "padded": padded,
        "peak_rss_mb": rss_kb / 1024,
    }), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6B", choices=["tiny", "0.6B", "4B", "8B"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--texts", type=int, default=16)
    ap.add_argument("--min-tokens", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=2000)
    ap.add_argument("--engines", default="local,sentence-transformers")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--texts-file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.folder, args.texts_file, args.out, args.device)
        return

    from transformers import AutoTokenizer

    folder = model_folder(args.size)
    texts = corpus(args.texts, AutoTokenizer.from_pretrained(folder), args.min_tokens, args.max_tokens)
    results: dict[str, dict[str, float]] = {}
    vectors: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = str(Path(tmp) / "texts.json")
        Path(texts_file).write_text(json.dumps(texts), encoding="utf-8")
        for engine in args.engines.split(","):
            out = str(Path(tmp) / engine)
            cmd = [sys.executable, __file__, "--worker", engine, "--folder", folder, "--texts-file", texts_file,
                   "--out", out, "--device", args.device]
            print(f"running {engine} ...", file=sys.stderr)
            subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            results[engine] = json.loads(Path(out + ".json").read_text(encoding="utf-8"))
            vectors[engine] = np.load(out + ".npy")
    ref_name = next(iter(vectors))
    worst = 0.0
    print(f"\n{args.size} shape, {args.device}, {len(texts)} texts, {results[ref_name]['tokens']:.0f} tokens "
          f"({args.min_tokens}-{args.max_tokens} each); {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores\n")
    print("| engine | tokens/s | texts/s | peak RSS (MB) | padded / real tokens | max abs diff vs local |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        diff = float(np.abs(vectors[name] - vectors[ref_name]).max())
        worst = max(worst, diff)
        print(f"| {name} | {r['tokens'] / r['seconds']:.0f} | {r['texts'] / r['seconds']:.2f} | "
              f"{r['peak_rss_mb']:.0f} | {r['padded'] / r['tokens']:.2f} | {diff:.1e} |")
    if worst > args.tolerance:
        raise SystemExit(f"vectors differ by {worst:.2e} > {args.tolerance}")


if __name__ == "__main__":
    main()
