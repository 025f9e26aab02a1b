"""Every script in benchmarks/ in its quick mode (``--quick``), so that no benchmark can rot unseen (issue 28).

The scripts are found by listing the folder: a new script is run here as soon as it exists, and fails here
until it has a quick mode. Each one runs for real in a subprocess, from the repository root as a user runs it
after `make test` set up the venv, against what the project installs (the ``bench`` extra; engines in their
own venvs from ``scripts/engines.sh`` run where they are built and otherwise get a row saying how to build
them). Asserted: exit 0, a Markdown table on stdout (a header row and its ``|---|`` line), and
docs/benchmarks.md byte for byte unchanged (quick figures are never written). No figure is asserted.
Wall and CPU seconds of each run are printed (``pytest -s``); CPU seconds (the script and the processes it
waited for) stay under a budget that load on a shared machine does not stretch the way it stretches wall time.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "benchmarks"
DOC = REPO_ROOT / "docs" / "benchmarks.md"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py"))
# gpu_check.py checks a GPU by default; its quick mode on the CPU is what a machine without one can run.
EXTRA_ARGS = {"gpu_check.py": ["--device", "cpu"]}
# A quick run is seconds of work: about 40 s of wall time each on a quiet 2-core machine. CPU seconds
# count both cores (torch uses two threads), hence the budget above that.
CPU_BUDGET_S = 90.0
TABLE_HEADER = re.compile(r"^\|.*\|\s*\n\|(\s*:?-+:?\s*\|)+\s*$", re.MULTILINE)


def test_the_listing_is_the_scripts() -> None:
    """The parametrised test below covers the folder: every file in it is a script it runs."""
    files = sorted(p.name for p in BENCH.iterdir() if p.is_file())
    assert files == SCRIPTS, "benchmarks/ holds a file that is not a .py script: run it from here or move it"
    assert len(SCRIPTS) >= 13 and "remote_throughput.py" in SCRIPTS and "integrations.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_mode(script: str) -> None:
    before = DOC.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "ANONYMIZED_TELEMETRY": "False"}
    env.pop("MILVUS_URI", None)  # the scripts start their own databases
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *EXTRA_ARGS.get(script, [])],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(f"{script} --quick: {wall:.1f} s wall, {cpu:.1f} s CPU, load {os.getloadavg()[0]:.1f}")
    assert proc.returncode == 0, f"{script} --quick exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    assert TABLE_HEADER.search(proc.stdout), f"{script} --quick printed no Markdown table:\n{proc.stdout[-2000:]}"
    assert DOC.read_bytes() == before, f"{script} --quick changed docs/benchmarks.md"
    assert cpu < CPU_BUDGET_S, f"{script} --quick used {cpu:.0f} s of CPU (budget {CPU_BUDGET_S:.0f} s)"


def test_quick_refuses_to_write() -> None:
    """Bad input: ``--quick --write`` (a quick figure in place of a documented one) is refused before any work."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / "remote_throughput.py"), "--quick", "--write"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == 2
    assert "--quick figures are not written to docs/benchmarks.md" in proc.stderr
