"""benchmarks/full_size.py end to end at the tiny shape, so the 0.6B benchmark cannot rot.

Runs the real script in a subprocess with its own cache folder (``QWEN_EMBED_CACHE``): LocalEmbedder and
sentence-transformers run for real on a tiny random Qwen3; the two engines that live in their own venvs
(Infinity, the ONNX backend) are not built in that folder, so their rows must say how to build them.
Asserts the exit code, sentence-transformers' vectors against LocalEmbedder's (two implementations, two
processes: the script's reference column is LocalEmbedder), padding, and the table's rows. No timing is
asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_full_size_tiny_all_engines(tmp_path: Path) -> None:
    out = tmp_path / "full.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT),
               QWEN_EMBED_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "full_size.py"), "--size", "tiny", "--texts", "40",
         "--max-tokens", "300", "--json", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["texts"] == 40 and result["size"] == "tiny"
    local, st = result["results"]["local"], result["results"]["sentence-transformers"]
    # the one agreement check: sentence-transformers' own encode() (batches of 32, its pooling and
    # normalising) against LocalEmbedder's vectors, each computed in its own worker process
    assert 0.0 <= st["max_abs_diff"] < 1e-5
    assert "| max abs diff vs local |" in proc.stdout
    # 40 texts cut into fixed batches of 32 pad more than LocalEmbedder's token-sorted budget batches
    assert local["padded"] < st["padded"]
    assert local["padded"] >= result["tokens"]
    for engine in ("infinity", "st-onnx"):
        assert result["results"][engine] == {"error": f"venv not built: run `scripts/engines.sh {engine}`"}
    table = proc.stdout
    assert "| LocalEmbedder (torch, sdpa) |" in table and "| 1.00x |" in table
    assert "venv not built: run `scripts/engines.sh infinity`" in table


def test_unknown_engine_is_named(tmp_path: Path) -> None:
    """Bad input: an engine name the script does not know."""
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "full_size.py"), "--engines", "local,vllm"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), QWEN_EMBED_CACHE=str(tmp_path / "cache")),
    )
    assert proc.returncode == 2
    assert "unknown engine(s) ['vllm']" in proc.stderr
