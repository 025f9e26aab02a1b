"""Helpers for tests and offline use: a deterministic fake embedder and tiny random Qwen3 models."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from .embedder import Embedder


class FakeEmbedder(Embedder):
    """A deterministic embedder with no model and no network, for tests and examples.

    Each text maps to a fixed unit vector built from hashed character trigrams and words, so
    texts sharing words score higher than unrelated ones. Same text, same vector, in every process.

    >>> emb = FakeEmbedder(dimensions=64)
    >>> emb.embed_documents(["hello world"]).shape
    (1, 64)
    """

    engine = "fake"

    def __init__(
        self,
        model: str = "fake-embedding",
        *,
        dimensions: int | None = 64,
        query_instruction: str | None = None,
        batch_size: int = 64,
        max_concurrency: int = 1,
        native_dim: int | None = None,
    ) -> None:
        dims = 64 if dimensions is None else dimensions
        super().__init__(
            model,
            dimensions=dims,
            query_instruction=query_instruction,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            native_dim=native_dim if native_dim is not None else dims,
        )
        self.calls: list[list[str]] = []  # every raw batch, for tests that check what was embedded

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        width = self._native_dim or self.dimensions or 64
        return np.stack([_hash_vector(t, width) for t in texts])

    def to_config(self) -> dict[str, Any]:
        return {
            "engine": "fake",
            "model": self.model,
            "dimensions": self.dimensions,
            "query_instruction": self._explicit_instruction,
        }


_TABLES: dict[int, np.ndarray] = {}


def _table(width: int) -> np.ndarray:
    # One fixed random row per feature bucket: dense vectors whose every prefix is non-zero, so
    # MRL truncation behaves as with a real model.
    if width not in _TABLES:
        _TABLES[width] = np.random.default_rng(20250605).standard_normal((4096, width)).astype(np.float32)
    return _TABLES[width]


def _hash_vector(text: str, width: int) -> np.ndarray:
    low = text.lower()
    feats = re.findall(r"\w+", low) * 2 + [low[i : i + 3] for i in range(max(1, len(low) - 2))]
    rows = [
        int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=4).digest(), "little") % 4096
        for f in feats
    ]
    vec = _table(width)[rows].sum(axis=0)
    return (vec / np.linalg.norm(vec)).astype(np.float32)
