"""Past one machine (issue 16): does throughput grow with what is added?

Remote half: one RemoteEmbedder over 1, 2 and 3 slow servers. Each server is the OpenAI stand-in
(tests/support/openai_server.py) in its own process with ``--slots`` slots and ``--service-time``
seconds per request: it models a GPU replica (vLLM, SGLang, TEI) that runs a fixed number of batches
at once, each taking a fixed time whatever the client does, so its capacity is
slots x batch / service time texts/s and the servers cost this shared machine almost no CPU
(latency-bound, not CPU-bound). The client's throughput should grow with the endpoints, to within 80%
of their summed capacity (least-outstanding routing keeps every slot busy). A last pair of rows puts
one server at a third of the speed of the others: RemoteEmbedder over all three vs what one writes by
hand without it, the texts split evenly over three single-server clients run side by side (the slow
server then sets the pace).

Ray half: ``ingest()`` in one process vs Ray Data with 1 and 2 actors (``ray_half`` below; filled in
with qwen_embed_adapters/ray.py).

    python benchmarks/scale.py [--texts-per-server 3000] [--service-time 0.1] [--slots 2] [--write]
    python benchmarks/scale.py --quick    # remote half, 256 texts per server, 20 ms: seconds, never written

``--quick`` leaves the Ray half out: it is benchmarks/scale_ray.py, which has its own ``--quick``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qwen_embed_adapters import RemoteEmbedder  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402

BATCH = 32
DIM = 256


def start_server(service_time: float, slots: int) -> tuple[subprocess.Popen[str], str]:
    """One stand-in server in its own process (so the servers share no GIL); returns it and its /v1 URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--dim", str(DIM),
         "--service-time", str(service_time), "--slots", str(slots), "--in-order"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/v1"


def remote_half(args: argparse.Namespace) -> list[str]:
    """RemoteEmbedder over 1, 2, 3 servers of fixed capacity: the table's lines."""
    per_server = args.slots * BATCH / args.service_time
    servers = [start_server(args.service_time, args.slots) for _ in range(3)]
    servers.append(start_server(args.service_time * 3, args.slots))  # the slow one, for the last rows
    results: list[tuple[str, float, int, float, list[int]]] = []
    reference: np.ndarray | None = None
    try:
        for n in (1, 2, 3):
            urls = [url for _, url in servers[:n]]
            texts = [f"replica test {n}-{i}: {'lorem ipsum ' * (i % 4)}" for i in range(args.texts_per_server * n)]
            # One request queued behind each slot, as a client of a real replica set would keep.
            emb = RemoteEmbedder(urls if n > 1 else urls[0], model="bench", batch_size=BATCH,
                                 max_concurrency=2 * args.slots * n)
            emb.embed_documents([f"warm {i}" for i in range(BATCH * n)])  # first-use check, connections
            before = [st["served"] for st in emb.endpoint_stats]
            t0 = time.perf_counter()
            out = emb.embed_documents(texts)
            seconds = time.perf_counter() - t0
            served = [st["served"] - b for st, b in zip(emb.endpoint_stats, before, strict=True)]
            emb.close()
            assert out.shape == (len(texts), DIM) and np.isfinite(out).all()
            if n == 1:
                reference = out[: args.texts_per_server]
            results.append((str(n), seconds, len(texts), per_server * n, served))
        # One server of the three at a third of the speed: routing by requests in flight vs an even split.
        uneven = [url for _, url in servers[:2]] + [servers[3][1]]
        cap = per_server * (2 + 1 / 3)
        texts = [f"uneven {i}: {'lorem ipsum ' * (i % 4)}" for i in range(args.texts_per_server * 2)]
        emb = RemoteEmbedder(uneven, model="bench", batch_size=BATCH, max_concurrency=6 * args.slots)
        emb.embed_documents([f"warm {i}" for i in range(BATCH * 3)])
        before = [st["served"] for st in emb.endpoint_stats]
        t0 = time.perf_counter()
        emb.embed_documents(texts)
        seconds = time.perf_counter() - t0
        served = [st["served"] - b for st, b in zip(emb.endpoint_stats, before, strict=True)]
        emb.close()
        results.append(("2 + 1 slow, RemoteEmbedder", seconds, len(texts), cap, served))
        singles = [RemoteEmbedder(u, model="bench", batch_size=BATCH, max_concurrency=2 * args.slots) for u in uneven]
        for single in singles:
            single.embed_documents([f"warm {i}" for i in range(BATCH)])
        thirds = [texts[i::3] for i in range(3)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda pair: pair[0].embed_documents(pair[1]), zip(singles, thirds, strict=True)))
        seconds = time.perf_counter() - t0
        results.append(("2 + 1 slow, even split by hand", seconds, len(texts), cap,
                        [-(-len(t) // BATCH) for t in thirds]))
        for single in singles:
            single.close()
        # The same texts embed to the same vectors whichever server answered.
        check = RemoteEmbedder([url for _, url in servers], model="bench", batch_size=BATCH)
        same = [f"replica test 1-{i}: {'lorem ipsum ' * (i % 4)}" for i in range(args.texts_per_server)]
        assert reference is not None and np.abs(check.embed_documents(same) - reference).max() < 1e-6
        check.close()
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait()
    lines = [
        f"### RemoteEmbedder over 1, 2 and 3 servers ({dt.date.today()}, {platform.machine()}, "
        f"Python {platform.python_version()}, one run, shared 2-core machine)",
        "",
        f"Each server: {args.slots} slots x {args.service_time * 1000:.0f} ms per request of {BATCH} "
        f"(capacity {per_server:,.0f} texts/s), {DIM}-d, in its own process; {args.texts_per_server:,} texts per "
        f"server; `max_concurrency` = 2 x slots x servers. The slow server takes {args.service_time * 3000:.0f} ms "
        "per request. `python benchmarks/scale.py --write`",
        "",
        "| servers | texts | seconds | texts/s | summed capacity | of capacity | vs 1 server | requests per server |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    base_rate = results[0][2] / results[0][1]
    for n, seconds, count, cap, served in results:
        rate = count / seconds
        lines.append(
            f"| {n} | {count:,} | {seconds:.2f} | {rate:,.0f} | {cap:,.0f} | {rate / cap:.0%} | "
            f"{rate / base_rate:.2f}x | {' / '.join(map(str, served))} |"
        )
    return lines


def ray_half(args: argparse.Namespace) -> list[str]:
    """``ingest()`` single process vs Ray Data with 1 and 2 actors (tiny Qwen3 and MiniLM): the table's
    lines, from benchmarks/scale_ray.py (run in a child process: Ray starts its own cluster)."""
    import subprocess

    out = subprocess.run([sys.executable, str(Path(__file__).with_name("scale_ray.py")), "--n", str(args.ray_texts)],
                         capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line.startswith(("|", "#", "`")) or not line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts-per-server", type=int, default=3000)
    ap.add_argument("--service-time", type=float, default=0.1)
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--skip-remote", action="store_true")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--ray-texts", type=int, default=20_000, help="texts per Ray/ingest() run [20000]")
    ap.add_argument("--write", action="store_true", help="write the tables into docs/benchmarks.md")
    ap.add_argument("--quick", action="store_true",
                    help="remote half only, 256 texts per server, 20 ms per request: seconds, never written")
    args = ap.parse_args()
    if args.quick:
        if args.write:
            ap.error("--quick figures are not written to docs/benchmarks.md")
        ap.set_defaults(texts_per_server=256, service_time=0.02, skip_ray=True)
        args = ap.parse_args()
    lines: list[str] = []
    if not args.skip_remote:
        lines += remote_half(args)
    if not args.skip_ray:
        ray_lines = ray_half(args)
        if ray_lines:
            lines += ["", *ray_lines]
    table = "\n".join(lines)
    print(table)
    if args.write and table:
        write_section("scale_remote", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
