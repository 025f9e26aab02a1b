"""docs/compatibility.md's tables read as claims, each tied to the tests that make it.

Every body cell of a table (the first column, which names the engine or client, aside) is one of:
- no claim: empty or ``—``;
- a claim: it names tests, ``E/test_file.py::test_name`` (``E/`` = tests/engines, ``I/`` =
  tests/integration, ``U/`` = tests/unit), ``::test_other`` for another test of the last file named in that row, or
  "same test(s)" for the tests named earlier in the row;
- "not run here" and why (it may still name stand-in tests, which must then have run).
A cell that claims something but names no test and does not say "not run here" is a problem.

``check(claims, outcomes)`` lists the problems: a claim without a test, a named test that does not
exist, or one that did not run and pass in the recorded outcomes (tests/support/outcomes.py). CI runs
``python -m tests.support.compat_table .pytest_outcomes`` (``make check-compat``) after every tier, so a
"yes" whose test was skipped, deselected or deleted fails the build.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "compatibility.md"
PREFIXES = {"E": "tests/engines", "I": "tests/integration", "U": "tests/unit"}
NO_CLAIM = {"", "—", "-"}
NOT_RUN = "not run here"

_SAME = re.compile(r"\bsame tests?\b")


@dataclass
class Claim:
    """One table cell: where it is, its text, and the test ids (``tests/...py::name``) it names."""

    line: int
    column: str
    row: str
    text: str
    tests: list[str] = field(default_factory=list)

    @property
    def not_run_here(self) -> bool:
        return NOT_RUN in self.text

    @property
    def where(self) -> str:
        return f"docs/compatibility.md:{self.line} ({self.row} / {self.column})"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse(text: str) -> list[Claim]:
    """Every claim cell of every table in ``text`` (cells with no claim are left out)."""
    claims: list[Claim] = []
    header: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.lstrip().startswith("|"):
            header = None
            continue
        cells = _cells(line)
        if header is None:
            header = cells
            continue
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
            continue
        row = re.sub(r"[`*]", "", cells[0])
        last_file: str | None = None
        row_tests: list[str] = []
        for column, cell in zip(header[1:], cells[1:], strict=False):
            tests: list[str] = []
            # ids in the order written, so that ``::name`` belongs to the file named just before it
            for m in re.finditer(r"`([EIU])/(test_\w+\.py)::(test_\w+)`|(?<![\w/.])`::(test_\w+)`", cell):
                if m.group(1):
                    last_file = f"{PREFIXES[m.group(1)]}/{m.group(2)}"
                    tests.append(f"{last_file}::{m.group(3)}")
                elif last_file is not None:
                    tests.append(f"{last_file}::{m.group(4)}")
                else:
                    tests.append(f"?::{m.group(4)}")  # reported by check(): no file to resolve it in
            if not tests and _SAME.search(cell):
                tests = list(row_tests)
            row_tests.extend(t for t in tests if t not in row_tests)
            if cell in NO_CLAIM:
                continue
            claims.append(Claim(number, column, row, cell, tests))
    return claims


def defined_tests(path: Path) -> set[str]:
    """The names of the test functions a test file defines at top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.name.startswith("test_")}


def static_problems(claims: Iterable[Claim], repo: Path = REPO) -> list[str]:
    """Problems visible without running anything: claims naming no test, tests that do not exist."""
    problems = []
    known: dict[str, set[str]] = {}
    for claim in claims:
        if not claim.tests and not claim.not_run_here:
            problems.append(f"{claim.where}: {claim.text!r} names no test and does not say {NOT_RUN!r}")
        for test in claim.tests:
            file, _, name = test.partition("::")
            if file == "?":
                problems.append(f"{claim.where}: `::{name}` follows no `E/...` or `I/...` file")
                continue
            if file not in known:
                known[file] = defined_tests(repo / file) if (repo / file).is_file() else set()
            if name not in known[file]:
                problems.append(f"{claim.where}: {test} does not exist")
    return problems


def merge(outcomes: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """One outcome per node id over several runs: passed in any run wins, then failed, then skipped."""
    merged: dict[str, str] = {}
    rank = {"passed": 2, "failed": 1, "skipped": 0}
    for run in outcomes:
        for node, outcome in run.items():
            if node not in merged or rank[outcome] > rank[merged[node]]:
                merged[node] = outcome
    return merged


def run_problems(claims: Iterable[Claim], outcomes: Mapping[str, str]) -> list[str]:
    """Named tests that did not run and pass: absent from every run (parametrised ids count), or skipped."""
    problems = []
    for claim in claims:
        for test in claim.tests:
            runs = {node: o for node, o in outcomes.items() if node == test or node.startswith(test + "[")}
            if not runs:
                problems.append(f"{claim.where}: {test} did not run in this CI run")
                continue
            bad = {node: o for node, o in runs.items() if o != "passed"}
            if bad:
                problems.append(f"{claim.where}: {test} did not pass: "
                                + ", ".join(f"{node.partition('::')[2]} {o}" for node, o in sorted(bad.items())))
    return problems


def check(claims: list[Claim], outcomes: Mapping[str, str], repo: Path = REPO) -> list[str]:
    return static_problems(claims, repo) + run_problems(claims, outcomes)


def load_outcomes(folder: Path) -> tuple[dict[str, str], list[Path]]:
    files = sorted(folder.glob("*.json"))
    return merge(json.loads(f.read_text(encoding="utf-8"))["outcomes"] for f in files), files


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else REPO / ".pytest_outcomes"
    outcomes, files = load_outcomes(folder)
    claims = parse(PAGE.read_text(encoding="utf-8"))
    if not files:
        print(f"check-compat: no outcome files in {folder} (run the tiers with --outcomes-file first)",
              file=sys.stderr)
        return 1
    problems = check(claims, outcomes)
    tests = {t for c in claims for t in c.tests}
    if problems:
        print(f"check-compat: {len(problems)} claim(s) of docs/compatibility.md not backed by a test that ran "
              f"and passed ({', '.join(f.name for f in files)}):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"check-compat: {len(claims)} cells, {len(tests)} tests named, every one ran and passed "
          f"({', '.join(f.name for f in files)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
