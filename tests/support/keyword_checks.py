"""Keyword-search checks run on every store whose keyword side is the engine's own (Milvus, Qdrant, pgvector,
Pinecone): Chinese words found inside sentences, identifiers and error codes, filters, deletes, upserts, the
async twin and hybrid fusion. A test class subclasses ``NativeKeywordChecks`` and provides ``open_store`` (a
callable opening a fresh, empty collection for an embedder), as ``StoreContract`` does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from qwen_embed_adapters.adapters.base import VectorStore
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import OpenStore

#: (id, text, metadata): Chinese prose, code and English, each findable by words no other one holds
DOCS = [
    ("zh-db", "向量数据库的混合检索很有用", {"lang": "zh", "kind": "prose"}),
    ("zh-park", "今天天气真好，我们去公园散步", {"lang": "zh", "kind": "prose"}),
    ("zh-ml", "机器学习是人工智能的一个分支", {"lang": "zh", "kind": "prose"}),
    ("code-err", "raise ValueError('invalid literal for int() with base 10')", {"lang": "en", "kind": "code"}),
    ("code-args", "def parse_args(argv): return argparse.ArgumentParser().parse_args(argv)", {"lang": "en", "kind": "code"}),
    ("en-fox", "the quick brown fox jumps over the lazy dog", {"lang": "en", "kind": "prose"}),
]


class NativeKeywordChecks:
    """Subclass and provide the ``open_store`` fixture."""

    dim = 32

    @pytest.fixture
    def open_store(self) -> OpenStore:
        raise NotImplementedError("a NativeKeywordChecks subclass provides the open_store fixture")

    @pytest.fixture
    def kstore(self, open_store: OpenStore) -> Iterator[VectorStore]:
        store = open_store(FakeEmbedder(dimensions=self.dim))
        try:
            store.add_texts([t for _, t, _ in DOCS], ids=[i for i, _, _ in DOCS], metadatas=[m for _, _, m in DOCS])
            yield store
        finally:
            store.close()

    @staticmethod
    def ids(store: VectorStore, query: str, top_k: int = 6, **kw: Any) -> list[str]:
        return [h.id for h in store.search(query, top_k=top_k, mode="keyword", **kw)]

    def test_chinese_words_are_found_inside_sentences(self, kstore: VectorStore) -> None:
        # Each query is one word of a longer sentence: a store that kept sentences whole would find nothing.
        assert self.ids(kstore, "数据库") == ["zh-db"]
        assert self.ids(kstore, "人工智能") == ["zh-ml"]
        assert self.ids(kstore, "公园") == ["zh-park"]
        assert self.ids(kstore, "天气 公园") == ["zh-park"]

    def test_identifiers_and_error_codes(self, kstore: VectorStore) -> None:
        assert self.ids(kstore, "ValueError")[0] == "code-err"
        assert self.ids(kstore, "argparse")[0] == "code-args"
        assert self.ids(kstore, "lazy fox")[0] == "en-fox"

    def test_keyword_hits_carry_text_metadata_and_the_keyword_score(self, kstore: VectorStore) -> None:
        hits = kstore.search("数据库", top_k=3, mode="keyword")
        assert [h.id for h in hits] == ["zh-db"]
        assert hits[0].text == DOCS[0][1] and hits[0].metadata == DOCS[0][2]
        assert hits[0].score > 0 and hits[0].keyword_score == hits[0].score and hits[0].vector_score is None

    def test_a_filter_applies_in_keyword_mode(self, kstore: VectorStore) -> None:
        assert self.ids(kstore, "数据库 ValueError", filter={"lang": "en"}) == ["code-err"]
        assert self.ids(kstore, "数据库 ValueError", filter={"lang": "zh"}) == ["zh-db"]
        assert self.ids(kstore, "数据库", filter={"kind": "code"}) == []

    def test_top_k_limits_keyword_hits(self, kstore: VectorStore) -> None:
        assert len(self.ids(kstore, "数据库 ValueError argparse 公园", top_k=2)) == 2

    def test_delete_removes_the_keyword_side(self, kstore: VectorStore) -> None:
        kstore.delete(["zh-db"])
        assert self.ids(kstore, "数据库") == []
        assert self.ids(kstore, "人工智能") == ["zh-ml"]

    def test_an_upsert_replaces_the_terms(self, kstore: VectorStore) -> None:
        kstore.add_texts(["混合检索需要倒排索引"], ids=["zh-db"], metadatas=[{"lang": "zh", "kind": "prose"}])
        assert self.ids(kstore, "数据库") == []
        assert self.ids(kstore, "倒排索引") == ["zh-db"]

    def test_a_query_without_keyword_terms_finds_nothing(self, kstore: VectorStore) -> None:
        # Bad input tried: a query of punctuation and stop words only (no term to match).
        assert self.ids(kstore, "the, of ... ?") == []
        assert self.ids(kstore, "nosuchwordanywhere") == []

    def test_async_keyword_search_matches_sync(self, kstore: VectorStore) -> None:
        want = kstore.search("数据库 ValueError", top_k=3, mode="keyword")
        got = asyncio.run(kstore.asearch("数据库 ValueError", top_k=3, mode="keyword"))
        assert [(h.id, round(h.score, 4)) for h in got] == [(h.id, round(h.score, 4)) for h in want]

    def test_hybrid_fuses_the_keyword_side(self, kstore: VectorStore) -> None:
        hits = kstore.search("数据库", top_k=6, mode="hybrid")
        by_id = {h.id: h for h in hits}
        assert by_id["zh-db"].keyword_score is not None and by_id["zh-db"].vector_score is not None
        assert all(h.keyword_score is None for h in hits if h.id != "zh-db")
        # found by both sides, it outranks every hit found by one (whatever its dense rank among six)
        assert hits[0].id == "zh-db"

    def test_keyword_search_before_any_write_finds_nothing(self, open_store: OpenStore) -> None:
        store = open_store(FakeEmbedder(dimensions=self.dim))
        try:
            assert store.search("数据库", mode="keyword") == []
        finally:
            store.close()


__all__ = ["DOCS", "NativeKeywordChecks"]
