"""Where a benchmark script writes its table: its own marked section of docs/benchmarks.md.

A script's output sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; each run replaces what is
between them, in place, and a section that does not exist yet is added at the end of the file. Running
``make bench`` twice therefore leaves one section per script, not two (scripts used to append). Prose written
by hand around a section (after its end marker) is kept.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "benchmarks.md"


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of section ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(name: str, body: str, *, heading: str | None = None, doc: Path = DOC) -> Path:
    """Put ``body`` between section ``name``'s markers in ``doc``, replacing what was there.

    A section not in ``doc`` yet is added at its end, after ``heading`` when one is given and not already in
    the file. Raises ``ValueError`` naming the section and both markers when only one of the two is there, or they are out of
    order: a half-marked section is a hand edit gone wrong, and writing would lose the text after it.
    """
    start, end = markers(name)
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.strip(chr(10))}\n{end}"
    has_start, has_end = start in text, end in text
    if has_start and has_end and text.index(start) < text.index(end):
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    elif has_start or has_end:
        raise ValueError(f"{doc}: section {name!r} is half-marked (needs {start} and then {end}); fix it by hand")
    else:
        lead = "" if heading is None or heading in text else f"{heading}\n\n"
        text = text.rstrip("\n") + "\n\n" + lead + block + "\n"
    doc.write_text(text, encoding="utf-8")
    return doc


__all__ = ["DOC", "markers", "write_section"]
