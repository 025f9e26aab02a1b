"""An Embedder that records the exact strings each engine call receives, over a real embedder."""

from __future__ import annotations

from typing import Any

import numpy as np

from qwen_embed_adapters.embedder import Embedder


class RecordingEmbedder(Embedder):
    """Delegates the raw batch to ``inner.embed_texts`` (no second wrapping) and records it.

    ``calls`` holds each raw batch as sent to the engine, so tests can assert that the Qwen3
    instruction reached the engine for queries and only for queries.
    """

    engine = "recording"

    def __init__(self, inner: Embedder, *, query_instruction: str | None = None) -> None:
        super().__init__(inner.model, dimensions=None, query_instruction=query_instruction,
                         batch_size=1000, max_concurrency=1, native_dim=inner.dimension)
        self.inner = inner
        self.calls: list[list[str]] = []

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.embed_texts(texts)

    @property
    def sent(self) -> list[str]:
        """Every text sent to the engine, in order."""
        return [t for batch in self.calls for t in batch]

    def to_config(self) -> dict[str, Any]:
        return self.inner.to_config()
