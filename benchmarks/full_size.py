"""LocalEmbedder vs sentence-transformers (torch, ONNX) vs Infinity at Qwen3-Embedding's real size (issue 18).

Speed does not depend on the values of the weights, so ``make_qwen3(size=...)`` (the real
configuration, random weights, the real 151,669-row embedding matrix, the tiny tokenizer) costs what
the real model costs. Mixed lengths (10 to 2,000 tokens, log-uniform). Each engine runs in its own
process (peak RSS is that process's own) and, for the engines whose pins conflict with ours, in its
own venv (``scripts/engines.sh infinity`` and ``scripts/engines.sh st-onnx`` build them). One
untimed warm-up on a few texts, then the timed passes (``--rounds``, the median is reported).
Reports tokens/s, texts/s, peak RSS, padded tokens / real tokens (from each engine's own batching
rule, on the same token counts) and the largest difference from LocalEmbedder's vectors. An engine
that cannot run gets a row saying why; the script exits 1 if any engine that ran differs by more
than ``--tolerance``.

    python benchmarks/full_size.py                                   # CPU, 0.6B shape, 64 texts
    python benchmarks/full_size.py --engines local,sentence-transformers --texts 16
    python benchmarks/full_size.py --device cuda --size 0.6B --texts 512 --max-tokens 8192
    python benchmarks/full_size.py --quick          # tiny shape, 24 texts of up to 200 tokens: seconds

The model folder is built once and cached under ``${QWEN_EMBED_CACHE:-~/.cache/qwen-embed-adapters}``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("QWEN_EMBED_CACHE", Path.home() / ".cache" / "qwen-embed-adapters"))
WORDS = (
    "vector database embedding query retrieval passage capital China Beijing model token batch "
    "server index cosine similarity machine learning 机器 学习 向量 数据库"
).split()
ST_BATCH = 32  # sentence-transformers' default encode batch size
INFINITY_BATCH = 32  # infinity_emb's default --batch-size
ENGINES = {
    # name: (label, venv under CACHE/venvs or None for this interpreter)
    "local": ("LocalEmbedder (torch, sdpa)", None),
    "sentence-transformers": ("sentence-transformers (torch)", None),
    "st-onnx": ("sentence-transformers (ONNX backend, onnxruntime)", "st-onnx"),
    "infinity": ("Infinity 0.0.78 (torch engine, in-process AsyncEmbeddingEngine)", "infinity"),
    "llamacpp-f16": ("llama.cpp (llama-cpp-python 0.3.36), f16 GGUF", "llamacpp"),
    "llamacpp-q8_0": ("llama.cpp (llama-cpp-python 0.3.36), q8_0 GGUF", "llamacpp"),
}
DEFAULT_ENGINES = "local,sentence-transformers,st-onnx,infinity"


def model_folder(size: str, dtype: str = "float32", layers: int | None = None) -> str:
    """The random ``size`` folder (weights saved in ``dtype``, ``layers`` of them or the real depth), built once."""
    from qwen_embed_adapters.testing import make_qwen3

    depth = "" if layers is None else f"-{layers}layers"
    folder = CACHE / (f"random-qwen3-{size}{depth}-seed0" + ("" if dtype == "float32" else f"-{dtype}"))
    if not (folder / "modules.json").is_file():
        print(f"building {folder} ...", file=sys.stderr)
        make_qwen3(folder, size=size, seed=0, dtype=dtype, layers=layers)
    return str(folder)


def corpus(n: int, tokenizer: object, lo: int, hi: int, seed: int = 0) -> list[str]:
    """n texts whose token counts spread log-uniformly from ``lo`` to ``hi``."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        target = int(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        words = [rng.choice(WORDS) for _ in range(target)]
        while len(tokenizer(" ".join(words))["input_ids"]) > target and len(words) > 3:  # type: ignore[operator]
            words = words[: int(len(words) * 0.9)]
        texts.append(" ".join(words))
    return texts


def padded_fixed_batches(texts: list[str], lengths: list[int], batch: int, window: int | None = None) -> int:
    """Padded tokens when texts are sorted by characters and cut into batches of ``batch``.

    sentence-transformers sorts the whole call by length in characters; Infinity takes its queue
    ``window`` items at a time (4 x batch, FIFO) and sorts each window before cutting it.
    """
    window = window or len(texts)
    total = 0
    for w in range(0, len(texts), window):
        idx = list(range(w, min(w + window, len(texts))))
        if len(idx) > batch:
            idx.sort(key=lambda i: -len(texts[i]))
        for c in range(0, len(idx), batch):
            chunk = idx[c : c + batch]
            total += max(lengths[i] for i in chunk) * len(chunk)
    return total


# An engine: its encode function and padded_of(texts), the padded tokens its own batching rule gives.
Engine = tuple[Callable[[list[str]], np.ndarray], Callable[[list[str]], int]]


def engine_local(folder: str, device: str, **kwargs: Any) -> Engine:
    from qwen_embed_adapters.local import LocalEmbedder, plan_token_batches

    emb = LocalEmbedder(folder, device=device, **{"dtype": "float32", **kwargs})

    def padded_of(texts: list[str]) -> int:
        # LocalEmbedder's own batching rule, through its public parts: token-sorted, token-budgeted batches
        lengths = emb.token_counts(texts)
        batches = plan_token_batches(lengths, emb.max_batch_tokens, emb.batch_size)
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    return emb.embed_documents, padded_of


def _sentence_transformer(folder: str, device: str, **kwargs: Any) -> Any:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(folder, device=device, **kwargs)
    st.max_seq_length = 8192
    return st


def _st_engine(st: Any) -> Engine:
    """encode and padded tokens of a loaded SentenceTransformer (torch or ONNX), batches of ST_BATCH."""

    def encode(xs: list[str]) -> np.ndarray:
        return np.asarray(st.encode(xs, batch_size=ST_BATCH, normalize_embeddings=True))

    def padded_of(texts: list[str]) -> int:
        return padded_fixed_batches(texts, [len(st.tokenizer(t)["input_ids"]) for t in texts], ST_BATCH)

    return encode, padded_of


def engine_st(folder: str, device: str) -> Engine:
    import torch

    return _st_engine(_sentence_transformer(folder, device, model_kwargs={"torch_dtype": torch.float32}))


def engine_st_onnx(folder: str, device: str) -> Engine:
    """sentence-transformers' ONNX backend: exports the folder once (optimum, offline), then onnxruntime."""
    onnx_folder = Path(folder + "-onnx")
    if not (onnx_folder / "onnx" / "model.onnx").is_file():
        t0 = time.perf_counter()
        st = _sentence_transformer(folder, device, backend="onnx", model_kwargs={"export": True})
        st.save_pretrained(str(onnx_folder))
        print(f"exported ONNX in {time.perf_counter() - t0:.0f} s to {onnx_folder}", file=sys.stderr)
    return _st_engine(_sentence_transformer(str(onnx_folder), device, backend="onnx"))


def engine_infinity(folder: str, device: str) -> Engine:
    """Infinity's in-process engine (what ``infinity_emb v2 --engine torch`` runs), fp32, no BetterTransformer."""
    import asyncio

    from infinity_emb import AsyncEmbeddingEngine, EngineArgs  # type: ignore[import-not-found]
    from transformers import AutoTokenizer

    # Infinity's batch handler answers through its event loop, so that loop runs all the time, in
    # its own thread, as it does inside `infinity_emb v2`.
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    engine = AsyncEmbeddingEngine.from_args(
        EngineArgs(
            model_name_or_path=folder,
            engine="torch",
            device=device,
            dtype="float32",
            batch_size=INFINITY_BATCH,
            bettertransformer=False,
            model_warmup=False,
        )
    )
    asyncio.run_coroutine_threadsafe(engine.astart(), loop).result()
    tok = AutoTokenizer.from_pretrained(folder)

    def encode(xs: list[str]) -> np.ndarray:
        vecs, _usage = asyncio.run_coroutine_threadsafe(engine.embed(sentences=xs), loop).result()
        return np.asarray(vecs, dtype=np.float32)

    def padded_of(texts: list[str]) -> int:
        lengths = [len(tok(t)["input_ids"]) for t in texts]
        return padded_fixed_batches(texts, lengths, INFINITY_BATCH, window=4 * INFINITY_BATCH)

    return encode, padded_of


def gguf_file(folder: str, quant: str) -> Path:
    """Where the ``quant`` GGUF of ``folder`` lives (beside it; build_gguf makes it)."""
    return Path(folder + "-gguf") / f"model-{quant}.gguf"


# llama.cpp's quantiser as its llama-quantize tool calls it (llama_model_quantize, through llama-cpp-python's
# bindings of the same libllama): f16 GGUF in, ftype out, every other parameter at llama.cpp's default.
_QUANTIZE = """
import ctypes, sys, llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + sys.argv[3].upper())
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params)))
"""


def build_gguf(folder: str, quant: str) -> str | None:
    """Make ``gguf_file(folder, quant)`` once: llama.cpp's converter to f16, its quantiser for the rest.

    Returns None when the file exists, else why it cannot be made. The converter is the one vendored in the
    llama-cpp-python sdist that ``scripts/engines.sh llamacpp`` unpacks, run through tests/support/gguf_convert.py
    (which only names the tiny tokenizer's pre-tokenizer, see there).
    """
    out = gguf_file(folder, quant)
    if out.is_file():
        return None
    python = CACHE / "venvs" / "llamacpp" / "bin" / "python"
    sources = sorted((CACHE / "src").glob("llama_cpp_python-*/vendor/llama.cpp/convert_hf_to_gguf.py"))
    if not python.is_file() or not sources:
        return "venv not built: run `scripts/engines.sh llamacpp`"
    f16 = gguf_file(folder, "f16")
    f16.parent.mkdir(parents=True, exist_ok=True)
    steps = []
    if not f16.is_file():
        convert = ROOT / "tests" / "support" / "gguf_convert.py"
        steps.append([str(python), str(convert), str(sources[-1].parent), folder, "--outfile", str(f16) + ".tmp",
                      "--outtype", "f16"])
    if quant != "f16":
        steps.append([str(python), "-c", _QUANTIZE, str(f16), str(out) + ".tmp", quant])
    for step in steps:
        print(f"making {out.name if quant != 'f16' or 'convert' not in step[1] else f16.name} ...", file=sys.stderr)
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
            return f"GGUF {quant} failed (exit {proc.returncode})"
        made = Path(step[step.index("--outfile") + 1]) if "--outfile" in step else Path(step[-2])
        made.rename(str(made).removesuffix(".tmp"))
    return None


# llama-cpp-python's default n_batch/n_ubatch of 512 truncates every longer input (Llama.embed cuts tokens to
# n_batch) and so returns a different vector without a word: the batch must hold the longest input.
LLAMACPP_BATCH_ENV = "QWEN_BENCH_LLAMACPP_BATCH"


def engine_llamacpp(folder: str, device: str, quant: str = "f16") -> Engine:
    """llama-cpp-python's ``Llama.embed`` on the ``quant`` GGUF (last-token pooling from the GGUF, normalised)."""
    from llama_cpp import Llama  # type: ignore[import-not-found]

    n_batch = int(os.environ.get(LLAMACPP_BATCH_ENV, "2048"))
    llm = Llama(str(gguf_file(folder, quant)), embedding=True, n_ctx=n_batch, n_batch=n_batch, n_ubatch=n_batch,
                n_gpu_layers=0 if device == "cpu" else -1, verbose=False)

    def encode(xs: list[str]) -> np.ndarray:
        return np.asarray(llm.embed(xs, normalize=True), dtype=np.float32)

    def padded_of(texts: list[str]) -> int:
        # llama.cpp packs whole sequences into n_batch-token batches: no padding, but attention runs over the batch
        lengths = [len(llm.tokenize(t.encode("utf-8"))) for t in texts]
        if max(lengths) > n_batch:
            raise SystemExit(f"an input of {max(lengths)} tokens > n_batch {n_batch}: set {LLAMACPP_BATCH_ENV}")
        return sum(lengths)

    return encode, padded_of


WORKERS: dict[str, Callable[[str, str], Engine]] = {
    "local": engine_local,
    "sentence-transformers": engine_st,
    "st-onnx": engine_st_onnx,
    "infinity": engine_infinity,
    "llamacpp-f16": functools.partial(engine_llamacpp, quant="f16"),
    "llamacpp-q8_0": functools.partial(engine_llamacpp, quant="q8_0"),
}


def worker(engine: str, folder: str, texts_file: str, out: str, device: str, rounds: int) -> None:
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    encode, padded_of = WORKERS[engine](folder, device)
    padded = padded_of(texts)
    encode(texts[:4])  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        vecs = encode(texts)
        times.append(time.perf_counter() - t0)
    np.save(out + ".npy", vecs.astype(np.float32))
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(out + ".json").write_text(
        json.dumps(
            {
                "seconds": statistics.median(times),
                "rounds": times,
                "texts": len(texts),
                "padded": padded,
                "peak_rss_mb": rss_kb / 1024,
            }
        ),
        encoding="utf-8",
    )
    # Infinity's batch-handler threads keep the interpreter alive after the work is done (its own
    # server stops them on shutdown); the results are written, so leave without waiting for them.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def engine_python(engine: str) -> Path | None:
    """The interpreter for ``engine``: this one, or its own venv's (None if that venv is not built)."""
    venv = ENGINES[engine][1]
    if venv is None:
        return Path(sys.executable)
    python = CACHE / "venvs" / venv / "bin" / "python"
    return python if python.is_file() else None


def run_engine(engine: str, args: argparse.Namespace, folder: str, texts_file: str, out: str) -> str | None:
    """Run one engine's worker; None on success, else the reason it could not run."""
    extra = ["--texts-file", texts_file, "--out", out, "--device", args.device, "--rounds", str(args.rounds)]
    return run_worker(__file__, engine, folder, extra)


def run_worker(script: str, engine: str, folder: str, extra: list[str], env: dict[str, str] | None = None) -> str | None:
    """Run ``script --worker engine --folder folder *extra`` in the engine's interpreter (its GGUF made first).

    None on success, else the reason it could not run.
    """
    python = engine_python(engine)
    if python is None:
        return f"venv not built: run `scripts/engines.sh {ENGINES[engine][1]}`"
    if engine.startswith("llamacpp-"):
        reason = build_gguf(folder, engine.removeprefix("llamacpp-"))
        if reason is not None:
            return reason
    cmd = [str(python), script, "--worker", engine, "--folder", folder, *extra]
    print(f"running {engine} ({python}) ...", file=sys.stderr)
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, stderr=subprocess.PIPE,
                          text=True)
    if proc.returncode == 0:
        return None
    sys.stderr.write(proc.stderr[-4000:])
    errors = [line.strip() for line in proc.stderr.splitlines() if "Error" in line or "error" in line]
    return f"failed: {errors[-1] if errors else f'exit {proc.returncode}'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6B", choices=["tiny", "0.6B", "4B", "8B"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--texts", type=int, default=64)
    ap.add_argument("--min-tokens", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=1, help="timed passes per engine (median reported)")
    ap.add_argument("--engines", default=DEFAULT_ENGINES, help=f"comma-separated, from {','.join(ENGINES)}")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="tiny shape, 24 texts of 10-200 tokens: seconds")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--texts-file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        ap.set_defaults(size="tiny", texts=24, max_tokens=200)
        args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.folder, args.texts_file, args.out, args.device, args.rounds)
        return
    engines = args.engines.split(",")
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engine(s) {unknown}; choose from {list(ENGINES)}")

    from transformers import AutoTokenizer

    folder = model_folder(args.size)
    tokenizer = AutoTokenizer.from_pretrained(folder)  # appends <|endoftext|>, as the model sees it
    texts = corpus(args.texts, tokenizer, args.min_tokens, args.max_tokens)
    tokens = sum(len(tokenizer(t)["input_ids"]) for t in texts)
    results: dict[str, dict[str, object]] = {}
    vectors: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = str(Path(tmp) / "texts.json")
        Path(texts_file).write_text(json.dumps(texts), encoding="utf-8")
        for engine in engines:
            out = str(Path(tmp) / engine)
            reason = run_engine(engine, args, folder, texts_file, out)
            if reason is not None:
                results[engine] = {"error": reason}
                continue
            results[engine] = json.loads(Path(out + ".json").read_text(encoding="utf-8"))
            vectors[engine] = np.load(out + ".npy")
    report(args, texts, tokens, results, vectors)


def report(
    args: argparse.Namespace,
    texts: list[str],
    tokens: int,
    results: dict[str, dict[str, object]],
    vectors: dict[str, np.ndarray],
) -> None:
    ref = "local" if "local" in vectors else next(iter(vectors), None)
    print(
        f"\n{args.size} shape, {args.device}, fp32, {len(texts)} texts, {tokens} tokens "
        f"({args.min_tokens}-{args.max_tokens} each); {platform.machine()}, {os.cpu_count()} cores, "
        f"median of {args.rounds} timed pass(es)\n"
    )
    print(
        f"| engine | tokens/s | texts/s | peak RSS (MB) | padded / real tokens | max abs diff vs {ref} | "
        f"vs {ref} |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = float(results[ref]["seconds"]) if ref else None  # type: ignore[arg-type]
    bad = []
    for name, r in results.items():
        label = ENGINES[name][0]
        if "error" in r:
            print(f"| {label} | {r['error']} | | | | | |")
            continue
        seconds = float(r["seconds"])  # type: ignore[arg-type]
        diff = float(np.abs(vectors[name] - vectors[ref]).max()) if ref else 0.0
        r["max_abs_diff"] = diff
        if diff > args.tolerance:
            bad.append(f"{name} ({diff:.2e})")
        speed = f"{base / seconds:.2f}x" if base else ""
        print(
            f"| {label} | {tokens / seconds:.0f} | {len(texts) / seconds:.3f} | "
            f"{float(r['peak_rss_mb']):,.0f} | {float(r['padded']) / tokens:.2f} | {diff:.1e} | {speed} |"
        )  # type: ignore[arg-type]
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "size": args.size,
                    "device": args.device,
                    "texts": len(texts),
                    "tokens": tokens,
                    "results": results,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    if bad:
        raise SystemExit(f"vectors differ from {ref} by more than {args.tolerance}: {', '.join(bad)}")


if __name__ == "__main__":
    main()
