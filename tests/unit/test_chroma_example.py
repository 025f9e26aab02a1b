"""examples/chroma_quickstart.py runs offline and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("chromadb")

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_runs_offline(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "chroma_quickstart.py"), "--path", str(tmp_path / "db")],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert any(line.startswith("query_texts  -> ['paris'") for line in lines), out.stdout
    assert any("refused      -> dimension mismatch for 'quickstart': it holds 64-d vectors, got 32-d" in line
               for line in lines), out.stdout
    assert "new process  -> ['beijing']" in lines, out.stdout
