"""RemoteEmbedder throughput against a server with a fixed service time and a fixed number of slots.

One run, side by side:
  (a) the loop users write today (openai SDK, sequential requests of 64, as in the seeds),
  (b) RemoteEmbedder, sync API,
  (c) RemoteEmbedder, async API,
plus the client's own decode cost for 1024-d vectors: base64 vs JSON floats.

The server (tests/support/openai_server.py) runs in its own process; each request holds one of
``--slots`` slots for ``--service-time`` seconds, so its capacity is slots x batch / service time.

    python benchmarks/remote_throughput.py [--texts 4096] [--service-time 0.1] [--slots 8] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from qwen_embed_adapters import RemoteEmbedder  # noqa: E402
from tests.support.bench_docs import write_section  # noqa: E402

BATCH = 64


def start_server(dim: int, service_time: float, slots: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--dim", str(dim),
         "--service-time", str(service_time), "--slots", str(slots), "--in-order"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url


def hand_written_loop(url: str, texts: list[str]) -> np.ndarray:
    """What the seeds do: the openai client, one request of 64 after another."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="EMPTY")
    out: list[list[float]] = []
    for i in range(0, len(texts), BATCH):
        resp = client.embeddings.create(model="Qwen3-Embedding-0.6B", input=texts[i : i + BATCH])
        out.extend(item.embedding for item in resp.data)
    return np.array(out, dtype=np.float32)


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def decode_costs(dim: int = 1024, n: int = 64, repeat: int = 50) -> tuple[float, float]:
    """Seconds per response of n vectors to decode on the client, JSON floats vs base64.

    Measured outside the library, as the minimum any client does with each answer: parse the JSON, then
    turn every ``embedding`` into float32 (a list of floats, or base64 of little-endian float32 bytes)."""
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    floats = json.dumps({"data": [{"index": i, "embedding": r.tolist()} for i, r in enumerate(rows)]}).encode()
    b64 = json.dumps(
        {"data": [{"index": i, "embedding": base64.b64encode(r.tobytes()).decode()} for i, r in enumerate(rows)]}
    ).encode()

    def from_floats(payload: bytes) -> np.ndarray:
        return np.asarray([d["embedding"] for d in json.loads(payload)["data"]], dtype=np.float32)

    def from_base64(payload: bytes) -> np.ndarray:
        data = json.loads(payload)["data"]
        return np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in data])

    costs = []
    for decode, payload in ((from_floats, floats), (from_base64, b64)):
        assert np.array_equal(decode(payload), rows)
        t0 = time.perf_counter()
        for _ in range(repeat):
            decode(payload)
        costs.append((time.perf_counter() - t0) / repeat)
    return costs[0], costs[1]


def call_costs(dim: int, repeat: int) -> tuple[float, float]:
    """Seconds per whole ``embed_documents`` call of one request of 64 texts, RemoteEmbedder asking for
    JSON floats vs base64, against the stand-in server with no service time (its encoding included)."""
    proc, url = start_server(dim, 0.0, 1)
    costs = []
    try:
        texts = [f"decode cost text {i}" for i in range(BATCH)]
        for fmt in ("float", "base64"):
            with RemoteEmbedder(url, model="bench", batch_size=BATCH, encoding_format=fmt) as emb:
                emb.embed_documents(texts)  # first-use check, connection
                t0 = time.perf_counter()
                for _ in range(repeat):
                    emb.embed_documents(texts)
                costs.append((time.perf_counter() - t0) / repeat)
    finally:
        proc.terminate()
        proc.wait()
    return costs[0], costs[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--service-time", type=float, default=0.1)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=50, help="decode and whole-call repetitions [50]")
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    ap.add_argument("--quick", action="store_true", help="512 texts, 20 ms per request: seconds, never written")
    args = ap.parse_args()
    if args.quick:
        if args.write:
            ap.error("--quick figures are not written to docs/benchmarks.md")
        ap.set_defaults(texts=512, service_time=0.02, repeat=5)
        args = ap.parse_args()

    load_start = os.getloadavg()[0]
    texts = [f"用户评论第{i}条: this product is {'good' if i % 3 else 'bad'}, item {i}" for i in range(args.texts)]
    capacity = args.slots * BATCH / args.service_time
    proc, url = start_server(args.dim, args.service_time, args.slots)
    try:
        # Warm the server's vector cache so every client meets the same fixed service time.
        for i in range(0, len(texts), 512):
            httpx.post(f"{url}/embeddings", json={"model": "m", "input": texts[i : i + 512]}, timeout=60)
        ref, t_loop = timed(hand_written_loop, url, texts)
        sync_emb = RemoteEmbedder(url, model="Qwen3-Embedding-0.6B", batch_size=BATCH, max_concurrency=args.slots)
        sync_emb.embed_documents(texts[:BATCH])  # warm the pool, as a long-lived app would be
        out_sync, t_sync = timed(sync_emb.embed_documents, texts)
        deep_emb = RemoteEmbedder(url, model="Qwen3-Embedding-0.6B", batch_size=BATCH, max_concurrency=2 * args.slots)
        deep_emb.embed_documents(texts[:BATCH])
        out_deep, t_deep = timed(deep_emb.embed_documents, texts)
        async_emb = RemoteEmbedder(url, model="Qwen3-Embedding-0.6B", batch_size=BATCH, max_concurrency=args.slots)

        async def run_async() -> tuple[np.ndarray, float]:
            await async_emb.aembed_documents(texts[:BATCH])
            t0 = time.perf_counter()
            out = await async_emb.aembed_documents(texts)
            return out, time.perf_counter() - t0

        out_async, t_async = asyncio.run(run_async())
    finally:
        proc.terminate()
        proc.wait()
    ref_n = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    for out in (out_sync, out_async, out_deep):
        assert np.abs(out - ref_n).max() < 1e-6
    json_cost, b64_cost = decode_costs(args.dim, repeat=args.repeat)
    json_call, b64_call = call_costs(args.dim, args.repeat)

    rows = [
        ("(a) openai SDK loop, sequential requests of 64", t_loop),
        (f"(b) RemoteEmbedder sync (max_concurrency={args.slots})", t_sync),
        (f"(c) RemoteEmbedder async (max_concurrency={args.slots})", t_async),
        (f"(d) RemoteEmbedder sync (max_concurrency={2 * args.slots}: a request queued behind each slot)", t_deep),
    ]
    lines = [
        f"### RemoteEmbedder throughput ({dt.date.today()}, {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, one run, load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)",
        "",
        f"{args.texts} texts, {args.dim}-d; server: {args.slots} slots x {args.service_time * 1000:.0f} ms per request "
        f"of {BATCH} (capacity {capacity:,.0f} texts/s), in its own process. "
        "`python benchmarks/remote_throughput.py --write`",
        "",
        "| client | seconds | texts/s | vs (a) | of capacity |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in rows:
        rate = args.texts / t
        lines.append(f"| {name} | {t:.2f} | {rate:,.0f} | {t_loop / t:.2f}x | {rate / capacity:.0%} |")
    lines += [
        "",
        f"Client decode cost per response of {BATCH} x {args.dim}-d vectors (`json.loads`, then numpy, "
        f"measured outside the library): JSON floats {json_cost * 1000:.2f} ms, base64 {b64_cost * 1000:.2f} ms "
        f"({json_cost / b64_cost:.1f}x less with base64). Whole `embed_documents` call of {BATCH} texts against "
        f"the stand-in server with no service time (its encoding and the loopback included): "
        f"`encoding_format=\"float\"` {json_call * 1000:.2f} ms, `\"base64\"` {b64_call * 1000:.2f} ms "
        f"({json_call / b64_call:.1f}x). All clients' vectors agree within 1e-6.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("remote_throughput", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
