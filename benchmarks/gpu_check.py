"""One command for a machine with a CUDA GPU: correctness and speed of LocalEmbedder on the device (issue 18).

    python benchmarks/gpu_check.py --device cuda --json gpu_check.json --markdown gpu_check.md

No network: every model is a random one with Qwen3-Embedding's real configuration, built by
``qwen_embed_adapters.testing.make_qwen3`` (the 0.6B and 4B folders are cached under
``${QWEN_EMBED_CACHE:-~/.cache/qwen-embed-adapters}``). Speed does not depend on the weights' values.

Checks (any failure prints ``FAILED`` and exits 1):
1. device vs CPU vectors on the tiny model, fp32, within 1e-5 (and LocalEmbedder on CPU vs
   sentence-transformers on CPU, within 1e-5);
2. bf16 and fp16 vs fp32 on the 0.6B shape: cosine >= 0.999 for every row (the worst is reported);
3. tokens/s of LocalEmbedder (sdpa, and flash-attention 2 when installed) vs sentence-transformers on
   mixed lengths (10-8,192 tokens) at the 0.6B and 4B shapes; vectors of the two agree (cosine >= 0.999);
4. ``qwen-embed serve`` on the device, a few concurrent requests gathered into batches: vectors equal
   the in-process ones within 1e-5 (tiny model, fp32);
5. the corpora of benchmarks/cpu_peers.py at the first ``--sizes`` shape, LocalEmbedder vs
   sentence-transformers in the GPU dtype: *ingest* (512 chunks of 200-512 tokens, one call), *mixed*
   (512 texts of 10-2,000 tokens, one call), *query* (200 texts of 10-40 tokens, one call each, p50/p99);
   vectors agree (cosine >= 0.999).
Each throughput is also given as a percentage of the device's dense bf16 peak (table ``PEAK_TFLOPS``;
FLOPs per token ~ 2 x the non-embedding parameters of the configuration; attention's quadratic term is
left out, so long inputs do a little more work than counted).

``--device cpu --quick`` runs the same steps on CPU in well under a minute (tiny shape, short lengths,
fp32 and bf16 only) so the script is exercised by ``make test`` before a GPU appears.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cpu_peers  # noqa: E402  (the ingest / mixed / query corpora and their timing)
import full_size  # noqa: E402  (the random model folders and the mixed-length corpus)
from full_size import corpus  # noqa: E402

ST_BATCH = 32  # sentence-transformers' default encode batch size
COSINE_MIN = 0.999
ATOL = 1e-5

# Dense (no sparsity) bf16 tensor-core peak in TFLOPS, from each vendor data sheet. Matched in order
# against torch.cuda.get_device_name(): the first key whose words all occur in the name wins.
PEAK_TFLOPS: list[tuple[tuple[str, ...], float]] = [
    (("H100", "PCIe"), 756.0),
    (("H100",), 989.0),  # SXM
    (("H200",), 989.0),
    (("A100",), 312.0),
    (("L40S",), 362.0),
    (("L4",), 121.0),
    (("A10G",), 125.0),
    (("A10",), 125.0),
    (("RTX 4090",), 165.0),
    (("RTX 3090",), 71.0),
]


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of ``device_name`` in TFLOPS, or None when unknown (CPUs, unlisted GPUs)."""
    upper = device_name.upper()
    for words, tflops in PEAK_TFLOPS:
        if all(w.upper() in upper for w in words):
            return tflops
    return None


def flops_per_token(folder: str) -> float:
    """2 x the non-embedding parameters of the folder's configuration (the embedding is a lookup)."""
    cfg = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    h, inter, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = cfg.get("head_dim") or h // heads
    per_layer = h * heads * hd * 2 + h * kv * hd * 2 + 3 * h * inter  # q, o, k, v, gate/up/down
    return 2.0 * layers * per_layer


def model_folder(size: str, dtype: str, tmp: str) -> str:
    """The tiny folder in this run's ``tmp``; the others built once under the cache (full_size.py's)."""
    if size != "tiny":
        return full_size.model_folder(size, dtype)
    from qwen_embed_adapters.testing import make_qwen3

    folder = Path(tmp) / "tiny-qwen3"
    if not (folder / "modules.json").is_file():
        log(f"building {folder} ...")
        make_qwen3(folder, size=size, seed=0, dtype=dtype)
    return str(folder)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return np.asarray((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


class Report:
    def __init__(self, args: argparse.Namespace, device_name: str) -> None:
        self.device_name = device_name
        self.peak = peak_tflops(device_name) if args.device != "cpu" else None
        self.checks: list[dict[str, Any]] = []
        self.throughput: list[dict[str, Any]] = []
        self.corpora: list[dict[str, Any]] = []
        self.meta = {"device": args.device, "device_name": device_name, "quick": args.quick,
                     "peak_bf16_tflops": self.peak, "python": platform.python_version()}

    def check(self, name: str, passed: bool, value: float, limit: str, detail: str = "") -> None:
        self.checks.append({"name": name, "passed": bool(passed), "value": None if value != value else float(value),
                            "limit": limit,
                            "detail": detail})
        log(f"{'ok    ' if passed else 'FAILED'} {name}: {value:.6g} ({limit}) {detail}")

    def speed(self, name: str, size: str, dtype: str, tokens: int, texts: int, seconds: float,
              fpt: float) -> None:
        tps = tokens / seconds
        pct = None if self.peak is None else 100.0 * tps * fpt / (self.peak * 1e12)
        self.throughput.append({"name": name, "size": size, "dtype": dtype, "tokens": tokens, "texts": texts,
                                "seconds": seconds, "tokens_per_s": tps, "pct_of_bf16_peak": pct})
        log(f"       {name} [{size}, {dtype}]: {tps:,.0f} tokens/s"
            + ("" if pct is None else f", {pct:.1f}% of bf16 peak"))

    @property
    def passed(self) -> bool:
        return all(c["passed"] for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {**self.meta, "passed": self.passed, "checks": self.checks, "throughput": self.throughput,
                "corpora": self.corpora}

    def to_markdown(self) -> str:
        lines = [f"GPU check on {self.device_name} ({self.meta['device']}"
                 + (", --quick" if self.meta["quick"] else "") + "); dense bf16 peak: "
                 + (f"{self.peak:g} TFLOPS" if self.peak else "n/a"), "",
                 "| check | value | limit | result |", "|---|---:|---|---|"]
        for c in self.checks:
            value = "—" if c["value"] is None else f"{c['value']:.6g}"
            lines.append(f"| {c['name']} | {value} | {c['limit']} | {'ok' if c['passed'] else 'FAILED'} |")
        lines += ["", "| engine | shape | dtype | texts | tokens | tokens/s | % of bf16 peak |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for t in self.throughput:
            pct = "n/a" if t["pct_of_bf16_peak"] is None else f"{t['pct_of_bf16_peak']:.1f}%"
            lines.append(f"| {t['name']} | {t['size']} | {t['dtype']} | {t['texts']} | {t['tokens']} | "
                         f"{t['tokens_per_s']:,.0f} | {pct} |")
        if self.corpora:
            lines += ["", "| corpus | engine | shape | dtype | texts | tokens | texts/s | tokens/s | query p50 / p99 (ms) "
                      "| vs sentence-transformers |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
            for r in self.corpora:
                lat = "" if r["p50_ms"] is None else f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}"
                lines.append(f"| {r['corpus']} | {r['name']} | {r['size']} | {r['dtype']} | {r['texts']} | "
                             f"{r['tokens']} | {r['texts_per_s']:,.1f} | {r['tokens_per_s']:,.0f} | {lat} | "
                             f"{r['vs_st']:.2f}x |")
        return "\n".join(lines) + "\n"


def local(folder: str, device: str, dtype: str, attn: str | None = None, **kw: Any) -> Any:
    from qwen_embed_adapters.local import LocalEmbedder

    return LocalEmbedder(folder, device=device, dtype=dtype, attn_implementation=attn, **kw)


def st_model(folder: str, device: str, dtype: str) -> Any:
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(folder, device=device, model_kwargs={"torch_dtype": getattr(torch, dtype)})
    st.max_seq_length = 8192
    return st


def st_encode(st: Any, texts: list[str], batch: int = ST_BATCH) -> np.ndarray:
    return np.asarray(st.encode(texts, batch_size=batch, normalize_embeddings=True), dtype=np.float32)


def check_device_vs_cpu(rep: Report, args: argparse.Namespace, tiny: str, texts: list[str]) -> None:
    ref = local(tiny, "cpu", "float32").embed_documents(texts)
    got = local(tiny, args.device, "float32").embed_documents(texts)
    diff = float(np.abs(got - ref).max())
    rep.check(f"tiny fp32: LocalEmbedder {args.device} vs cpu, max abs diff", diff <= args.atol, diff, f"<= {args.atol:g}")
    st = st_encode(st_model(tiny, "cpu", "float32"), texts)
    diff = float(np.abs(ref - st).max())
    rep.check("tiny fp32: LocalEmbedder cpu vs sentence-transformers cpu, max abs diff", diff <= args.atol, diff,
              f"<= {args.atol:g}")


def check_dtypes(rep: Report, args: argparse.Namespace, folder: str, size: str, texts: list[str]) -> None:
    ref = local(folder, args.device, "float32").embed_documents(texts)
    dtypes = ["bfloat16"] if args.device == "cpu" else ["bfloat16", "float16"]
    for dtype in dtypes:
        got = local(folder, args.device, dtype).embed_documents(texts)
        cos = row_cosine(got, ref)
        worst = int(cos.argmin())
        rep.check(f"{size} {dtype} vs fp32 on {args.device}, worst row cosine", cos.min() >= COSINE_MIN,
                  float(cos.min()), f">= {COSINE_MIN}", f"row {worst}, {len(texts)} texts")


def timed(device: str, fn: Any, texts: list[str]) -> tuple[np.ndarray, float]:
    fn(texts[:4])  # warm-up
    sync(device)
    t0 = time.perf_counter()
    out = fn(texts)
    sync(device)
    return np.asarray(out, dtype=np.float32), time.perf_counter() - t0


def check_throughput(rep: Report, args: argparse.Namespace, folder: str, size: str, dtype: str,
                     texts: list[str]) -> None:
    fpt = flops_per_token(folder)
    variants: list[tuple[str, str | None]] = [("LocalEmbedder sdpa", "sdpa")]
    if args.device.startswith("cuda"):
        try:
            import flash_attn  # noqa: F401

            variants.append(("LocalEmbedder flash_attention_2", "flash_attention_2"))
        except ImportError:
            log("       flash-attn not installed: flash_attention_2 row skipped")
    vectors: dict[str, np.ndarray] = {}
    tokens = 0
    for name, attn in variants:
        emb = local(folder, args.device, dtype, attn)
        tokens = sum(emb.token_counts(texts))
        vectors[name], secs = timed(args.device, emb.embed_documents, texts)
        rep.speed(name, size, dtype, tokens, len(texts), secs, fpt)
        del emb
    st = st_model(folder, args.device, dtype)
    st_name = "sentence-transformers"
    for batch in (ST_BATCH, 4):
        try:
            vectors["sentence-transformers"], secs = timed(
                args.device, lambda xs: st_encode(st, xs, batch), texts)  # noqa: B023 (used at once)
            break
        except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is a RuntimeError
            if "out of memory" not in str(exc).lower() or batch != ST_BATCH:
                raise
            log(f"       sentence-transformers ran out of memory at batch {batch}; retrying with batch 4")
            st_name = "sentence-transformers (batch 4 after OOM at 32)"
            free_device(args.device)
    rep.speed(st_name, size, dtype, tokens, len(texts), secs, fpt)
    st = None  # free the device memory before the next shape
    ref = vectors["sentence-transformers"]
    for name, vec in vectors.items():
        if name != "sentence-transformers":
            cos = float(row_cosine(vec, ref).min())
            rep.check(f"{size} {dtype}: {name} vs sentence-transformers, worst row cosine", cos >= COSINE_MIN,
                      cos, f">= {COSINE_MIN}")
    free_device(args.device)


def check_corpora(rep: Report, args: argparse.Namespace, folder: str, size: str, dtype: str,
                  corpora: dict[str, list[str]]) -> None:
    """cpu_peers.py's corpora on the device: LocalEmbedder vs sentence-transformers, vectors agreeing."""
    emb = local(folder, args.device, dtype)
    tokens = {c: sum(emb.token_counts(texts)) for c, texts in corpora.items()}
    timings, vectors = {}, {}
    timings["LocalEmbedder"], vectors["LocalEmbedder"] = cpu_peers.time_corpora(emb.embed_documents, corpora)
    del emb
    free_device(args.device)
    st = st_model(folder, args.device, dtype)
    timings["sentence-transformers"], vectors["sentence-transformers"] = cpu_peers.time_corpora(
        lambda xs: st_encode(st, xs), corpora)
    st = None
    free_device(args.device)
    for name_c, texts in corpora.items():
        st_seconds = timings["sentence-transformers"][name_c]["seconds"]
        for name, t in timings.items():
            c = t[name_c]
            p50, p99 = cpu_peers.latency_ms(c["latencies"]) if "latencies" in c else (None, None)
            rep.corpora.append({"corpus": name_c, "name": name, "size": size, "dtype": dtype, "texts": len(texts),
                                "tokens": tokens[name_c], "seconds": c["seconds"],
                                "texts_per_s": len(texts) / c["seconds"], "tokens_per_s": tokens[name_c] / c["seconds"],
                                "p50_ms": p50, "p99_ms": p99, "vs_st": st_seconds / c["seconds"]})
            log(f"       {name_c}: {name} [{size}, {dtype}]: {len(texts) / c['seconds']:,.1f} texts/s"
                + ("" if p50 is None else f", p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
        cos = float(row_cosine(vectors["LocalEmbedder"][name_c], vectors["sentence-transformers"][name_c]).min())
        rep.check(f"{size} {dtype} {name_c}: LocalEmbedder vs sentence-transformers, worst row cosine",
                  cos >= COSINE_MIN, cos, f">= {COSINE_MIN}")


def free_device(device: str) -> None:
    if device.startswith("cuda"):
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()


def check_serve(rep: Report, args: argparse.Namespace, folder: str, size: str, texts: list[str],
                clients: int) -> None:
    import socket

    import httpx

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a free port, as tests/support does
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    cmd = [sys.executable, "-m", "qwen_embed_adapters.cli", "serve", "--model", folder, "--port", str(port),
           "--device", args.device, "--dtype", "float32", "--served-model-name", "m", "--gather-ms", "20"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    logf = tempfile.NamedTemporaryFile(prefix="gpu-check-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"qwen-embed serve exited with {proc.returncode}:\n"
                                   + Path(logf.name).read_text(errors="replace")[-3000:])
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("qwen-embed serve did not answer /health within 180 s")
            time.sleep(0.2)
        parts = [texts[i::clients] for i in range(clients)]

        def one(part: list[str]) -> np.ndarray:
            r = httpx.post(f"{url}/v1/embeddings", json={"model": "m", "input": part}, timeout=600)
            r.raise_for_status()
            data = sorted(r.json()["data"], key=lambda d: d["index"])
            return np.array([d["embedding"] for d in data], dtype=np.float32)

        one(texts[:2])  # warm-up
        with ThreadPoolExecutor(clients) as pool:
            t0 = time.perf_counter()
            got_parts = list(pool.map(one, parts))
            secs = time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()
    emb = local(folder, args.device, "float32")
    ref = emb.embed_documents(texts)
    got = np.empty_like(ref)
    for i, part in enumerate(got_parts):
        got[i::clients] = part
    diff = float(np.abs(got - ref).max())
    rep.check(f"{size} fp32: serve on {args.device} ({clients} concurrent requests) vs in-process, max abs diff",
              diff <= args.atol, diff, f"<= {args.atol:g}")
    rep.speed(f"qwen-embed serve, {clients} concurrent requests", size, "float32", sum(emb.token_counts(texts)),
              len(texts), secs, flops_per_token(folder))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda, cuda:1, cpu (default cuda)")
    ap.add_argument("--quick", action="store_true", help="tiny shape and short inputs only (for CPU / CI)")
    ap.add_argument("--sizes", default="0.6B,4B", help="throughput shapes without --quick (default 0.6B,4B)")
    ap.add_argument("--texts", type=int, default=None, help="texts per throughput run (default 128; 24 quick)")
    ap.add_argument("--max-tokens", type=int, default=None, help="longest input (default 8192; 200 quick)")
    ap.add_argument("--atol", type=float, default=ATOL, help=f"largest abs difference for the fp32 checks "
                    f"(default {ATOL:g})")
    ap.add_argument("--steps", default="device,dtypes,throughput,serve,corpora",
                    help="which steps to run (default all)")
    ap.add_argument("--json", dest="json_path", help="write the results as JSON here")
    ap.add_argument("--markdown", help="write the markdown tables here")
    args = ap.parse_args()
    quick = args.quick
    n_texts = args.texts or (24 if quick else 128)
    max_tokens = args.max_tokens or (200 if quick else 8192)

    import torch
    from transformers import AutoTokenizer

    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            log("FAILED: --device cuda but torch.cuda.is_available() is False "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda})")
            return 2
        device_name = torch.cuda.get_device_name(torch.device(args.device))
    else:
        device_name = platform.processor() or platform.machine()
    rep = Report(args, device_name)
    t_start = time.perf_counter()

    def step(name: str, fn: Any, *fargs: Any, **fkw: Any) -> None:
        """Run one step; an exception is a failed check (so the other steps still run and report)."""
        try:
            fn(*fargs, **fkw)
        except Exception as exc:  # reported as a FAILED check, exit code 1
            rep.check(f"{name}: raised {type(exc).__name__}", False, float("nan"), "no error", str(exc)[:300])
            free_device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        tiny = model_folder("tiny", "float32", tmp)
        tok = AutoTokenizer.from_pretrained(tiny)  # every shape shares the tiny tokenizer
        short = corpus(16, tok, 5, 120, seed=1)
        steps = set(args.steps.split(","))
        if "device" in steps:
            log("1. device vs CPU, tiny fp32")
            step("device vs cpu", check_device_vs_cpu, rep, args, tiny, short)
        if "dtypes" in steps:
            log("2. bf16/fp16 vs fp32")
            if quick:
                step("dtypes", check_dtypes, rep, args, tiny, "tiny", short)
            else:
                step("dtypes 0.6B", lambda: check_dtypes(rep, args, model_folder("0.6B", "float32", tmp), "0.6B",
                                                         corpus(32, tok, 10, 2000, seed=2)))
        texts = corpus(n_texts, tok, 10, max_tokens) if steps & {"throughput", "serve"} else []
        if "throughput" in steps:
            log("3. throughput, mixed lengths")
            if quick:
                step("throughput tiny", check_throughput, rep, args, tiny, "tiny", "float32", texts)
            else:
                for size in args.sizes.split(","):
                    dtype = "float32" if args.device == "cpu" else "bfloat16"
                    step(f"throughput {size}", lambda size=size, dtype=dtype: check_throughput(
                        rep, args, model_folder(size, "float32" if size == "0.6B" else dtype, tmp), size, dtype,
                        texts))
        if "serve" in steps:
            log("4. qwen-embed serve gathering on the device")
            step("serve", check_serve, rep, args, tiny, "tiny", texts if quick else texts[:64], clients=4)
        if "corpora" in steps:
            log("5. ingest / mixed / query corpora")
            sizes = {"ingest": 16 if quick else 512, "mixed": 16 if quick else 512, "query": 8 if quick else 200}
            corpora = {c: corpus(sizes[c], tok, lo, hi, seed=i)
                       for i, (c, (lo, hi)) in enumerate(cpu_peers.CORPORA.items())}
            size = "tiny" if quick else args.sizes.split(",")[0]
            dtype = "float32" if args.device == "cpu" else "bfloat16"
            step(f"corpora {size}", lambda: check_corpora(
                rep, args, model_folder(size, "float32" if size == "0.6B" else dtype, tmp), size, dtype, corpora))
    rep.meta["seconds"] = round(time.perf_counter() - t_start, 1)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rep.to_json(), indent=2), encoding="utf-8")
    md = rep.to_markdown()
    if args.markdown:
        Path(args.markdown).write_text(md, encoding="utf-8")
    print(md)
    if not rep.passed:
        failed = [c["name"] for c in rep.checks if not c["passed"]]
        log("=" * 70 + f"\nFAILED: {len(failed)} check(s):\n  " + "\n  ".join(failed) + "\n" + "=" * 70)
        return 1
    log(f"all {len(rep.checks)} checks passed in {rep.meta['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
