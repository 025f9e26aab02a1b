"""The bundled sample corpus that ``demo``, ``bench`` and ``doctor`` read."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_corpus() -> list[dict[str, Any]]:
    """The bundled sample corpus: 300 ``{"id", "text", "metadata"}`` records (Chinese, English, code)."""
    data = resources.files("qwen_embed_adapters").joinpath("data/sample_corpus.jsonl")
    return [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]


def cycled_texts(n: int, fmt: str = "{text} [{i}]") -> list[str]:
    """``n`` distinct texts made by cycling the corpus and tagging each with its position."""
    corpus = [r["text"] for r in load_corpus()]
    return [fmt.format(text=corpus[i % len(corpus)], i=i) for i in range(n)]


__all__ = [
    "cycled_texts",
    "load_corpus",
]
