"""The benchmark scripts' writer of docs/benchmarks.md sections: a second run replaces, never duplicates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.bench_docs import DOC, markers, write_section

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_a_new_section_is_added_once_and_then_replaced_in_place(tmp_path: Path) -> None:
    doc = tmp_path / "b.md"
    doc.write_text("# Benchmarks\n\nintro\n", encoding="utf-8")
    write_section("alpha", "| a |\n|---|\n| 1 |", doc=doc)
    doc.write_text(doc.read_text(encoding="utf-8") + "\nprose by hand after it\n", encoding="utf-8")
    write_section("alpha", "| a |\n|---|\n| 2 |", doc=doc)
    text = doc.read_text(encoding="utf-8")
    assert text.count("<!-- alpha:start -->") == 1 and text.count("<!-- alpha:end -->") == 1
    assert "| 2 |" in text and "| 1 |" not in text
    assert text.index("intro") < text.index("| 2 |") < text.index("prose by hand after it")


def test_the_heading_is_written_only_with_a_new_section_and_only_once(tmp_path: Path) -> None:
    doc = tmp_path / "b.md"
    write_section("one", "x", heading="## Compact", doc=doc)
    write_section("two", "y", heading="## Compact", doc=doc)
    write_section("one", "z", heading="## Compact", doc=doc)
    text = doc.read_text(encoding="utf-8")
    assert text.count("## Compact") == 1
    assert text.index("## Compact") < text.index("<!-- one:start -->\nz\n<!-- one:end -->") < text.index("y")


@pytest.mark.parametrize("half", ["<!-- beta:start -->\nold\n", "old\n<!-- beta:end -->\n",
                                  "<!-- beta:end -->\nold\n<!-- beta:start -->\n"])
def test_a_half_marked_section_is_refused_and_the_file_left_alone(tmp_path: Path, half: str) -> None:
    """Bad input: only one marker, or the end before the start (a hand edit gone wrong)."""
    doc = tmp_path / "b.md"
    doc.write_text("# Benchmarks\n\n" + half + "tail\n", encoding="utf-8")
    before = doc.read_bytes()
    with pytest.raises(ValueError, match=r"section 'beta' is half-marked"):
        write_section("beta", "new", doc=doc)
    assert doc.read_bytes() == before


def test_no_script_appends_to_the_docs_and_every_section_it_names_is_marked_there() -> None:
    """Every script writes through ``write_section``: none opens docs/benchmarks.md to append, and each
    section name a script passes has both markers, once, in docs/benchmarks.md."""
    text = DOC.read_text(encoding="utf-8")
    for script in sorted(BENCH.glob("*.py")):
        source = script.read_text(encoding="utf-8")
        assert not re.search(r"open\([^)]*benchmarks\.md[^)]*\"a\"", source), script.name
        assert not re.search(r"open\(args\.append", source), script.name
        for name in re.findall(r"write_section\(\s*\"([a-z0-9_]+)\"", source):
            start, end = markers(name)
            assert text.count(start) == 1 and text.count(end) == 1, f"{script.name}: section {name!r}"
