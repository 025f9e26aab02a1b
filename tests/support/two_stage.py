"""Shared checks for two-stage retrieval (vector candidates, then a reranker) on any VectorStore."""

from __future__ import annotations

from typing import Any

import numpy as np

from qwen_embed_adapters.adapters.base import Hit, VectorStore
from qwen_embed_adapters.rerank import Reranker

CORPUS = [f"note {i}: {topic}" for i, topic in enumerate([
    "Beijing is the capital of China", "Paris is the capital of France", "the capital city of Japan is Tokyo",
    "gravity pulls bodies together", "vector databases store embeddings", "Milvus and FAISS index vectors",
    "机器学习是人工智能的一个分支", "the quick brown fox jumps over the lazy dog", "Qwen3 reranker scores pairs",
    "capital letters start sentences", "China has a long history", "the capital of a company is its money",
    "rivers flow into the sea", "Chroma is an embedding database", "rerank the candidates after retrieval",
    "Shanghai is the largest city of China", "yes or no questions", "a document about capital cities",
    "the weather is sunny today", "今天天气真好", "embedding models turn text into vectors",
    "Berlin is the capital of Germany", "the capital of China has many museums", "cats sleep a lot",
])]
QUERY = "What is the capital of China?"


class SpyReranker(Reranker):
    """Wraps a reranker and records every document list it is asked to score."""

    def __init__(self, inner: Reranker) -> None:
        super().__init__(inner.model)
        self.inner = inner
        self.seen: list[list[str]] = []

    def _score(self, query: str, documents: list[str], instruction: str) -> np.ndarray:
        self.seen.append(list(documents))
        return self.inner.score(query, documents, instruction)


def expected_two_stage(store: VectorStore, reranker: Reranker, query: str, top_k: int, candidates: int,
                       **search_kw: Any) -> tuple[list[Hit], list[Hit]]:
    """The plain vector candidates and what two-stage search must return, computed independently."""
    vector_hits = store.search(query, top_k=candidates, **search_kw)
    scores = reranker.score(query, [h.text or "" for h in vector_hits])
    order = sorted(range(len(vector_hits)), key=lambda i: (-float(scores[i]), i))[:top_k]
    want = [Hit(id=vector_hits[i].id, score=float(scores[i]), text=vector_hits[i].text,
                metadata=vector_hits[i].metadata, vector_score=vector_hits[i].score,
                rerank_score=float(scores[i])) for i in order]
    return vector_hits, want


def check_two_stage(got: list[Hit], want: list[Hit]) -> None:
    """Same ids in the same order, both scores kept, final score = reranker's."""
    assert [h.id for h in got] == [h.id for h in want]
    assert [h.text for h in got] == [h.text for h in want]
    np.testing.assert_allclose([h.rerank_score for h in got], [h.rerank_score for h in want], atol=1e-5)
    np.testing.assert_allclose([h.score for h in got], [h.rerank_score for h in want], atol=1e-5)
    np.testing.assert_allclose([h.vector_score for h in got], [h.vector_score for h in want], atol=1e-5)
    scores = [h.score for h in got]
    assert scores == sorted(scores, reverse=True)
