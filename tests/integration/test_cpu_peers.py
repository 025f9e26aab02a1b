"""benchmarks/cpu_peers.py's parts that decide its figures: the bounded background load, the agreement
measure, and refusing an unknown engine. The whole script runs in its quick mode in
tests/integration/test_benchmarks_quick.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

import cpu_peers  # noqa: E402


def test_busy_cores_run_while_inside_and_are_gone_after() -> None:
    with cpu_peers.busy_cores(2, seconds=60) as procs:
        assert len(procs) == 2
        assert all(p.poll() is None for p in procs)  # still spinning after the 1 s settling sleep
        cpu0 = sum(_cpu_seconds(p.pid) for p in procs)
        time.sleep(0.5)
        assert sum(_cpu_seconds(p.pid) for p in procs) > cpu0  # they burn CPU
    assert all(p.returncode is not None for p in procs)  # stopped and reaped on leaving


def test_busy_cores_stop_themselves() -> None:
    with cpu_peers.busy_cores(1, seconds=0.2) as procs:
        procs[0].wait(timeout=30)  # the bound holds even if nobody stops it
        assert procs[0].returncode == 0


def test_no_busy_cores_for_the_idle_phase() -> None:
    t0 = time.perf_counter()
    with cpu_peers.busy_cores(0, seconds=60) as procs:
        assert procs == []
    assert time.perf_counter() - t0 < 0.5  # no settling sleep without load


def test_agreement_is_min_and_mean_of_row_cosines() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    got = np.array([[2.0, 0.0], [1.0, 1.0], [-3.0, 0.0]], dtype=np.float32)  # norms do not matter
    lo, mean = cpu_peers.agreement(got, ref)
    assert lo == pytest.approx(-1.0)
    assert mean == pytest.approx((1.0 + 2**-0.5 - 1.0) / 3)


@pytest.mark.parametrize(("argv", "message"), [
    (["--engines", "local,vllm"], "unknown engine(s) ['vllm']"),
    (["--phases", "busy"], "--phases takes idle and/or loaded, got 'busy'"),
])
def test_bad_arguments_are_named(tmp_path: Path, argv: list[str], message: str) -> None:
    # bad input: an engine the script does not know; a phase that is neither idle nor loaded
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "cpu_peers.py"), *argv],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), QWEN_EMBED_CACHE=str(tmp_path)))
    assert proc.returncode == 2
    assert message in proc.stderr


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
