"""The CPU engines people pick, on corpora as users have them, idle and with the cores busy (issue 30).

Three corpora, each engine on the same model folder and the same texts (``full_size.corpus``):

- *ingest*: ``--texts`` chunks of 200-512 tokens (what a chunker emits), one call;
- *mixed*: ``--texts`` texts of 10-2,000 tokens, log-uniform, one call;
- *query*: ``--queries`` short texts of 10-40 tokens, one call each (p50/p99 latency).

Engines (``--engines``): LocalEmbedder fp32 (the reference every cosine is taken against), LocalEmbedder's
faster CPU paths (bf16 weights, int8 dynamic quantisation of the linear layers), sentence-transformers
(torch), Infinity in-process, and llama.cpp through llama-cpp-python on an f16 and a q8_0 GGUF of the
same weights (llama.cpp's own converter and quantiser, ``full_size.build_gguf``). Each engine runs in its
own process (its own venv for Infinity and llama.cpp; ``scripts/engines.sh``), so peak RSS is its own.

Phases (``--phases``): *idle*, then *loaded*: one busy-loop process per core for the whole phase, started
and stopped here (each also stops itself after ``--load-seconds``), as on a laptop or server where
other work shares the cores. Every table names the machine and the load average before and after.

The model is ``make_qwen3(size="0.6B", layers=--layers)``: the real 0.6B layer shape (hidden 1,024, 16/8
heads, intermediate 3,072, the 151,669-row embedding matrix), random weights, the tiny tokenizer, and
``--layers`` of the 28 layers: per-token cost scales with the count, so 1 layer keeps the full run near 20
minutes on 2 cores while keeping each pass's shape. The cosines of the quantised paths are also taken at
the real depth (``--depth-texts`` texts per corpus through 28 layers), where their error accumulates.

    python benchmarks/cpu_peers.py                     # both phases, every engine: ~20 minutes on 2 idle cores
    python benchmarks/cpu_peers.py --phases loaded --engines local,sentence-transformers
    python benchmarks/cpu_peers.py --quick             # tiny shape, a few texts: seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import full_size as fs  # (the shared engines, corpus, GGUF making and worker runner)

CORPORA = {"ingest": (200, 512), "mixed": (10, 2000), "query": (10, 40)}
REFERENCE = "local"
ENGINES = {
    # name: label; the worker is full_size.WORKERS[name] or a LocalEmbedder variant below
    "local": "LocalEmbedder fp32 (torch, sdpa)",
    "local-bf16": "LocalEmbedder bf16 (`dtype=\"bfloat16\"`)",
    "sentence-transformers": "sentence-transformers (torch, fp32, batch 32)",
    "infinity": "Infinity 0.0.78 (in-process, torch, fp32)",
    "llamacpp-f16": "llama.cpp f16 GGUF (llama-cpp-python 0.3.36)",
    "llamacpp-q8_0": "llama.cpp q8_0 GGUF (llama-cpp-python 0.3.36)",
}
VARIANTS: dict[str, dict[str, Any]] = {
    "local-bf16": {"dtype": "bfloat16"},
}
ENGINE_VENV = {"infinity": "infinity", "llamacpp-f16": "llamacpp", "llamacpp-q8_0": "llamacpp"}
BUSY = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


def label(engine: str) -> str:
    """An engine's row label; ``local:N`` is LocalEmbedder fp32 with ``max_batch_tokens=N``."""
    if engine.startswith("local:"):
        return f"LocalEmbedder fp32, max_batch_tokens={int(engine.split(':', 1)[1]):,}"
    return ENGINES[engine]


def make_engine(engine: str, folder: str, device: str) -> fs.Engine:
    if engine.startswith("local:"):
        return fs.engine_local(folder, device, max_batch_tokens=int(engine.split(":", 1)[1]))
    if engine in VARIANTS:
        return fs.engine_local(folder, device, **VARIANTS[engine])
    return fs.WORKERS[engine](folder, device)


def time_corpora(
    encode: Callable[[list[str]], np.ndarray], corpora: dict[str, list[str]]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Embed every corpus once after a warm-up (``query`` one text per call): timings and vectors per corpus."""
    timings: dict[str, Any] = {}
    vectors: dict[str, np.ndarray] = {}
    for name, texts in corpora.items():
        encode(texts[:2])  # warm-up: first-call allocations, lazy initialisation
        if name == "query":
            latencies, rows = [], []
            for text in texts:
                t0 = time.perf_counter()
                rows.append(np.asarray(encode([text]))[0])
                latencies.append(time.perf_counter() - t0)
            vectors[name] = np.stack(rows).astype(np.float32)
            timings[name] = {"seconds": sum(latencies), "latencies": latencies}
        else:
            t0 = time.perf_counter()
            vectors[name] = np.asarray(encode(texts), dtype=np.float32)
            timings[name] = {"seconds": time.perf_counter() - t0}
    return timings, vectors


def latency_ms(latencies: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    ms = sorted(1000 * x for x in latencies)
    return statistics.median(ms), ms[min(len(ms) - 1, int(0.99 * len(ms)))]


def worker(engine: str, folder: str, corpora_file: str, out: str, device: str) -> None:
    """Embed every corpus once (queries one call each), write vectors and timings under ``out``."""
    corpora: dict[str, list[str]] = json.loads(Path(corpora_file).read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    encode, padded_of = make_engine(engine, folder, device)
    load_seconds = time.perf_counter() - t0
    result, vectors = time_corpora(encode, corpora)
    for name, texts in corpora.items():
        # queries go one per call, so one per batch: each padded only to itself
        result[name]["padded"] = sum(padded_of([t]) for t in texts) if name == "query" else padded_of(texts)
        np.save(f"{out}-{name}.npy", vectors[name])
    result["load_seconds"] = load_seconds
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out + ".json").write_text(json.dumps(result), encoding="utf-8")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # Infinity's batch-handler threads would keep the interpreter alive (see full_size.worker)


@contextmanager
def busy_cores(n: int, seconds: float) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` busy-loop processes (each exits by itself after ``seconds``), stopped on leaving."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY, str(seconds)]) for _ in range(n)]
    try:
        if procs:
            time.sleep(1.0)  # let the scheduler see them before the first engine starts
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def engine_python(engine: str) -> Path | None:
    venv = ENGINE_VENV.get(engine)
    if venv is None:
        return Path(sys.executable)
    python = fs.CACHE / "venvs" / venv / "bin" / "python"
    return python if python.is_file() else None


def run_phase(args: argparse.Namespace, phase: str, folder: str, corpora_file: str, tmp: str) -> dict[str, Any]:
    """Every engine once, in the phase's conditions; results and vectors per engine."""
    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    cores = os.cpu_count() or 1
    with busy_cores(cores if phase == "loaded" else 0, args.load_seconds):
        for engine in args.engines:
            python = engine_python(engine)
            if python is None:
                results[engine] = {"error": f"venv not built: run `scripts/engines.sh {ENGINE_VENV[engine]}`"}
                continue
            fs.ENGINES.setdefault(engine, (label(engine), ENGINE_VENV.get(engine)))
            out = str(Path(tmp) / f"{phase}-{engine}")
            reason = fs.run_worker(__file__, engine, folder, ["--corpora-file", corpora_file, "--out", out,
                                                             "--device", "cpu"],
                                   env={fs.LLAMACPP_BATCH_ENV: str(args.llama_batch)})
            if reason is not None:
                results[engine] = {"error": reason}
                continue
            results[engine] = json.loads(Path(out + ".json").read_text(encoding="utf-8"))
            results[engine]["vectors"] = {c: np.load(f"{out}-{c}.npy") for c in CORPORA}
    return {"results": results, "load_before": load_before, "load_after": os.getloadavg(),
            "seconds": time.perf_counter() - t0, "busy_processes": cores if phase == "loaded" else 0}


def agreement(vectors: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(min, mean) over texts of the cosine between each row and the reference's row."""
    a = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    b = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    cos = (a * b).sum(axis=1)
    return float(cos.min()), float(cos.mean())


# the engines whose weights differ from LocalEmbedder fp32's (the others agree within float rounding at any depth)
DEPTH_ENGINES = ("local-bf16", "llamacpp-f16", "llamacpp-q8_0")


def depth_check(args: argparse.Namespace, corpora: dict[str, list[str]], tmp: str) -> dict[str, Any]:
    """Cosines of every engine against LocalEmbedder fp32 at the real depth, on a few texts per corpus."""
    folder = fs.model_folder(args.size)
    small = {c: texts[: args.depth_texts] for c, texts in corpora.items()}
    small_file = str(Path(tmp) / "depth-corpora.json")
    Path(small_file).write_text(json.dumps(small), encoding="utf-8")
    vectors: dict[str, dict[str, np.ndarray]] = {}
    errors: dict[str, str] = {}
    for engine in [REFERENCE, *[e for e in args.engines if e in DEPTH_ENGINES]]:
        if engine_python(engine) is None:
            continue
        out = str(Path(tmp) / f"depth-{engine}")
        reason = fs.run_worker(__file__, engine, folder, ["--corpora-file", small_file, "--out", out,
                                                         "--device", "cpu"],
                               env={fs.LLAMACPP_BATCH_ENV: str(args.llama_batch)})
        if reason is not None:
            errors[engine] = reason
            continue
        vectors[engine] = {c: np.load(f"{out}-{c}.npy") for c in CORPORA}
    out: dict[str, Any] = {"texts_per_corpus": args.depth_texts, "errors": errors, "cosine": {}}
    if REFERENCE in vectors:
        for engine, per in vectors.items():
            out["cosine"][engine] = {c: agreement(per[c], vectors[REFERENCE][c]) for c in CORPORA}
    return out


def shape_layers(size: str) -> int:
    from qwen_embed_adapters.testing import QWEN3_SIZES

    return int(QWEN3_SIZES[size]["num_hidden_layers"])


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()} {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def report(args: argparse.Namespace, corpora: dict[str, list[str]], tokens: dict[str, int],
           phases: dict[str, Any], depth: dict[str, Any] | None) -> list[str]:
    """Print one Markdown table per phase; return the problems found (ours below the tolerance)."""
    problems = []
    n_layers = shape_layers(args.size)
    layers = f"all {n_layers} layers" if args.layers is None else f"{args.layers} of its {n_layers} layers"
    print(f"\nQwen3-Embedding-{args.size} shape ({layers}), random weights, CPU; {machine()}. "
          f"`python benchmarks/cpu_peers.py{''.join(' ' + a for a in sys.argv[1:])}`")
    print("corpora: " + "; ".join(
        f"{c} {len(corpora[c])} texts of {lo}-{hi} tokens ({tokens[c]:,} tokens"
        + (", one call each)" if c == "query" else ", one call)") for c, (lo, hi) in CORPORA.items()))
    for phase, data in phases.items():
        res = data["results"]
        before, after = data["load_before"][0], data["load_after"][0]
        what = "idle" if phase == "idle" else f"loaded ({data['busy_processes']} busy-loop processes, one per core)"
        print(f"\n#### {what}: load average {before:.1f} before, {after:.1f} after, {data['seconds']:.0f} s\n")
        print("| corpus | engine | texts/s | tokens/s | query p50 / p99 (ms) | peak RSS (MB) | padded / real tokens "
              "| cosine vs LocalEmbedder fp32, min / mean | speed vs LocalEmbedder fp32 | vs sentence-transformers |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        ref = res.get(REFERENCE, {})
        st = res.get("sentence-transformers", {})
        for corpus in CORPORA:
            for engine in args.engines:
                r = res[engine]
                name = label(engine)
                if "error" in r:
                    print(f"| {corpus} | {name} | {r['error']} | | | | | | | |")
                    continue
                c = r[corpus]
                seconds = float(c["seconds"])
                lat = ""
                if corpus == "query":
                    lat = "{:.1f} / {:.1f}".format(*latency_ms(c["latencies"]))
                cos = ""
                if "vectors" in ref and "vectors" in r:
                    lo_, mean = agreement(r["vectors"][corpus], ref["vectors"][corpus])
                    c["cosine_min"], c["cosine_mean"] = lo_, mean
                    cos = f"{lo_:.6f} / {mean:.6f}"
                    if engine.startswith("local") and lo_ < args.tolerance:
                        problems.append(f"{phase} {corpus} {engine}: cosine {lo_:.4f} < {args.tolerance}")
                speed = f"{float(ref[corpus]['seconds']) / seconds:.2f}x" if corpus in ref else ""
                vs_st = f"{float(st[corpus]['seconds']) / seconds:.2f}x" if corpus in st else ""
                print(f"| {corpus} | {name} | {len(corpora[corpus]) / seconds:,.1f} | {tokens[corpus] / seconds:,.0f} "
                      f"| {lat} | {float(r['peak_rss_mb']):,.0f} | {float(c['padded']) / tokens[corpus]:.2f} | {cos} "
                      f"| {speed} | {vs_st} |")
    if depth is not None and depth["cosine"]:
        n = depth["texts_per_corpus"]
        print(f"\nAt the real depth (28 layers), the first {n} texts of each corpus, cosine vs LocalEmbedder fp32 "
              "(min / mean):\n")
        print("| engine | " + " | ".join(CORPORA) + " |")
        print("|---|" + "---:|" * len(CORPORA))
        for engine, per in depth["cosine"].items():
            if engine == REFERENCE:
                continue
            print(f"| {label(engine)} | " + " | ".join(f"{per[c][0]:.6f} / {per[c][1]:.6f}" for c in CORPORA) + " |")
            if engine.startswith("local") and min(per[c][0] for c in CORPORA) < args.tolerance:
                problems.append(f"depth check {engine}: cosine below {args.tolerance}")
        for engine, reason in depth["errors"].items():
            print(f"| {label(engine)} | {reason} | | |")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6B", choices=["tiny", "0.6B"])
    ap.add_argument("--layers", type=int, default=1, help="how many of the shape's layers (0: all of them)")
    ap.add_argument("--texts", type=int, default=512, help="texts in the ingest and in the mixed corpus")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, from {','.join(ENGINES)}")
    ap.add_argument("--phases", default="idle,loaded", help="idle, loaded or both (comma-separated)")
    ap.add_argument("--load-seconds", type=float, default=1800.0, help="the busy loops stop themselves after this")
    ap.add_argument("--depth-texts", type=int, default=4, help="texts per corpus for the real-depth cosines (0: skip)")
    ap.add_argument("--llama-batch", type=int, default=2048, help="llama.cpp n_ctx = n_batch = n_ubatch")
    ap.add_argument("--tolerance", type=float, help="lowest cosine our own paths may reach (default: the space "
                    "card's tolerance, qwen_embed_adapters.space.DEFAULT_TOLERANCE)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--quick", action="store_true", help="tiny shape, 16 texts, 8 queries, two engines: seconds")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--corpora-file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.folder, args.corpora_file, args.out, args.device)
        return
    if args.quick:
        ap.set_defaults(size="tiny", layers=0, texts=16, queries=8, depth_texts=0,
                        engines="local,llamacpp-q8_0")
        args = ap.parse_args()
    args.layers = args.layers or None
    if args.tolerance is None:
        from qwen_embed_adapters.space import DEFAULT_TOLERANCE

        args.tolerance = DEFAULT_TOLERANCE
    args.engines = args.engines.split(",")
    unknown = [e for e in args.engines if e not in ENGINES and not re.fullmatch(r"local:\d+", e)]
    if unknown:
        ap.error(f"unknown engine(s) {unknown}; choose from {list(ENGINES)}")
    if REFERENCE not in args.engines:
        args.engines.insert(0, REFERENCE)
    phases = args.phases.split(",")
    if not phases or any(p not in ("idle", "loaded") for p in phases):
        ap.error(f"--phases takes idle and/or loaded, got {args.phases!r}")

    from transformers import AutoTokenizer

    folder = fs.model_folder(args.size, layers=args.layers)
    tokenizer = AutoTokenizer.from_pretrained(folder)  # appends <|endoftext|>, as the model sees it
    sizes = {"ingest": args.texts, "mixed": args.texts, "query": args.queries}
    corpora = {c: fs.corpus(sizes[c], tokenizer, lo, hi, seed=i) for i, (c, (lo, hi)) in enumerate(CORPORA.items())}
    tokens = {c: sum(len(tokenizer(t)["input_ids"]) for t in texts) for c, texts in corpora.items()}
    results: dict[str, Any] = {}
    # a plain SIGTERM would skip busy_cores' clean-up and leave its processes spinning until --load-seconds
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory() as tmp:
        corpora_file = str(Path(tmp) / "corpora.json")
        Path(corpora_file).write_text(json.dumps(corpora), encoding="utf-8")
        for phase in phases:
            print(f"phase {phase} ...", file=sys.stderr)
            results[phase] = run_phase(args, phase, folder, corpora_file, tmp)
        depth = depth_check(args, corpora, tmp) if args.depth_texts and args.layers is not None else None
    problems = report(args, corpora, tokens, results, depth)
    if args.json:
        for data in results.values():
            for r in data["results"].values():
                r.pop("vectors", None)
        Path(args.json).write_text(json.dumps({"size": args.size, "layers": args.layers, "tokens": tokens,
                                               "phases": results, "depth": depth}, indent=2), encoding="utf-8")
    if problems:
        raise SystemExit("below the tolerance: " + "; ".join(problems))


if __name__ == "__main__":
    main()
