"""Where real drifts land: each engine's probe vectors against the reference's, and the space card's verdict.

The reference is LocalEmbedder in float32 on a random tiny Qwen3 (``make_tiny_qwen3``; no model hub here).
Every other row embeds the space card's probes (``qwen_embed_adapters.space.PROBES``) another way and
reports the lowest per-probe cosine against the reference's card, and whether the default tolerance
(``space.DEFAULT_TOLERANCE``) calls it the same space. Rows that are the same space must pass; the failure
rows, each a cause users reported, must fail:

- same space: LocalEmbedder in bfloat16 and float16; sentence-transformers (the reference implementation
  users compare against) in float32; ``qwen-embed serve`` on the same folder, through RemoteEmbedder (base64).
- failures: mean pooling (llama.cpp #14028/#14029: a GGUF without the pooling key), the ``<|endoftext|>``
  token not appended (llama.cpp #14084; QwenLM/Qwen3-Embedding #54) through sentence-transformers on a
  folder whose tokenizer no longer appends it, a second random model at the same width (LightRAG #1946),
  documents wrapped in the query instruction (xinference #3751).

Exits 1 when the tolerance misclassifies a row. Infinity and llama.cpp's server rows come from the engine
tier (tests/engines), which starts them.

    python benchmarks/space_drift.py [--json out.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from qwen_embed_adapters import Embedder, LocalEmbedder, RemoteEmbedder  # noqa: E402
from qwen_embed_adapters.space import (  # noqa: E402
    DEFAULT_TOLERANCE,
    PROBES,
    compare_cards,
    embed_probes,
    make_card,
)
from qwen_embed_adapters.testing import make_tiny_qwen3  # noqa: E402

TASK = "Given a web search query, retrieve relevant passages that answer the query"


def _mean_pooling_copy(src: str, dst: Path) -> str:
    shutil.copytree(src, dst)
    cfg_path = dst / "1_Pooling" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for key in list(cfg):
        if key.startswith("pooling_mode"):
            cfg[key] = False
    cfg["pooling_mode_mean_tokens"] = True
    cfg_path.write_text(json.dumps(cfg))
    return str(dst)


def _no_eot_copy(src: str, dst: Path) -> str:
    shutil.copytree(src, dst)
    tok_path = dst / "tokenizer.json"
    tok = json.loads(tok_path.read_text())
    tok["post_processor"] = None  # the tokenizer no longer appends <|endoftext|>
    tok_path.write_text(json.dumps(tok))
    return str(dst)


class _SentenceTransformersEmbedder(Embedder):
    """sentence-transformers as users run it: ``encode(normalize_embeddings=True)``, prompts from the folder."""

    engine = "sentence-transformers"

    def __init__(self, folder: str) -> None:
        from sentence_transformers import SentenceTransformer

        self._st = SentenceTransformer(folder, device="cpu")
        get_width = getattr(self._st, "get_embedding_dimension", None) or self._st.get_sentence_embedding_dimension
        width = int(get_width() or 0)
        super().__init__("tiny-qwen3", query_instruction=TASK, native_dim=width, max_concurrency=1)

    def to_config(self) -> dict[str, object]:
        return {"engine": self.engine}

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._st.encode(texts, normalize_embeddings=True, batch_size=8), dtype=np.float32)


class _DocsAsQueries(Embedder):
    """Documents wrapped in the query instruction (xinference #3751)."""

    engine = "local"

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        super().__init__(inner.model, query_instruction=TASK, native_dim=inner.dimension, max_concurrency=1)

    def to_config(self) -> dict[str, object]:
        return {"engine": self.engine}

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._inner.embed_queries(texts, TASK)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_rows(folder: str) -> tuple[subprocess.Popen[bytes], Embedder]:
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwen_embed_adapters.cli", "serve", "--model", folder, "--port", str(port),
         "--device", "cpu", "--served-model-name", "tiny-qwen3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"qwen-embed serve exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return proc, RemoteEmbedder(f"http://127.0.0.1:{port}/v1", model="tiny-qwen3", query_instruction=TASK)


def rows(work: Path, quick: bool = False) -> list[dict[str, object]]:
    """Build the models, embed the probes every way, compare with the reference card. ``quick``: the
    in-process LocalEmbedder rows only (no sentence-transformers, no server)."""
    ref_dir = make_tiny_qwen3(work / "tiny", seed=0)
    other_dir = make_tiny_qwen3(work / "tiny-seed1", seed=1)
    reference = LocalEmbedder(ref_dir, device="cpu", dtype="float32", query_instruction=TASK)
    card = make_card(reference)
    cases: list[tuple[str, bool, Callable[[], Embedder]]] = [
        ("LocalEmbedder bfloat16", True,
         lambda: LocalEmbedder(ref_dir, device="cpu", dtype="bfloat16", query_instruction=TASK)),
        ("LocalEmbedder float16", True,
         lambda: LocalEmbedder(ref_dir, device="cpu", dtype="float16", query_instruction=TASK)),
        ("sentence-transformers float32", True, lambda: _SentenceTransformersEmbedder(ref_dir)),
        ("mean pooling (LocalEmbedder, pooling config switched to mean)", False,
         lambda: LocalEmbedder(_mean_pooling_copy(ref_dir, work / "mean"), device="cpu", query_instruction=TASK)),
        ("end-of-text token not appended (sentence-transformers)", False,
         lambda: _SentenceTransformersEmbedder(_no_eot_copy(ref_dir, work / "no-eot"))),
        ("another random model at the same width (seed 1)", False,
         lambda: LocalEmbedder(other_dir, device="cpu", query_instruction=TASK)),
        ("documents wrapped in the query instruction", False, lambda: _DocsAsQueries(reference)),
    ]
    if quick:
        cases = [c for c in cases if "sentence-transformers" not in c[0]]
    out: list[dict[str, object]] = []

    def add(name: str, same: bool, emb: Embedder) -> None:
        comparison = compare_cards(card, embed_probes(emb, card.instruction))
        probe, cosine = comparison.worst
        out.append({"engine": name, "same_space": same, "worst_probe": probe, "min_cosine": cosine,
                    "verdict_same": comparison.same_space})

    for name, same, build in cases:
        emb = build()
        try:
            add(name, same, emb)
        finally:
            emb.close()
    if quick:
        return out
    proc, remote = _serve_rows(ref_dir)
    try:
        add("qwen-embed serve (RemoteEmbedder, base64)", True, remote)
    finally:
        remote.close()
        proc.terminate()
        proc.wait(30)
    return out


def table(results: list[dict[str, object]]) -> str:
    lines = [
        f"| engine vs LocalEmbedder float32 | same space? | worst probe | min cosine | verdict at {DEFAULT_TOLERANCE} |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        verdict = "same" if r["verdict_same"] else "refused"
        ok = "" if r["verdict_same"] == r["same_space"] else " **WRONG**"
        lines.append(
            f"| {r['engine']} | {'yes' if r['same_space'] else 'no'} | {r['worst_probe']} | "
            f"{float(r['min_cosine']):.5f} | {verdict}{ok} |"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument("--quick", action="store_true", help="in-process rows only (seconds): no sentence-transformers, no server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        results = rows(Path(tmp), quick=args.quick)
    print(table(results))
    same = [float(r["min_cosine"]) for r in results if r["same_space"]]  # type: ignore[arg-type]
    diff = [float(r["min_cosine"]) for r in results if not r["same_space"]]  # type: ignore[arg-type]
    print(f"\nprobes: {len(PROBES)}; lowest same-space cosine {min(same):.5f}, highest other-space cosine "
          f"{max(diff):.5f}, tolerance {DEFAULT_TOLERANCE}")
    if args.json:
        Path(args.json).write_text(json.dumps({"tolerance": DEFAULT_TOLERANCE, "rows": results}, indent=1))
    wrong = [r["engine"] for r in results if r["verdict_same"] != r["same_space"]]
    if wrong:
        print(f"misclassified at tolerance {DEFAULT_TOLERANCE}: {wrong}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
