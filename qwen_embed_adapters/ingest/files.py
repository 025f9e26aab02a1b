"""Files to records for ``qwen-embed ingest``: .txt/.md chunked by paragraphs, .jsonl one record a line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .chunking import chunk_text, estimate_tokens
from .records import RECORD_KEYS

INGEST_SUFFIXES = (".txt", ".md", ".markdown", ".jsonl")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to ingest: each path itself, or the .txt/.md/.jsonl files under a directory (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in INGEST_SUFFIXES))
        elif p.is_file():
            out.append(p)
        else:
            raise InvalidInputError(f"no such file or directory: {str(p)!r}")
    return out


def iter_file_records(paths: Iterable[str | Path], *, max_tokens: int = 512) -> Iterator[dict[str, Any]]:
    """Records from .txt/.md (paragraph chunks) and .jsonl files (one ``{"text", "id"?, "metadata"?}``
    object or JSON string per line; other keys go into metadata). Lazy: one file at a time.

    Metadata carries ``source`` (the path) and ``chunk`` (the chunk's number in its file or record).
    A JSONL record longer than ``max_tokens`` is chunked too; its given id gets a ``#k`` suffix.
    """
    for path in expand_paths(paths):
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            yield from _jsonl_records(path, max_tokens)
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for k, chunk in enumerate(chunk_text(text, max_tokens)):
            yield {"text": chunk, "metadata": {"source": str(path), "chunk": k}}


def json_lines(lines: Iterable[str], name: object) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank JSON line; a bad line raises naming ``name:lineno``."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InvalidInputError(f"{name}:{lineno}: not JSON ({exc})") from None
        yield lineno, obj


def _jsonl_records(path: Path, max_tokens: int) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, obj in json_lines(fh, path):
            if isinstance(obj, str):
                obj = {"text": obj}
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"]:
                raise InvalidInputError(f"{path}:{lineno}: expected an object with a non-empty 'text' string")
            if not isinstance(obj.get("metadata") or {}, dict):
                raise InvalidInputError(
                    f"{path}:{lineno}: 'metadata' must be an object, got {type(obj['metadata']).__name__}"
                )
            meta = dict(obj.get("metadata") or {})
            meta.update({k: v for k, v in obj.items() if k not in RECORD_KEYS})
            meta.setdefault("source", str(path))
            chunks = chunk_text(obj["text"], max_tokens) if estimate_tokens(obj["text"]) > max_tokens else [obj["text"]]
            for k, chunk in enumerate(chunks):
                rec: dict[str, Any] = {"text": chunk, "metadata": {**meta, "chunk": k}}
                if obj.get("id") is not None:
                    rec["id"] = str(obj["id"]) if len(chunks) == 1 else f"{obj['id']}#{k}"
                yield rec


__all__ = ["INGEST_SUFFIXES", "expand_paths", "iter_file_records", "json_lines"]
