"""The contract every VectorStore keeps, written once and run against each backend: a test suite anyone
writing a store can run, as ``langchain-tests`` does for LangChain's vector stores.

Modelled on LangChain's ``VectorStoreIntegrationTests`` (``langchain_tests.integration_tests``): a
backend's test module subclasses ``StoreContract`` and provides one fixture, ``open_store``, a
callable that opens (or re-opens) the same fresh collection for a given embedder::

    import pytest
    from qwen_embed_adapters.adapters.faiss import FaissStore
    from qwen_embed_adapters.testing.contract import StoreContract

    class TestFaissContract(StoreContract):
        @pytest.fixture
        def open_store(self, tmp_path):
            return lambda embedder: FaissStore(embedder, path=tmp_path / "kb")

Every test then runs on that backend: ids in input order, content-hash dedupe, the dimension guard
before any write, WriteError ids, delete of missing ids, ``existing_ids``, lone surrogates refused
with nothing written, metadata filters, sync/async parity, two-stage reranking, and keyword/hybrid search
(``search(mode="keyword" | "hybrid")``) on a store whose ``keyword_support`` is not "none" — exact terms,
Chinese words, filters, fusion, writes and deletes reaching the keyword side — or, on one that is, a clear
refusal. A backend with a
different notion of "the same collection" overrides ``reopen`` (FAISS saves first); a backend whose
``existing_ids`` cannot look ids up sets ``looks_up_ids = False``.

Compact vectors (``precision="int8" | "binary"``): a backend whose ``open_store`` also takes settings
keywords (``open_store(embedder, precision="int8")``) lists in ``compact_precisions`` the precisions it
keeps — searched, rescored to the float cosine, recorded and reopened — and in ``refused_precisions`` the
ones it must refuse with a ConfigurationError naming the store.

For another server tier (e.g. Milvus standalone) subclass the backend's class and override only
the fixture that gives its URI, as ``MilvusContract`` below does.

Needs pytest and pytest-asyncio (``pip install "qwen-embed-adapters[testing]"``); the two-stage tests
also need torch (they skip without it). Importing ``qwen_embed_adapters.testing`` does not import this
module, so the library never imports pytest.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from ..adapters.base import Hit, VectorStore, content_id
from ..embedder import Embedder
from ..errors import ConfigurationError, DimensionMismatchError, InvalidInputError, WriteError
from ..rerank import Reranker
from ..retrieval import Fusion
from . import FakeEmbedder, make_tiny_qwen3_reranker

OpenStore = Callable[[Embedder], VectorStore]

TEXTS = [
    "Beijing is the capital of China",
    "Paris is the capital of France",
    "机器学习是人工智能的一个分支",
    "vector databases store embeddings",
    "the quick brown fox jumps over the lazy dog",
]

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

#: the keyword tests' texts: identifiers, an error code, a flag and Chinese prose, each term in one text only
KEYWORD_TEXTS = [
    "call load_settings() to read the config file",
    "the server answered ERR_QUOTA_EXCEEDED after 100 requests",
    "pass --dry-run to print the plan without writing",
    "机器学习是人工智能的一个分支",
    "向量数据库支持混合检索和关键词检索",
    "Paris is the capital of France",
]
KEYWORD_IDS = [f"k{i}" for i in range(len(KEYWORD_TEXTS))]


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
    def column(hits: list[Hit], name: str) -> np.ndarray:
        return np.array([getattr(h, name) for h in hits], dtype=np.float64)

    np.testing.assert_allclose(column(got, "rerank_score"), column(want, "rerank_score"), atol=1e-5)
    np.testing.assert_allclose(column(got, "score"), column(want, "rerank_score"), atol=1e-5)
    np.testing.assert_allclose(column(got, "vector_score"), column(want, "vector_score"), atol=1e-5)
    scores = [h.score for h in got]
    assert scores == sorted(scores, reverse=True)


_names = itertools.count()


def unique_name(prefix: str = "contract") -> str:
    """A collection/index name no other test of this process uses (3-45 chars of [a-z0-9-_])."""
    return f"{prefix}-{next(_names)}"


class StoreContract:
    """Subclass and provide the ``open_store`` fixture (see the module docstring)."""

    #: vector width of the suite's embedder; ``other_dim`` is the width that must be refused
    dim = 32
    other_dim = 16
    #: False for a store whose ``existing_ids`` answers "none known"
    looks_up_ids = True
    #: compact precisions this store keeps, and those it refuses (``open_store`` must take ``precision=``)
    compact_precisions: tuple[str, ...] = ()
    refused_precisions: tuple[str, ...] = ()

    # ---------------------------------------------------------------- fixtures
    @pytest.fixture
    def open_store(self) -> OpenStore:
        raise NotImplementedError("a StoreContract subclass provides the open_store fixture")

    @pytest.fixture
    def embedder(self) -> FakeEmbedder:
        return FakeEmbedder(dimensions=self.dim)

    @pytest.fixture
    def store(self, open_store: OpenStore, embedder: FakeEmbedder) -> Iterator[VectorStore]:
        s = open_store(embedder)
        try:
            yield s
        finally:
            s.close()

    @pytest.fixture(scope="class")
    def reranker(self, tmp_path_factory: pytest.TempPathFactory) -> Any:
        pytest.importorskip("torch")
        from ..rerank import LocalReranker

        folder = make_tiny_qwen3_reranker(tmp_path_factory.mktemp("contract_reranker") / "model", seed=0)
        return LocalReranker(folder, device="cpu")

    def reopen(self, store: VectorStore, embedder: Embedder, open_store: OpenStore) -> VectorStore:
        """The same collection opened again with ``embedder`` (default: ``open_store(embedder)``)."""
        return open_store(embedder)

    # ---------------------------------------------------------------- ids
    def test_ids_come_back_in_input_order(self, store: VectorStore) -> None:
        ids = store.add_texts(TEXTS[:3], ids=["c", "a", "b"])
        assert ids == ["c", "a", "b"]
        # Default ids: one content hash per input, in input order, a repeated text repeating its id.
        given = [TEXTS[3], TEXTS[4], TEXTS[3]]
        assert store.add_texts(given) == [content_id(t) for t in given]
        assert store.count() == 5

    def test_content_hash_ids_make_a_rerun_a_no_op(self, store: VectorStore) -> None:
        first = store.add_texts(TEXTS, metadatas=[{"n": i} for i in range(len(TEXTS))])
        assert store.count() == len(TEXTS)
        assert store.add_texts(TEXTS) == first
        assert store.count() == len(TEXTS)

    def test_search_returns_the_stored_text_metadata_and_cosine(self, store: VectorStore, embedder: Embedder) -> None:
        store.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))], metadatas=[{"lang": "zh" if i == 2 else "en", "n": i} for i in range(len(TEXTS))])
        # No instruction: the query vector is the document's own, so it scores 1 and comes first.
        hits = store.search(TEXTS[2], top_k=3, instruction="")
        assert [h.id for h in hits][0] == "t2"
        assert hits[0].text == TEXTS[2]
        assert hits[0].metadata == {"lang": "zh", "n": 2}
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        # The scores are cosine similarities of the embedder's own vectors, best first.
        q = embedder.embed_query(TEXTS[0])
        docs = embedder.embed_documents(TEXTS)
        want = sorted(((float(docs[i] @ q), f"t{i}") for i in range(len(TEXTS))), reverse=True)[:3]
        got = store.search(TEXTS[0], top_k=3)
        assert [h.id for h in got] == [w[1] for w in want]
        np.testing.assert_allclose([h.score for h in got], [w[0] for w in want], atol=1e-4)

    def test_equality_filter_on_metadata(self, store: VectorStore) -> None:
        store.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))], metadatas=[{"even": i % 2 == 0} for i in range(len(TEXTS))])
        hits = store.search("capital", top_k=5, filter={"even": False})
        assert sorted(h.id for h in hits) == ["t1", "t3"]

    # ---------------------------------------------------------------- dimension guard
    def test_another_dimension_is_refused_before_any_write(
        self, store: VectorStore, open_store: OpenStore
    ) -> None:
        store.add_texts(TEXTS[:3])
        with pytest.raises(DimensionMismatchError) as info:
            other = self.reopen(store, FakeEmbedder(dimensions=self.other_dim), open_store)
            try:
                other.add_texts(["a text of another width"])
            finally:
                other.close()
        assert (info.value.expected, info.value.actual) == (self.dim, self.other_dim)
        assert str(self.dim) in str(info.value) and str(self.other_dim) in str(info.value)
        assert store.count() == 3

    # ---------------------------------------------------------------- failures
    def test_a_failed_write_names_the_ids_written_and_not(self, store: VectorStore) -> None:
        store.write_batch_size = 2
        real, calls = store._write, []

        def flaky(ids: list[str], *args: Any) -> None:
            calls.append(list(ids))
            if len(calls) == 2:
                raise ConnectionError("database went away")
            real(ids, *args)

        store._write = flaky  # type: ignore[method-assign,assignment]
        ids = [f"w{i}" for i in range(5)]
        with pytest.raises(WriteError) as info:
            store.add_texts(TEXTS, ids=ids)
        assert info.value.written_ids == ["w0", "w1"]
        assert info.value.failed_ids == ["w2", "w3", "w4"]
        assert isinstance(info.value.__cause__, ConnectionError)
        assert store.count() == 2
        store._write = real  # type: ignore[method-assign]
        assert store.add_texts(TEXTS, ids=ids) == ids
        assert store.count() == 5

    @pytest.mark.asyncio
    async def test_a_failed_async_write_names_the_ids_written_and_not(self, store: VectorStore) -> None:
        store.write_batch_size = 2
        real, calls = store._awrite, []

        async def flaky(ids: list[str], *args: Any) -> None:
            calls.append(list(ids))
            if len(calls) == 3:
                raise ConnectionError("database went away")
            await real(ids, *args)

        store._awrite = flaky  # type: ignore[method-assign,assignment]
        ids = [f"w{i}" for i in range(5)]
        with pytest.raises(WriteError) as info:
            await store.aadd_texts(TEXTS, ids=ids)
        assert info.value.written_ids == ["w0", "w1", "w2", "w3"]
        assert info.value.failed_ids == ["w4"]
        assert await store.acount() == 4

    @pytest.mark.parametrize(
        ("case", "kwargs", "match", "index", "item_id"),
        [
            ("None text", {"texts": ["ok", None]}, r"texts\[1\] is None", 1, None),
            ("empty text", {"texts": ["ok", ""]}, r"texts\[1\] is an empty string", 1, None),
            ("non-str text", {"texts": ["ok", 3]}, r"texts\[1\] is int, not str", 1, None),
            ("NaN in metadata", {"texts": ["ok", "fine"], "ids": ["a", "b"], "metadatas": [{"v": float("nan")}, {}]}, r"metadatas\[0\] \(id 'a'\) is not JSON-serialisable", 0, "a"),
            ("lone surrogate in a text", {"texts": ["ok", "\ud800 x"]}, r"texts\[1\] holds a lone surrogate", 1, None),
            ("lone surrogate in an id", {"texts": ["ok", "fine"], "ids": ["a", "b\udfff"]}, r"ids\[1\] holds a lone surrogate", 1, None),
            ("lone surrogate in a metadata value", {"texts": ["ok", "fine"], "ids": ["a", "b"], "metadatas": [{}, {"k": "v\ud800"}]}, r"metadatas\[1\]\['k'\] \(id 'b'\) holds a lone surrogate", 1, "b"),
            ("lone surrogate in a metadata key", {"texts": ["ok", "fine"], "ids": ["a", "b"], "metadatas": [{"k\ud800": 1}, {}]}, r"metadatas\[0\], key 'k\\ud800' \(id 'a'\) holds a lone surrogate", 0, "a"),
            ("repeated explicit id", {"texts": ["ok", "fine"], "ids": ["a", "a"]}, r"ids\[1\] 'a' repeats ids\[0\]", 1, "a"),
            ("metadata not a dict", {"texts": ["ok", "fine"], "ids": ["a", "b"], "metadatas": [{}, ["x"]]}, r"metadatas\[1\] \(id 'b'\) must be a dict", 1, "b"),
        ],
    )
    def test_bad_input_is_named_and_nothing_is_written(
        self, store: VectorStore, case: str, kwargs: dict[str, Any], match: str, index: int, item_id: str | None
    ) -> None:
        """Bad input tried: ``case`` (the second record, or the first for the metadata key)."""
        store.add_texts(["already here"])
        with pytest.raises(InvalidInputError, match=match) as info:
            store.add_texts(**kwargs)
        assert info.value.index == index
        assert info.value.item_id == item_id
        assert store.count() == 1

    @pytest.mark.asyncio
    async def test_bad_input_is_refused_by_the_async_path_too(self, store: VectorStore) -> None:
        """Bad input tried: a lone surrogate in the second text."""
        with pytest.raises(InvalidInputError, match=r"texts\[1\] holds a lone surrogate") as info:
            await store.aadd_texts(["ok", "\ud800 x"])
        assert info.value.index == 1
        assert await store.acount() == 0

    def test_a_lone_surrogate_in_a_query_is_refused(self, store: VectorStore) -> None:
        """Bad input tried: the query "\\ud800"."""
        store.add_texts(TEXTS[:2])
        with pytest.raises(InvalidInputError, match="query holds a lone surrogate '.ud800' at character 0"):
            store.search("\ud800")

    @pytest.mark.asyncio
    async def test_a_lone_surrogate_in_an_async_query_is_refused(self, store: VectorStore) -> None:
        """Bad input tried: the query "x \\udc00"."""
        await store.aadd_texts(TEXTS[:2])
        with pytest.raises(InvalidInputError, match="query holds a lone surrogate '.udc00' at character 2"):
            await store.asearch("x \udc00")

    def test_bad_search_arguments(self, store: VectorStore) -> None:
        """Bad input tried: an empty query, a None query, top_k 0 and top_k True."""
        store.add_texts(TEXTS[:2])
        for query, top_k, match in (("", 3, "query must be a non-empty str"), (None, 3, "query must be a non-empty str"),
                                    ("q", 0, "top_k must be a positive int"), ("q", True, "top_k must be a positive int")):
            with pytest.raises(InvalidInputError, match=match):
                store.search(query, top_k=top_k)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- delete and lookup
    def test_delete_ignores_missing_ids(self, store: VectorStore) -> None:
        store.add_texts(TEXTS[:3], ids=["a", "b", "c"])
        store.delete(["never-stored"])
        assert store.count() == 3
        store.delete(["b", "never-stored"])
        assert store.count() == 2
        assert "b" not in {h.id for h in store.search("capital", top_k=5)}
        store.delete([])
        assert store.count() == 2
        with pytest.raises(InvalidInputError, match="got a single str"):
            store.delete("a")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match=r"ids\[1\] must be a non-empty str"):
            store.delete(["a", ""])
        assert store.count() == 2

    def test_existing_ids(self, store: VectorStore) -> None:
        if not self.looks_up_ids:
            pytest.skip("this store's existing_ids answers 'none known'")
        store.add_texts(TEXTS[:2], ids=["a", "b"])
        assert store.existing_ids(["x", "a", "b", "y"]) == {"a", "b"}
        assert store.existing_ids([]) == set()

    # ---------------------------------------------------------------- sync / async
    @pytest.mark.asyncio
    async def test_async_twins_match_the_sync_api(self, store: VectorStore) -> None:
        ids = await store.aadd_texts(TEXTS, metadatas=[{"n": i} for i in range(len(TEXTS))])
        assert ids == [content_id(t) for t in TEXTS]
        assert await store.acount() == len(TEXTS) == store.count()
        sync = store.search("capital of China", top_k=3)
        got = await store.asearch("capital of China", top_k=3)
        assert [h.id for h in got] == [h.id for h in sync]
        assert [h.metadata for h in got] == [h.metadata for h in sync]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in sync], atol=1e-5)
        assert await store.aadd_texts(TEXTS) == ids  # a re-run stores nothing new
        assert await store.acount() == len(TEXTS)
        await store.adelete([ids[0], "never-stored"])
        assert await store.acount() == len(TEXTS) - 1
        assert await store.aensure_dimension() == self.dim

    @pytest.mark.asyncio
    async def test_async_context_manager_closes(self, open_store: OpenStore, embedder: Embedder) -> None:
        async with open_store(embedder) as s:
            await s.aadd_texts(TEXTS[:2])
            assert await s.acount() == 2

    def test_context_manager_closes(self, open_store: OpenStore, embedder: Embedder) -> None:
        with open_store(embedder) as s:
            s.add_texts(TEXTS[:2])
            assert s.count() == 2

    # ---------------------------------------------------------------- compact vectors
    @pytest.mark.parametrize("precision", ["int8", "binary"])
    def test_compact_precision_rescores_to_the_float_cosine(
        self, open_store: OpenStore, embedder: Embedder, precision: str
    ) -> None:
        if precision not in self.compact_precisions:
            pytest.skip(f"this store does not keep precision={precision!r}")
        ids = [f"c{i}" for i in range(len(CORPUS))]
        with open_store(embedder, precision=precision, rescore=8) as store:  # type: ignore[call-arg]
            assert store.precision == precision
            store.add_texts(CORPUS, ids=ids)
            # rescore 8 x top_k 3 = 24 candidates: the whole corpus, so the rescored answer is the exact one.
            q = embedder.embed_query(QUERY)
            docs = embedder.embed_documents(CORPUS)
            want = sorted(((float(docs[i] @ q), ids[i]) for i in range(len(CORPUS))), reverse=True)[:3]
            got = store.search(QUERY, top_k=3)
            assert [h.id for h in got] == [w[1] for w in want]
            np.testing.assert_allclose([h.score for h in got], [w[0] for w in want], atol=2e-3)
            # A document's own vector finds it first, scored by its float cosine (1), not a compact distance.
            own = store.search(CORPUS[6], top_k=1, instruction="")
            assert own[0].id == "c6" and own[0].score == pytest.approx(1.0, abs=2e-3)
            store.delete(["c6"])
            assert "c6" not in {h.id for h in store.search(CORPUS[6], top_k=5, instruction="")}

    @pytest.mark.parametrize("precision", ["int8", "binary"])
    def test_precision_is_recorded_and_a_conflicting_reopen_is_refused(
        self, open_store: OpenStore, embedder: Embedder, precision: str
    ) -> None:
        if precision not in self.compact_precisions:
            pytest.skip(f"this store does not keep precision={precision!r}")
        store = open_store(embedder, precision=precision)  # type: ignore[call-arg]
        store.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
        again = self.reopen(store, embedder, open_store)  # no precision asked: the recorded one is used
        try:
            again.ensure_dimension()
            assert again.precision == precision
            assert again.search(TEXTS[1], top_k=1, instruction="")[0].id == "t1"
        finally:
            again.close()
        other = "float32"
        with pytest.raises(ConfigurationError) as info:
            conflicting = open_store(embedder, precision=other)  # type: ignore[call-arg]
            try:
                conflicting.add_texts(["written at another precision"])
            finally:
                conflicting.close()
        assert f"precision={precision!r}" in str(info.value) and f"precision={other!r}" in str(info.value)
        store.close()

    @pytest.mark.parametrize("precision", ["int8", "binary"])
    def test_an_unsupported_precision_is_refused_naming_the_store(
        self, open_store: OpenStore, embedder: Embedder, precision: str
    ) -> None:
        """Bad input tried: a precision the store cannot keep."""
        if precision not in self.refused_precisions:
            pytest.skip(f"this store keeps precision={precision!r}")
        with pytest.raises(ConfigurationError, match=rf"precision={precision!r}") as info:
            refused = open_store(embedder, precision=precision)  # type: ignore[call-arg]
            try:
                refused.add_texts(TEXTS[:1])
            finally:
                refused.close()
        assert "Store" in str(info.value)  # names the store class (FaissStore, ChromaStore, ...)

    # ---------------------------------------------------------------- two-stage retrieval
    def test_two_stage_rerank(self, store: VectorStore, reranker: Any) -> None:
        store.add_texts(CORPUS, metadatas=[{"even": i % 2 == 0} for i in range(len(CORPUS))])
        spy = SpyReranker(reranker)
        vector_hits, want = expected_two_stage(store, reranker, QUERY, top_k=5, candidates=12)
        assert len(vector_hits) == 12
        got = store.search(QUERY, top_k=5, rerank=spy, candidates=12)
        check_two_stage(got, want)
        assert spy.seen == [[h.text for h in vector_hits]]  # exactly the candidates, once
        assert [h.id for h in got] != [h.id for h in vector_hits[:5]]  # the reranker changed the order
        _, want_even = expected_two_stage(store, reranker, QUERY, top_k=3, candidates=8, filter={"even": True})
        got_even = store.search(QUERY, top_k=3, filter={"even": True}, rerank=reranker, candidates=8)
        check_two_stage(got_even, want_even)
        assert all(h.metadata.get("even") is True for h in got_even)

    @pytest.mark.asyncio
    async def test_async_two_stage_equals_sync(self, store: VectorStore, reranker: Any) -> None:
        await store.aadd_texts(CORPUS)
        want = store.search(QUERY, top_k=4, rerank=reranker, candidates=10)
        got = await store.asearch(QUERY, top_k=4, rerank=reranker, candidates=10)
        check_two_stage(got, want)


    # ---------------------------------------------------------------- keyword and hybrid search (issue 32)
    def _keyword_store(self, store: VectorStore) -> VectorStore:
        if store.keyword_support == "none":
            pytest.skip(f"{type(store).__name__} has no keyword search: {store.keyword_note}")
        store.add_texts(KEYWORD_TEXTS, ids=KEYWORD_IDS, metadatas=[{"even": i % 2 == 0} for i in range(6)])
        return store

    def test_keyword_search_finds_exact_terms_and_chinese_words(self, store: VectorStore) -> None:
        self._keyword_store(store)
        for query, want in (("ERR_QUOTA_EXCEEDED", "k1"), ("load_settings", "k0"), ("--dry-run", "k2"),
                            ("人工智能", "k3"), ("什么是混合检索", "k4")):
            hits = store.search(query, top_k=3, mode="keyword")
            assert hits and hits[0].id == want, (query, [h.id for h in hits])
            assert hits[0].text == KEYWORD_TEXTS[int(want[1:])]
            assert hits[0].keyword_score == hits[0].score and hits[0].score > 0
            scores = [h.score for h in hits]
            assert scores == sorted(scores, reverse=True)
        # a filter applies to the keyword side too: "the" is in k1, k2 and k5, of which k1 and k5 are odd
        hits = store.search("capital France quota", top_k=5, mode="keyword", filter={"even": False})
        assert sorted(h.id for h in hits) == ["k1", "k5"] and all(h.metadata == {"even": False} for h in hits)

    def test_hybrid_is_the_rank_fusion_of_both_sides(self, store: VectorStore) -> None:
        self._keyword_store(store)
        fusion = Fusion(dense_weight=1.0, keyword_weight=0.7, k=5, depth=6)
        query = "ERR_QUOTA_EXCEEDED from the server"
        dense = [h.id for h in store.search(query, top_k=6)]
        keyword = [h.id for h in store.search(query, top_k=6, mode="keyword")]
        want = fusion.fuse(dense, keyword, 4)
        got = store.search(query, top_k=4, mode="hybrid", fusion=fusion)
        assert [h.id for h in got] == [d for d, _ in want]
        np.testing.assert_allclose([h.score for h in got], [s for _, s in want], rtol=1e-9)
        top = got[0]
        assert top.id == "k1" and top.vector_score is not None and top.keyword_score is not None
        assert top.text == KEYWORD_TEXTS[1] and top.metadata == {"even": False}

    def test_writes_and_deletes_reach_the_keyword_side(
        self, store: VectorStore, open_store: OpenStore, embedder: Embedder
    ) -> None:
        self._keyword_store(store)
        assert store.search("ERR_QUOTA_EXCEEDED", top_k=2, mode="keyword")[0].id == "k1"  # built now
        store.add_texts(["a new text about ERR_DISK_FULL"], ids=["k9"])
        assert [h.id for h in store.search("disk", top_k=2, mode="keyword")] == ["k9"]
        store.add_texts(["k1 now talks about ERR_TIMEOUT"], ids=["k1"])  # the same id, another text
        assert store.search("quota", top_k=2, mode="keyword") == []
        assert [h.id for h in store.search("timeout", top_k=2, mode="keyword")] == ["k1"]
        store.delete(["k9"])
        assert store.search("disk", top_k=2, mode="keyword") == []
        again = self.reopen(store, embedder, open_store)
        try:
            assert [h.id for h in again.search("timeout", top_k=2, mode="keyword")] == ["k1"]
            assert again.search("disk", top_k=2, mode="keyword") == []
            assert again.search("quota", top_k=2, mode="keyword") == []
        finally:
            again.close()

    @pytest.mark.asyncio
    async def test_async_keyword_and_hybrid_match_sync(self, store: VectorStore) -> None:
        self._keyword_store(store)
        await store.aadd_texts(["async write about ERR_ASYNC_ONLY"], ids=["k8"])
        for mode in ("keyword", "hybrid"):
            sync = store.search("ERR_ASYNC_ONLY 人工智能", top_k=3, mode=mode)
            got = await store.asearch("ERR_ASYNC_ONLY 人工智能", top_k=3, mode=mode)
            assert [h.id for h in got] == [h.id for h in sync] and "k8" in {h.id for h in got}
            np.testing.assert_allclose([h.score for h in got], [h.score for h in sync], rtol=1e-6)

    def test_keywordless_store_refuses_keyword_modes(self, store: VectorStore) -> None:
        if store.keyword_support != "none":
            pytest.skip(f"{type(store).__name__} has keyword search ({store.keyword_support})")
        store.add_texts(TEXTS[:2])
        # bad input tried: mode "keyword" / "hybrid" on a store that has no keyword side
        for mode in ("keyword", "hybrid"):
            with pytest.raises(ConfigurationError, match=f"{type(store).__name__} .* has no keyword search, so mode "
                                                         "'keyword' and 'hybrid' are refused: "):
                store.search("capital", mode=mode)
        assert len(store.search("capital", top_k=2)) == 2


class MilvusContract(StoreContract):
    """The contract on a Milvus deployment: subclass and provide ``milvus_uri`` (a Lite ``.db`` path or
    an ``http://host:port`` URI) and, for a secured server, ``milvus_token``. Each test uses a fresh
    collection on it; the async twins go through ``AsyncMilvusClient``."""

    # int8: HNSW_SQ (Lite, 2.5+) or IVF_SQ8 (older servers), rescored; binary: no BINARY_VECTOR type on Lite
    compact_precisions = ("int8",)
    refused_precisions = ("binary",)

    @pytest.fixture
    def milvus_uri(self) -> str:
        raise NotImplementedError("a MilvusContract subclass provides the milvus_uri fixture")

    @pytest.fixture
    def milvus_token(self) -> str | None:
        return None

    @pytest.fixture
    def open_store(self, milvus_uri: str, milvus_token: str | None) -> Iterator[OpenStore]:
        from ..adapters.milvus import MilvusStore

        collection = unique_name("contract").replace("-", "_")
        opened: list[VectorStore] = []

        def open_(embedder: Embedder, **settings: Any) -> VectorStore:
            store = MilvusStore(milvus_uri, collection, embedder, token=milvus_token, **settings)
            opened.append(store)
            return store

        yield open_
        for s in opened:
            s.close()
        with MilvusStore(milvus_uri, collection, FakeEmbedder(), token=milvus_token) as cleanup:
            cleanup.drop()  # a server keeps collections across tests; Lite's .db would grow too


__all__ = [
    "CORPUS",
    "KEYWORD_IDS",
    "KEYWORD_TEXTS",
    "QUERY",
    "TEXTS",
    "MilvusContract",
    "OpenStore",
    "SpyReranker",
    "StoreContract",
    "check_two_stage",
    "expected_two_stage",
    "unique_name",
]
