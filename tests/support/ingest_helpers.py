"""Helpers for the ingestion and CLI tests: an in-memory VectorStore with failure injection."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from qwen_embed_adapters.adapters.base import Hit, VectorStore
from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.errors import DimensionMismatchError


class MemoryStore(VectorStore):
    """A dict-backed store. ``_write`` upserts; every id it is asked to write again is recorded in
    ``rewrites`` so tests can prove nothing was sent twice.

    ``fail_on``: a predicate on a batch's ids; while it returns True the write raises ConnectionError.
    ``land_then_fail``: this many writes store their first half and then raise (a write that landed partly).
    """

    write_batch_size = 100

    def __init__(self, embedder: Embedder, *, dim: int | None = None, lookup: bool = True) -> None:
        super().__init__(embedder)
        self.dim = dim
        self.lookup = lookup
        self.records: dict[str, tuple[np.ndarray, str, dict[str, Any]]] = {}
        self.writes: list[list[str]] = []
        self.rewrites: list[str] = []
        self.lookups = 0
        self.fail_on: Callable[[list[str]], bool] | None = None
        self.land_then_fail = 0
        self.before_write: Callable[[list[str]], None] | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "memory"

    def ensure_dimension(self) -> int:
        if self.dim is None:
            self.dim = self.embedder.dimension
        elif self.dim != self.embedder.dimension:
            raise DimensionMismatchError(self.dim, self.embedder.dimension, self.name)
        return self.dim

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        self.lookups += 1
        if not self.lookup:
            return set()
        return {i for i in ids if i in self.records}

    def _write(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        if self.before_write is not None:
            self.before_write(ids)
        assert vectors.dtype == np.float32 and vectors.shape == (len(ids), self.dim)
        if self.fail_on is not None and self.fail_on(ids):
            raise ConnectionError("store unavailable")
        n = len(ids)
        if self.land_then_fail > 0:
            self.land_then_fail -= 1
            n = len(ids) // 2
        with self._lock:
            self.writes.append(list(ids[:n]))
            for i in range(n):
                if ids[i] in self.records:
                    self.rewrites.append(ids[i])
                self.records[ids[i]] = (vectors[i].copy(), texts[i], dict(metadatas[i]))
        if n < len(ids):
            raise ConnectionError("connection reset after a partial write")

    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        ids = list(self.records)
        if not ids:
            return []
        mat = np.stack([self.records[i][0] for i in ids])
        scores = mat @ vector
        order = np.argsort(-scores)[:top_k]
        return [Hit(ids[j], float(scores[j]), self.records[ids[j]][1], self.records[ids[j]][2]) for j in order]

    def count(self) -> int:
        return len(self.records)

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.records.pop(i, None)
