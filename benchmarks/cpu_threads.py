"""One intra-op thread or torch's count for a forward pass on shared cores, by pass size (issue 30).

``TorchRuntime`` runs a pass of at most ``ONE_THREAD_PASS_TOKENS`` padded tokens on one intra-op thread while
``cpu_is_shared()``; this measures why, and that the rule picks the faster side. Fixed shapes (rows x tokens)
through ``TorchRuntime.run`` one pass at a time, three ways in interleaved turns: torch's own thread count
(the rule off, ``one_thread_pass_tokens=0``), one thread (``torch.set_num_threads(1)``), and the rule as
shipped. ``--phases loaded`` (the default) starts one busy-loop process per core for the run and stops it;
``idle`` runs without them (the rule must then leave every pass on torch's count).

    python benchmarks/cpu_threads.py                   # 0.6B layer shape, 1 layer, loaded: about 3 minutes
    python benchmarks/cpu_threads.py --phases idle,loaded
    python benchmarks/cpu_threads.py --quick           # tiny shape, two shapes, one round: seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu_peers  # (busy_cores, machine)
import full_size as fs  # (model_folder)

from qwen_embed_adapters.local import ONE_THREAD_PASS_TOKENS, TorchRuntime, cpu_is_shared

SHAPES = [(1, 16), (1, 40), (4, 64), (8, 128), (16, 256), (32, 256)]
WAYS = ("torch's count", "1 thread", "the rule")


def time_way(runtime: Any, torch: Any, way: str, rows: int, width: int, seconds: float) -> tuple[float, float]:
    """(tokens/s, p99 ms) of passes of ``rows`` x ``width`` for about ``seconds``, run ``way``."""
    threads = torch.get_num_threads()
    runtime.one_thread_pass_tokens = 0 if way == WAYS[0] else ONE_THREAD_PASS_TOKENS
    ids = np.full((rows, width), 100, dtype=np.int64)
    mask = np.ones((rows, width), dtype=np.int64)
    if way == WAYS[1]:
        torch.set_num_threads(1)
    try:
        times: list[float] = []
        start = time.perf_counter()
        while not times or (time.perf_counter() - start < seconds and len(times) < 200):
            t0 = time.perf_counter()
            runtime.run(ids, mask, ["lasttoken"])
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    ms = sorted(1000 * t for t in times)
    return rows * width * len(times) / sum(times), ms[min(len(ms) - 1, int(0.99 * len(ms)))]


def run_phase(runtime: Any, torch: Any, shapes: list[tuple[int, int]], rounds: int,
              seconds: float) -> dict[tuple[int, int], dict[str, list[tuple[float, float]]]]:
    out: dict[tuple[int, int], dict[str, list[tuple[float, float]]]] = {s: {w: [] for w in WAYS} for s in shapes}
    for rnd in range(rounds):
        for shape in shapes:
            for way in WAYS:
                out[shape][way].append(time_way(runtime, torch, way, *shape, seconds))
            print(f"round {rnd + 1}/{rounds} {shape[0]} x {shape[1]} done", file=sys.stderr, flush=True)
    return out


def span(values: list[float], fmt: str = "{:,.0f}") -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6B", choices=["tiny", "0.6B"])
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--phases", default="loaded", help="idle and/or loaded, comma-separated")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.5, help="per shape, way and round")
    ap.add_argument("--quick", action="store_true", help="tiny shape, two shapes, one round: seconds")
    args = ap.parse_args()
    shapes = SHAPES
    if args.quick:
        args.size, args.layers, args.rounds, args.seconds = "tiny", 0, 1, 0.3
        shapes = [SHAPES[0], SHAPES[-1]]
    phases = args.phases.split(",")
    if any(p not in ("idle", "loaded") for p in phases):
        ap.error(f"--phases takes idle and/or loaded, got {args.phases!r}")

    import torch

    runtime = TorchRuntime(fs.model_folder(args.size, layers=args.layers or None), device="cpu", dtype="float32")
    for shape in shapes:  # warm-up
        time_way(runtime, torch, WAYS[0], *shape, 0.0)
    cores = torch.get_num_threads()
    print(f"Qwen3-Embedding-{args.size} shape ({args.layers or 'all'} layer(s)), random weights, fp32; {cpu_peers.machine()}; "
          f"torch's count {cores}. `python benchmarks/cpu_threads.py{' --quick' if args.quick else ''}`")
    for phase in phases:
        with cpu_peers.busy_cores(cores if phase == "loaded" else 0, 3600.0):
            res = run_phase(runtime, torch, shapes, args.rounds, args.seconds)
            shared = cpu_is_shared()  # as the rule saw it: measured during the phase's own passes
            load = os.getloadavg()[0]
        busy = f"{cores} busy-loop processes" if phase == "loaded" else "no other job started"
        print(f"\n#### {phase} ({busy}; cpu_is_shared() {shared}; load average {load:.1f})\n")
        print(f"| pass (rows x tokens) | torch's count ({cores}), tokens/s | 1 thread, tokens/s | the rule, tokens/s "
              f"| 1 thread vs {cores} | the rule vs the better fixed | p99 ms: {cores} / 1 / the rule |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for shape, ways in res.items():
            tps = {w: [t for t, _ in ways[w]] for w in WAYS}
            p99 = {w: [p for _, p in ways[w]] for w in WAYS}
            ratio = [a / b for a, b in zip(tps[WAYS[1]], tps[WAYS[0]], strict=True)]
            best = [r / max(a, b) for r, a, b in zip(tps[WAYS[2]], tps[WAYS[0]], tps[WAYS[1]], strict=True)]
            print(f"| {shape[0]} x {shape[1]} | {span(tps[WAYS[0]])} | {span(tps[WAYS[1]])} | {span(tps[WAYS[2]])} "
                  f"| {span(ratio, '{:.2f}x')} | {span(best, '{:.2f}x')} "
                  f"| {span(p99[WAYS[0]])} / {span(p99[WAYS[1]])} / {span(p99[WAYS[2]])} |")


if __name__ == "__main__":
    main()
