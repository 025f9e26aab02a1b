"""benchmarks/gpu_check.py end to end on CPU (``--device cpu --quick``), so the GPU command cannot rot.

Runs the real script in a subprocess: tiny random Qwen3, LocalEmbedder vs sentence-transformers, bf16 vs
fp32, a real ``qwen-embed serve`` subprocess with concurrent requests. Asserts the exit code, that every
check in the JSON passed, and that the checks and throughput rows the GPU run relies on are all there.
No timing is asserted (throughput figures are only reported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")


def test_gpu_check_quick_on_cpu(tmp_path: Path) -> None:
    out, md = tmp_path / "gpu_check.json", tmp_path / "gpu_check.md"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT),
               QWEN_EMBED_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
         "--json", str(out), "--markdown", str(md)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["passed"] is True
    assert result["device"] == "cpu" and result["quick"] is True
    assert result["peak_bf16_tflops"] is None  # CPU: no peak, percentages are "n/a"
    names = [c["name"] for c in result["checks"]]
    assert len(names) == 8, names  # device, ST, bf16, sdpa, serve, then the ingest/mixed/query corpora (step 5)
    assert all(c["passed"] for c in result["checks"]), result["checks"]
    for corpus in ("ingest", "mixed", "query"):
        assert f"tiny float32 {corpus}: LocalEmbedder vs sentence-transformers, worst row cosine" in names
    rows = {(r["corpus"], r["name"]) for r in result["corpora"]}
    assert {("ingest", "LocalEmbedder"), ("mixed", "LocalEmbedder"), ("query", "LocalEmbedder")} <= rows, rows
    assert all(r["texts"] > 0 and r["seconds"] > 0 for r in result["corpora"])
    assert any("vs cpu" in n for n in names) and any("bfloat16 vs fp32" in n for n in names)
    assert any("serve on cpu" in n for n in names)
    engines = {t["name"] for t in result["throughput"]}
    assert engines == {"LocalEmbedder sdpa", "sentence-transformers", "qwen-embed serve, 4 concurrent requests"}
    assert all(t["tokens"] > 0 and t["tokens_per_s"] > 0 and t["pct_of_bf16_peak"] is None
               for t in result["throughput"])
    table = md.read_text(encoding="utf-8")
    assert "| LocalEmbedder sdpa | tiny | float32 | 24 |" in table and "FAILED" not in table


def test_gpu_check_fails_loudly_on_a_mismatch(tmp_path: Path) -> None:
    """Bad input: ``--atol 0`` makes LocalEmbedder vs sentence-transformers (about 1e-7 apart) a mismatch."""
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
         "--steps", "device", "--atol", "0", "--json", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "FAILED: 1 check(s):" in proc.stderr
    assert "LocalEmbedder cpu vs sentence-transformers cpu" in proc.stderr.split("FAILED: 1 check(s):")[1]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["passed"] is False
    assert [c["passed"] for c in result["checks"]] == [True, False]  # cpu vs cpu is exactly 0 <= 0


def test_peak_table_and_flops_per_token(tmp_path: Path) -> None:
    """The peak lookup by device name and FLOPs per token from the 0.6B configuration (no model built)."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    assert gpu_check.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert gpu_check.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu_check.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu_check.peak_tflops("NVIDIA L4") == 121.0
    assert gpu_check.peak_tflops("NVIDIA A10G") == 125.0
    assert gpu_check.peak_tflops("NVIDIA GeForce RTX 4090") == 165.0
    assert gpu_check.peak_tflops("Tesla T4") is None
    pytest.importorskip("transformers")
    from qwen_embed_adapters.testing import qwen3_config

    qwen3_config("0.6B").save_pretrained(tmp_path)  # config.json only: no weights needed for the count
    params = gpu_check.flops_per_token(str(tmp_path)) / 2
    # Qwen3-0.6B: 28 x (q 1024x2048 + o 2048x1024 + k, v 1024x1024 each + MLP 3 x 1024x3072) = 0.440B,
    # i.e. 0.6B total minus the 151,669 x 1024 embedding lookup.
    assert params == 28 * (1024 * 2048 * 2 + 1024 * 1024 * 2 + 3 * 1024 * 3072)
