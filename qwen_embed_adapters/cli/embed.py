"""``qwen-embed embed``: texts (one per line, or JSONL with "text") from a file or stdin into .npy or JSONL."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import ConfigurationError, InvalidInputError
from .options import build_embedder
from .output import close_quietly

Item = tuple[str | None, str]


def _read_lines(src: TextIO) -> Iterator[Item]:
    for line in src:
        text = line.rstrip("\r\n")
        if text.strip():
            yield None, text


def _read_jsonl(src: TextIO, name: str) -> Iterator[Item]:
    from ..ingest import json_lines

    for lineno, obj in json_lines(src, name):
        if isinstance(obj, str):
            yield None, obj
        elif isinstance(obj, dict) and isinstance(obj.get("text"), str):
            rid = obj.get("id")
            yield (None if rid is None else str(rid)), obj["text"]
        else:
            raise InvalidInputError(f"{name}:{lineno}: expected a JSON string or an object with 'text'")


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


Embed = Callable[[list[str]], np.ndarray]


def _write_npy(items: Iterator[Item], embed: Embed, out_path: Path, dimension: Callable[[], int]) -> int:
    parts = [embed([t for _, t in chunk]) for chunk in _chunks(items, 1024)]
    matrix = np.concatenate(parts) if parts else np.empty((0, dimension()), np.float32)
    np.save(out_path, matrix.astype(np.float32, copy=False))
    return int(matrix.shape[0])


def _write_jsonl(items: Iterator[Item], embed: Embed, out_path: Path | None) -> int:
    n = 0
    sink: TextIO = sys.stdout if out_path is None else open(out_path, "w", encoding="utf-8")
    try:
        for chunk in _chunks(items, 1024):
            vectors = embed([t for _, t in chunk])
            for (rid, _), vec in zip(chunk, vectors, strict=True):
                row: dict[str, Any] = {"index": n}
                if rid is not None:
                    row["id"] = rid
                row["embedding"] = [round(float(x), 7) for x in vec]
                sink.write(json.dumps(row) + "\n")
                n += 1
    finally:
        if sink is not sys.stdout:
            sink.close()
        else:
            sink.flush()
    return n


def run(args: argparse.Namespace) -> int:
    """Embed texts (one per line, or JSONL with "text") from a file or stdin into .npy or JSONL."""
    out_path: Path | None = Path(args.output) if args.output and args.output != "-" else None
    fmt = args.format or ("npy" if out_path is not None and out_path.suffix == ".npy" else "jsonl")
    if fmt == "npy" and out_path is None:
        raise ConfigurationError("--format npy writes a binary file: pass -o FILE.npy")
    src_name = args.input or "-"
    src: TextIO = sys.stdin if src_name == "-" else open(src_name, encoding="utf-8")
    jsonl_in = args.jsonl or src_name.endswith(".jsonl")
    embedder = build_embedder(args)
    try:
        items = _read_jsonl(src, src_name) if jsonl_in else _read_lines(src)
        embed: Embed = (
            (lambda t: embedder.embed_queries(t, args.instruction)) if args.query else embedder.embed_documents
        )
        if fmt == "npy":
            assert out_path is not None
            n = _write_npy(items, embed, out_path, lambda: embedder.dimension)
        else:
            n = _write_jsonl(items, embed, out_path)
        if out_path is not None:
            print(f"wrote {n} embeddings ({embedder.dimension_if_known}-d, float32) to {out_path}", file=sys.stderr)
        return 0
    finally:
        if src is not sys.stdin:
            src.close()
        close_quietly(embedder)


__all__ = [
    "Embed",
    "Item",
    "run",
]
