"""docs/compatibility.md against the suite: every claim names a test that exists (here, on every run),
and ran and passed (``make check-compat``, in CI after every tier, on the recorded outcomes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import compat_table
from tests.support.compat_table import Claim, check, parse, run_problems, static_problems

REPO = Path(__file__).resolve().parents[2]

TABLE = """
| engine | route | batch cap | rerank |
|---|---|---|---|
| A | `/v1` — `I/test_serve.py::test_health_and_models` | none — `E/test_llamacpp.py::test_no_batch_cap_met`, `::test_token_id_input` | — |
| B | not run here: needs a GPU | stand-in — same test | client-side |
"""


def test_every_claim_of_the_page_names_a_test_that_exists() -> None:
    claims = parse(compat_table.PAGE.read_text(encoding="utf-8"))
    assert len(claims) > 40
    assert static_problems(claims) == []
    named = {t for c in claims for t in c.tests}
    assert "tests/engines/test_infinity.py::test_rerank_wire_shape_and_order" in named


def test_cells_are_read_as_claims() -> None:
    a_route, a_cap, b_route, b_cap, b_rerank = parse(TABLE)
    assert (a_route.line, a_route.row, a_route.column) == (4, "A", "route")
    assert a_route.tests == ["tests/integration/test_serve.py::test_health_and_models"]
    # `::name` is a test of the file named just before it
    assert a_cap.tests == ["tests/engines/test_llamacpp.py::test_no_batch_cap_met",
                           "tests/engines/test_llamacpp.py::test_token_id_input"]
    assert (b_route.tests, b_route.not_run_here) == ([], True)
    assert b_cap.tests == []  # "same test" refers back within its own row only; row B named none before
    assert b_rerank.text == "client-side"


def test_a_claim_without_a_test_or_a_missing_test_is_a_problem() -> None:
    # bad input: a claim naming no test, and one naming a test that no file defines
    claims = parse(TABLE.replace("test_token_id_input", "test_that_was_deleted"))
    problems = static_problems(claims)
    assert problems == [
        "docs/compatibility.md:4 (A / batch cap): tests/engines/test_llamacpp.py::test_that_was_deleted does not exist",
        "docs/compatibility.md:5 (B / batch cap): 'stand-in — same test' names no test and does not say 'not run here'",
        "docs/compatibility.md:5 (B / rerank): 'client-side' names no test and does not say 'not run here'",
    ]


def test_a_named_test_must_have_run_and_passed() -> None:
    claim = Claim(7, "base64", "X", "yes — ...", ["tests/engines/test_llamacpp.py::test_remote_equals_local"])
    node = "tests/engines/test_llamacpp.py::test_remote_equals_local"
    passed = {f"{node}[float]": "passed", f"{node}[base64]": "passed"}
    assert run_problems([claim], passed) == []
    # bad input: one parametrisation skipped (an engine that could not be built, outside CI)
    assert run_problems([claim], {**passed, f"{node}[base64]": "skipped"}) == [
        f"docs/compatibility.md:7 (X / base64): {node} did not pass: test_remote_equals_local[base64] skipped"]
    # bad input: the tier that runs it did not run (or deselected it)
    assert run_problems([claim], {"tests/engines/test_llamacpp.py::test_remote_equals_local_too": "passed"}) == [
        f"docs/compatibility.md:7 (X / base64): {node} did not run in this CI run"]
    assert check([claim], passed) == []


def test_outcomes_are_recorded_and_checked(tmp_path: Path) -> None:
    """The plugin writes outcomes, and the checker reads a folder of them: end to end, in subprocesses."""
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "def test_ok():\n    pass\n"
        "@pytest.mark.parametrize('x', [1, 2])\ndef test_param(x):\n    assert x\n"
        "def test_skipped():\n    pytest.skip('engine not built')\n"
    )
    out = tmp_path / "outcomes" / "unit.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.support.outcomes", "-p",
                           "no:cacheprovider", "--outcomes-file", str(out), "test_sample.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recorded = json.loads(out.read_text())["outcomes"]
    assert recorded == {"test_sample.py::test_ok": "passed", "test_sample.py::test_param[1]": "passed",
                        "test_sample.py::test_param[2]": "passed", "test_sample.py::test_skipped": "skipped"}
    # the checker over an outcome folder that lacks the page's tests fails and says which
    proc = subprocess.run([sys.executable, "-m", "tests.support.compat_table", str(out.parent)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "did not run in this CI run" in proc.stderr and "unit.json" in proc.stderr
