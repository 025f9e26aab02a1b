"""A pytest plugin that writes each test's outcome to a JSON file, for the compatibility-table check.

``pytest --outcomes-file .pytest_outcomes/test.json ...`` writes ``{"argv": [...], "outcomes":
{nodeid: "passed" | "failed" | "skipped"}}`` at the end of the session; tests deselected by ``-m`` or
``-k`` are not in it. The Makefile's tier targets (``make test``, ``test-db``, ``test-engines``) pass the
option; ``make check-compat`` (``python -m tests.support.compat_table``) then checks that every claim of
docs/compatibility.md names a test that ran and passed in one of them. A run without the option writes
nothing, so a developer's partial run is never checked.

tests/conftest.py imports the hooks; ``pytest -p tests.support.outcomes`` loads them anywhere else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

_RANK = {"passed": 0, "skipped": 1, "failed": 2}
# nodeid -> outcome of the running session (a TestReport does not carry its config)
_outcomes: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--outcomes-file", default=None, metavar="PATH",
                     help="write every test's outcome (passed/failed/skipped) to PATH as JSON "
                          "(read by `make check-compat`)")


def pytest_sessionstart(session: pytest.Session) -> None:
    _outcomes.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        # the worst phase wins: a failed teardown after a passed call is a failure, a setup skip a skip
        before = _outcomes.get(report.nodeid)
        if before is None or _RANK[report.outcome] > _RANK[before]:
            _outcomes[report.nodeid] = report.outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--outcomes-file")
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"argv": sys.argv[1:], "outcomes": dict(sorted(_outcomes.items()))}, indent=1),
                   encoding="utf-8")
