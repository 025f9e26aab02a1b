"""benchmarks/space_drift.py end to end: the default tolerance passes every same-space engine and refuses
every reported failure, with the margin the docs table shows (docs/space.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_drift_table_separates_same_space_from_failures(tmp_path: Path) -> None:
    out = tmp_path / "drift.json"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "space_drift.py"), "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["engine"]: r for r in result["rows"]}
    same = [r for r in rows.values() if r["same_space"]]
    failures = [r for r in rows.values() if not r["same_space"]]
    assert {r["engine"] for r in same} == {
        "LocalEmbedder bfloat16", "LocalEmbedder float16", "sentence-transformers float32",
        "qwen-embed serve (RemoteEmbedder, base64)",
    }
    assert len(failures) == 4
    # margins on both sides of the tolerance, not a coin toss
    assert min(r["min_cosine"] for r in same) > result["tolerance"] + 0.009
    assert max(r["min_cosine"] for r in failures) < result["tolerance"] - 0.2
    assert rows["qwen-embed serve (RemoteEmbedder, base64)"]["min_cosine"] > 0.9999
    assert "| engine vs LocalEmbedder float32 |" in proc.stdout
