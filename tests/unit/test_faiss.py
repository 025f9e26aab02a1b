"""FaissStore: exact vectors, ids, upserts, deletes, filters, save/load, dimension guard, bad input."""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
)
from qwen_embed_adapters.space import PROBES
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import OpenStore, StoreContract

DOCS = [
    "Paris is the capital of France.",
    "Quantum computing uses quantum bits or qubits.",
    "AI is transforming medical diagnosis and treatment.",
    "Beijing is the capital of China.",
    "机器学习是人工智能的一个分支",
    "The quick brown fox jumps over the lazy dog.",
]
METAS = [
    {"lang": "en", "topic": "geo"},
    {"lang": "en", "topic": "physics"},
    {"lang": "en", "topic": "medicine"},
    {"lang": "en", "topic": "geo"},
    {"lang": "zh", "topic": "ml"},
    None,
]


@pytest.fixture(params=["flat", "hnsw"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def emb() -> FakeEmbedder:
    return FakeEmbedder(dimensions=64)


class TestFaissFlatContract(StoreContract):
    """The shared store contract (qwen_embed_adapters.testing.contract) on an exact flat index."""

    index = "flat"
    compact_precisions = ("int8", "binary")

    @pytest.fixture
    def open_store(self, tmp_path) -> OpenStore:  # type: ignore[no-untyped-def]
        return lambda embedder, **kw: FaissStore(embedder, path=tmp_path / "kb", index=self.index, **kw)

    def reopen(self, store, embedder, open_store):  # type: ignore[no-untyped-def]
        store.save()  # FAISS lives in memory: "the same collection" is the saved folder
        return open_store(embedder)


class TestFaissHnswContract(TestFaissFlatContract):
    """The shared store contract on an HNSW graph index."""

    index = "hnsw"
    compact_precisions = ()
    refused_precisions = ("int8", "binary")  # compact search is flat (IndexScalarQuantizer / IndexBinaryFlat)


def _filled(emb: FakeEmbedder, kind: str = "flat", **kw: object) -> FaissStore:
    store = FaissStore(emb, index=kind, **kw)  # type: ignore[arg-type]
    store.add_texts(DOCS, metadatas=METAS)
    return store


def test_stores_the_exact_embedder_vectors_and_content_ids(emb: FakeEmbedder, kind: str) -> None:
    store = _filled(emb, kind)
    ids = [content_id(t) for t in DOCS]
    assert store.count() == len(DOCS) == len(store)
    stored = store.get_vectors(ids)
    assert stored.dtype == np.float32 and stored.shape == (len(DOCS), 64)
    np.testing.assert_array_equal(stored, emb.embed_documents(DOCS))
    got = store.get(ids + ["missing"])
    assert [g.text for g in got[:-1]] == DOCS  # type: ignore[union-attr]
    assert got[0].metadata == {"lang": "en", "topic": "geo"}  # type: ignore[union-attr]
    assert got[5].metadata == {} and got[-1] is None  # type: ignore[union-attr]


def test_query_instruction_is_applied_to_queries_only() -> None:
    emb = FakeEmbedder(dimensions=32, query_instruction="Find the city")
    store = FaissStore(emb)
    store.add_texts(["Paris"])
    store.search("capital", top_k=1)
    # the first two calls embed the space card's probes (documents, then the query probe wrapped)
    assert emb.calls[0] == [p.text for p in PROBES if not p.query]
    assert emb.calls[1] == [f"Instruct: Find the city\nQuery:{p.text}" for p in PROBES if p.query]
    assert emb.calls[2:] == [["Paris"], ["Instruct: Find the city\nQuery:capital"]]


def test_re_adding_the_same_texts_is_idempotent(emb: FakeEmbedder, kind: str) -> None:
    store = _filled(emb, kind)
    ids = store.add_texts(DOCS + DOCS[:2])  # repeats within one call and across calls
    assert ids == [content_id(t) for t in DOCS + DOCS[:2]]  # one id per input, in input order
    assert store.count() == len(DOCS)
    assert store._index.ntotal == len(DOCS)  # nothing re-inserted into the index, not even in HNSW
    # Metadata of a re-added text is replaced (an upsert), the vector untouched.
    store.add_texts([DOCS[0]], metadatas=[{"lang": "fr"}])
    assert store.get([content_id(DOCS[0])])[0].metadata == {"lang": "fr"}  # type: ignore[union-attr]


def test_explicit_id_upsert_replaces_text_and_vector(emb: FakeEmbedder, kind: str) -> None:
    store = FaissStore(emb, index=kind)
    store.add_texts(["old text about cats", "dogs"], ids=["a", "b"])
    store.add_texts(["new text about the capital of France"], ids=["a"])
    assert store.count() == 2
    np.testing.assert_array_equal(
        store.get_vectors(["a"])[0], emb.embed_documents(["new text about the capital of France"])[0]
    )
    hits = store.search("old text about cats", top_k=2)
    assert {h.id for h in hits} == {"a", "b"}
    assert [h.text for h in hits if h.id == "a"] == ["new text about the capital of France"]


def test_delete_removes_from_results_and_count(emb: FakeEmbedder, kind: str) -> None:
    store = _filled(emb, kind)
    gone = content_id(DOCS[0])
    store.delete([gone, "not-there"])
    assert store.count() == len(DOCS) - 1
    hits = store.search("Paris is the capital of France.", top_k=len(DOCS))
    assert gone not in [h.id for h in hits]
    assert len(hits) == len(DOCS) - 1
    # Adding it back works (HNSW keeps a tombstone for the old vector, flat removes it).
    store.add_texts([DOCS[0]])
    assert store.search("Paris is the capital of France.", top_k=1)[0].id == gone
    assert store.count() == len(DOCS)


def test_hnsw_compacts_when_deleted_vectors_outnumber_live_ones(emb: FakeEmbedder) -> None:
    store = FaissStore(emb, index="hnsw")
    texts = [f"document number {i}" for i in range(1200)]
    ids = store.add_texts(texts)
    store.delete(ids[:1100])
    assert store.count() == 100
    assert store._index.ntotal == 100 and not store._dead  # rebuilt without the 1,100 tombstones
    hits = store.search("document number 1150", top_k=1)
    assert hits[0].text == "document number 1150"


def test_metadata_filters_dict_list_and_callable(emb: FakeEmbedder, kind: str) -> None:
    store = _filled(emb, kind)
    geo = store.search("capital", top_k=5, filter={"topic": "geo"})
    assert sorted(h.text for h in geo) == sorted([DOCS[0], DOCS[3]])  # type: ignore[type-var]
    either = store.search("capital", top_k=5, filter={"topic": ["ml", "physics"]})
    assert sorted(h.text for h in either) == sorted([DOCS[1], DOCS[4]])  # type: ignore[type-var]
    zh = store.search("capital", top_k=5, filter=lambda m: m.get("lang") == "zh")
    assert [h.text for h in zh] == [DOCS[4]]
    assert store.search("capital", top_k=5, filter={"topic": "nothing"}) == []


def test_filtered_hnsw_search_over_many_records_matches_exact(emb: FakeEmbedder) -> None:
    texts = [f"record {i} about topic {i % 7}" for i in range(6000)]
    metas = [{"bucket": i % 2} for i in range(6000)]
    flat, hnsw = FaissStore(emb), FaissStore(emb, index="hnsw", ef_search=256)
    for s in (flat, hnsw):
        s.add_texts(texts, metadatas=metas)
    exact = [h.id for h in flat.search("record 42 about topic 0", top_k=10, filter={"bucket": 0})]
    approx = [h.id for h in hnsw.search("record 42 about topic 0", top_k=10, filter={"bucket": 0})]
    assert len(approx) == 10
    assert len(set(exact) & set(approx)) >= 8


def test_l2_and_ip_metrics(emb: FakeEmbedder) -> None:
    q = emb.embed_query("capital of China")
    docs = emb.embed_documents(DOCS)
    l2 = FaissStore(emb, metric="l2")
    l2.add_texts(DOCS)
    hits = l2.search("capital of China", top_k=2)
    d2 = ((docs - q) ** 2).sum(axis=1)
    order = np.argsort(d2)[:2]
    assert [h.text for h in hits] == [DOCS[i] for i in order]
    np.testing.assert_allclose([h.score for h in hits], -d2[order], atol=1e-5)
    ip = FaissStore(emb, metric="IP")
    ip.add_texts(DOCS)
    assert ip.metric == "ip"
    assert ip.search("capital of China", top_k=1)[0].text == DOCS[int(np.argmax(docs @ q))]


def test_save_load_round_trip(emb: FakeEmbedder, kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = _filled(emb, kind)
    store.delete([content_id(DOCS[2])])
    before = store.search("capital", top_k=4)
    folder = store.save(tmp_path / "kb")
    manifest = json.loads((folder / "store.json").read_text())
    assert manifest["model"] == "fake-embedding" and manifest["dimension"] == 64
    assert manifest["metric"] == "cosine" and manifest["index"] == kind and manifest["count"] == 5
    again = FaissStore.load(folder, FakeEmbedder(dimensions=64))
    assert again.count() == 5 and again.index_kind == kind and again.dimension == 64
    after = again.search("capital", top_k=4)
    assert [(h.id, h.text, h.metadata) for h in after] == [(h.id, h.text, h.metadata) for h in before]
    np.testing.assert_allclose([h.score for h in after], [h.score for h in before], atol=1e-6)
    ids = [content_id(t) for t in DOCS if t != DOCS[2]]
    np.testing.assert_array_equal(again.get_vectors(ids), store.get_vectors(ids))
    # Writing after a reload and saving again keeps one generation of files.
    again.add_texts(["a new text"])
    again.save()
    assert FaissStore(FakeEmbedder(dimensions=64), path=folder).count() == 6
    assert sorted(p.name for p in folder.iterdir()) == ["index-2.faiss", "records-2.jsonl", "store.json"]


def test_constructor_with_path_opens_or_creates(emb: FakeEmbedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "new"
    store = FaissStore(emb, path=folder, index="hnsw")
    assert store.count() == 0 and store.name == str(folder)
    store.add_texts(DOCS[:2])
    store.save()
    # Saved settings win over the constructor's.
    reopened = FaissStore(emb, path=folder, index="flat")
    assert reopened.index_kind == "hnsw" and reopened.count() == 2


def test_saving_an_empty_store_and_loading_it(emb: FakeEmbedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    FaissStore(emb).save(tmp_path / "empty")
    store = FaissStore.load(tmp_path / "empty", emb)
    assert store.count() == 0 and store.search("anything") == []
    store.add_texts(["first"])
    assert store.search("first", top_k=1)[0].text == "first"


def test_load_refuses_another_dimension(emb: FakeEmbedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bad input: a store of 64-d vectors opened with a 32-d embedder."""
    folder = _filled(emb).save(tmp_path / "kb")
    with pytest.raises(DimensionMismatchError) as err:
        FaissStore.load(folder, FakeEmbedder(dimensions=32))
    assert (err.value.expected, err.value.actual, err.value.where) == (64, 32, str(folder))
    assert "64-d" in str(err.value) and "32-d" in str(err.value)


def test_load_refuses_another_known_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bad input: a store built with Qwen3-Embedding-0.6B at 64-d opened with the 4B model at 64-d."""
    small = FakeEmbedder("Qwen3-Embedding-0.6B", dimensions=64, native_dim=1024)
    folder = _filled(small).save(tmp_path / "kb")
    with pytest.raises(ConfigurationError, match="Qwen3-Embedding-0.6B.*Qwen3-Embedding-4B"):
        FaissStore.load(folder, FakeEmbedder("Qwen3-Embedding-4B", dimensions=64, native_dim=2560))
    # The same model spelt differently is fine.
    same = FaissStore.load(folder, FakeEmbedder("Qwen/Qwen3-Embedding-0.6B", dimensions=64, native_dim=1024))
    assert same.count() == len(DOCS)


def test_writes_with_another_dimension_fail_before_writing(emb: FakeEmbedder, kind: str) -> None:
    """Bad input: the store's embedder swapped for a 32-d one after 64-d vectors were stored."""
    store = _filled(emb, kind)
    store.embedder = FakeEmbedder(dimensions=32)
    with pytest.raises(DimensionMismatchError) as err:
        store.add_texts(["something new"])
    assert (err.value.expected, err.value.actual) == (64, 32)
    with pytest.raises(DimensionMismatchError):
        store.search("capital")
    assert store.count() == len(DOCS)


def test_add_embeddings_checks_width_and_nan(emb: FakeEmbedder) -> None:
    """Bad input: precomputed vectors of the wrong width, with a NaN row, or a different count."""
    store = FaissStore(emb)
    vecs = emb.embed_documents(DOCS)
    assert store.add_embeddings(DOCS, vecs * 3.0) == [content_id(t) for t in DOCS]  # renormalised (cosine)
    np.testing.assert_allclose(store.get_vectors([content_id(DOCS[1])])[0], vecs[1], atol=1e-6)
    with pytest.raises(DimensionMismatchError) as err:
        store.add_embeddings(["x"], np.ones((1, 63), dtype=np.float32))
    assert (err.value.expected, err.value.actual) == (64, 63)
    bad = np.ones((2, 64), dtype=np.float32)
    bad[1, 5] = np.nan
    with pytest.raises(InvalidInputError, match="row 1") as nan_err:
        store.add_embeddings(["y", "z"], bad)
    assert nan_err.value.index == 1
    with pytest.raises(InvalidInputError, match="2 texts but 1 vectors"):
        store.add_embeddings(["y", "z"], bad[:1])
    assert store.count() == len(DOCS)
    # A repeated text under content ids keeps the first row.
    store2 = FaissStore(emb)
    store2.add_embeddings(["a", "b", "a"], np.eye(3, 64, dtype=np.float32))
    np.testing.assert_array_equal(store2.get_vectors([content_id("a")])[0], np.eye(3, 64, dtype=np.float32)[0])
    assert store2.count() == 2


class _NoLongTexts(FakeEmbedder):
    """Refuses texts over 40 characters at embedding time, as LocalEmbedder(truncate=False) does,
    naming the index in the list it was given."""

    def _plan_batches(self, texts: list[str]) -> list[list[int]]:
        for i, t in enumerate(texts):
            if len(t) > 40:
                raise InvalidInputError(f"texts[{i}] is {len(t)} characters long, above 40", index=i)
        return super()._plan_batches(texts)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_text_refused_by_the_embedder_in_a_later_batch_is_named_by_its_own_index(mode: str) -> None:
    """Bad input: the embedder refuses texts[4] while embedding the third batch of two; the error names
    texts[4] and its id (not position 0 of that batch), and says that earlier batches were written."""
    store = FaissStore(_NoLongTexts(dimensions=16))
    store.space_check = "off"  # its probes are longer than this embedder takes; this test is about the index
    store.write_batch_size = 2
    texts = ["one", "two", "three", "four", "x" * 50, "six"]
    ids = [f"id-{i}" for i in range(6)]
    with pytest.raises(InvalidInputError, match=r"texts\[4\] is 50 characters") as err:
        if mode == "sync":
            store.add_texts(texts, ids=ids)
        else:
            asyncio.run(store.aadd_texts(texts, ids=ids))
    assert err.value.index == 4 and err.value.item_id == "id-4"
    assert "4 records" in str(err.value)
    assert store.count() == 4 and store.existing_ids(ids) == set(ids[:4])


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_refused_text_after_a_repeated_one_is_named_by_its_position_in_the_callers_list(mode: str) -> None:
    """Bad input: texts[5] is too long, and texts[1] repeats texts[0] (stored once under its content id);
    the error names texts[5], the caller's position, not its position among the stored records."""
    store = FaissStore(_NoLongTexts(dimensions=16))
    store.space_check = "off"  # its probes are longer than this embedder takes; this test is about the index
    store.write_batch_size = 2
    texts = ["one", "one", "two", "three", "four", "x" * 50]
    with pytest.raises(InvalidInputError, match=r"texts\[5\] is 50 characters") as err:
        if mode == "sync":
            store.add_texts(texts)
        else:
            asyncio.run(store.aadd_texts(texts))
    assert err.value.index == 5 and err.value.item_id == content_id("x" * 50)
    assert store.count() == 4


def test_bad_queries_and_arguments(emb: FakeEmbedder) -> None:
    """Bad input: empty/None query, top_k 0 or bool, a filter of the wrong type, a single-str delete."""
    store = _filled(emb)
    with pytest.raises(InvalidInputError, match="query must be a non-empty str"):
        store.search("")
    with pytest.raises(InvalidInputError, match="query must be a non-empty str"):
        store.search(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="top_k must be a positive int"):
        store.search("x", top_k=0)
    with pytest.raises(InvalidInputError, match="top_k must be a positive int"):
        store.search_by_vector(np.ones(64), top_k=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="filter must be a dict"):
        store.search("x", filter="lang == 'en'")
    with pytest.raises(InvalidInputError, match="single str"):
        store.delete("abc")  # type: ignore[arg-type]
    with pytest.raises(DimensionMismatchError):
        store.search_by_vector(np.ones(10))
    with pytest.raises(InvalidInputError, match="NaN"):
        store.search_by_vector(np.full(64, np.nan))


def test_bad_constructor_arguments(emb: FakeEmbedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bad input: unknown metric / index kind, non-positive or bool HNSW settings, loading a missing folder."""
    with pytest.raises(ConfigurationError, match="metric must be one of"):
        FaissStore(emb, metric="manhattan")
    with pytest.raises(ConfigurationError, match="index must be one of"):
        FaissStore(emb, index="ivf")
    with pytest.raises(ConfigurationError, match="hnsw_m must be at least 1, got 0"):
        FaissStore(emb, hnsw_m=0)
    with pytest.raises(ConfigurationError, match="ef_search must be an integer, got True"):
        FaissStore(emb, ef_search=True)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no FAISS store saved"):
        FaissStore.load(tmp_path / "nothing", emb)
    with pytest.raises(ConfigurationError, match="save\\(\\) needs a folder"):
        FaissStore(emb).save()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "store.json").write_text('{"format": "something-else"}')
    with pytest.raises(ConfigurationError, match="not a FaissStore folder"):
        FaissStore.load(tmp_path / "other", emb)
    with pytest.raises(TypeError, match="Embedder"):
        FaissStore("not an embedder")  # type: ignore[arg-type]


def test_missing_faiss_names_the_install_command(emb: FakeEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingDependencyError) as err:
        FaissStore(emb)
    assert err.value.install_command == 'pip install "qwen-embed-adapters[faiss]"'
    assert 'pip install "qwen-embed-adapters[faiss]"' in str(err.value)


def test_repr_and_config_hold_no_secret(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from qwen_embed_adapters.remote import RemoteEmbedder

    monkeypatch.setenv("QWEN_EMBED_API_KEY", "sk-secret-123")
    remote = RemoteEmbedder("http://127.0.0.1:9/v1", dimensions=64)
    store = FaissStore(remote, path=tmp_path / "kb")
    store._dim = 64
    folder = store.save()
    assert "sk-secret-123" not in (folder / "store.json").read_text()
    assert "sk-secret-123" not in repr(store)
    assert json.loads((folder / "store.json").read_text())["embedder"]["api_key_env"] == "QWEN_EMBED_API_KEY"


def test_hnsw_recall_against_exact_on_random_vectors() -> None:
    emb = FakeEmbedder(dimensions=32)
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((3000, 32)).astype(np.float32)
    texts = [f"t{i}" for i in range(3000)]
    flat, hnsw = FaissStore(emb), FaissStore(emb, index="hnsw")
    flat.add_embeddings(texts, vecs)
    hnsw.add_embeddings(texts, vecs)
    queries = rng.standard_normal((50, 32)).astype(np.float32)
    found = 0
    for q in queries:
        exact = {h.id for h in flat.search_by_vector(q, 10)}
        approx = {h.id for h in hnsw.search_by_vector(q, 10)}
        found += len(exact & approx)
    assert found / 500 >= 0.95


def test_a_failed_write_raises_without_waiting_for_the_batch_embedding_ahead() -> None:
    """Failure: the first batch's write fails while the second batch is still embedding (a slow,
    retrying endpoint); WriteError comes at once, with every id not written, and the embedding ahead
    is abandoned rather than waited for."""
    import threading

    from qwen_embed_adapters.errors import WriteError

    release, started = threading.Event(), threading.Event()
    log: list[str] = []

    class SlowSecondBatch(FakeEmbedder):
        def _embed_batch(self, texts: list[str]) -> np.ndarray:
            if texts[0] == "c":
                started.set()
                release.wait(timeout=30)
                log.append("second batch embedded")
            return super()._embed_batch(texts)

    class FailingStore(FaissStore):
        def _write(self, ids, vectors, texts, metadatas):  # type: ignore[no-untyped-def]
            started.wait(timeout=30)  # the second batch is embedding now
            raise RuntimeError("disk full")

    store = FailingStore(SlowSecondBatch(dimensions=16))
    store.write_batch_size = 2
    try:
        with pytest.raises(WriteError, match="disk full") as err:
            store.add_texts(["a", "b", "c", "d"], ids=["1", "2", "3", "4"])
        assert log == []  # raised before the second batch finished embedding
        assert err.value.failed_ids == ["1", "2", "3", "4"] and err.value.written_ids == []
    finally:
        release.set()


# ---------------------------------------------------------------- compact vectors (precision int8 / binary)
def _unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(("precision", "code_bytes"), [("int8", 64), ("binary", 8)])
def test_a_compact_store_keeps_small_codes_and_returns_float_cosines(precision: str, code_bytes: int) -> None:
    emb = FakeEmbedder(dimensions=64)
    vecs = _unit_rows(500, 64)
    texts = [f"doc {i}" for i in range(500)]
    exact = FaissStore(emb)
    exact.add_embeddings(texts, vecs)
    store = FaissStore(emb, precision=precision, rescore=10)
    store.add_embeddings(texts, vecs)
    assert store.compact_bytes() == 500 * code_bytes and exact.compact_bytes() == 0
    # get_vectors still gives the float vectors bit for bit (they are kept for rescoring).
    np.testing.assert_array_equal(store.get_vectors([content_id(texts[7])]), exact.get_vectors([content_id(texts[7])]))
    q = vecs[3] + 0.05 * _unit_rows(1, 64, seed=1)[0]
    got, want = store.search_by_vector(q, top_k=5), exact.search_by_vector(q, top_k=5)
    assert got[0].id == want[0].id == content_id(texts[3])
    # Scores are the float cosines of the hits found, not quantised distances.
    for h in got:
        row = texts.index(h.text or "")
        assert h.score == pytest.approx(float(vecs[row] @ (q / np.linalg.norm(q))), abs=1e-5)


def test_int8_is_retrained_as_the_store_grows_in_small_batches() -> None:
    emb = FakeEmbedder(dimensions=32)
    vecs = _unit_rows(1000, 32)
    store = FaissStore(emb, precision="int8")
    for start in range(0, 1000, 10):
        store.add_embeddings([f"d{i}" for i in range(start, start + 10)], vecs[start:start + 10])
    # First trained on 10 vectors, then on everything each time the store grew 4x: 10, 40, 160, 640.
    assert store._compact_trained_on == 640
    assert store._compact.ntotal == 1000


def test_a_saved_compact_store_reopens_at_its_precision(tmp_path, emb: FakeEmbedder) -> None:  # type: ignore[no-untyped-def]
    store = _filled(emb, precision="binary")
    store.delete([content_id(DOCS[1])])
    store.save(tmp_path / "kb")
    manifest = json.loads((tmp_path / "kb" / "store.json").read_text())
    assert manifest["precision"] == "binary"
    again = FaissStore.load(tmp_path / "kb", emb)
    assert again.precision == "binary" and again.to_config()["precision"] == "binary"
    assert again._compact.ntotal == len(DOCS) - 1  # rebuilt from the float vectors, without the deleted one
    assert again.search(DOCS[3], top_k=1, instruction="")[0].text == DOCS[3]
    with pytest.raises(ConfigurationError, match=r"created with precision='binary'; it cannot be opened with precision='int8'"):
        FaissStore(emb, path=tmp_path / "kb", precision="int8")


def test_a_folder_saved_before_precisions_opens_as_float32(tmp_path, emb: FakeEmbedder) -> None:  # type: ignore[no-untyped-def]
    _filled(emb).save(tmp_path / "kb")
    manifest = json.loads((tmp_path / "kb" / "store.json").read_text())
    del manifest["precision"]  # what an older version wrote
    (tmp_path / "kb" / "store.json").write_text(json.dumps(manifest))
    assert FaissStore.load(tmp_path / "kb", emb).precision == "float32"
    with pytest.raises(ConfigurationError, match="created with precision='float32'"):
        FaissStore(emb, path=tmp_path / "kb", precision="int8")


def test_bad_compact_settings_are_refused() -> None:
    """Bad input tried: an unknown precision, rescore 0, binary on a width that is not a multiple of 8."""
    emb = FakeEmbedder(dimensions=12)
    with pytest.raises(ConfigurationError, match="precision must be one of 'float32', 'int8', 'binary', got 'int4'"):
        FaissStore(emb, precision="int4")
    with pytest.raises(ConfigurationError, match="rescore must be at least 1, got 0"):
        FaissStore(emb, precision="int8", rescore=0)
    with pytest.raises(ConfigurationError, match="12 is not a multiple of 8"):
        FaissStore(emb, precision="binary").add_texts(["twelve dimensions"])


def test_precision_travels_in_the_spec() -> None:
    from qwen_embed_adapters.adapters.spec import parse_store_spec

    spec = parse_store_spec("faiss:kb?precision=int8&rescore=10")
    assert spec["precision"] == "int8" and spec["rescore"] == 10
    assert parse_store_spec("faiss:kb")["precision"] is None  # None: the folder's own, float32 when new


# ---------------------------------------------------------------- compact vectors: float vectors on disk (issue 32)
def _exact_top(want: dict[str, np.ndarray], q: np.ndarray, k: int) -> list[tuple[str, float]]:
    ids = list(want)
    scores = np.stack([want[i] for i in ids]) @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return [(ids[i], float(scores[i])) for i in order]


def _assert_store_holds(store: FaissStore, want: dict[str, np.ndarray]) -> None:
    """Every live vector back bit for bit, and searches (compact + rescore over the whole store, and the exact
    scan a filter takes) equal to the exact float answer: a row read for the wrong record would change both."""
    ids = sorted(want)
    got = store.get_vectors(ids)
    assert got.dtype == np.float32 and got.tobytes() == np.stack([want[i] for i in ids]).tobytes()
    assert store.count() == len(want)
    for q in _unit_rows(3, 64, seed=5):
        exact = _exact_top(want, q, 8)
        for hits in (store.search_by_vector(q, top_k=8), store.search_by_vector(q, top_k=8, filter=lambda m: True)):
            assert [h.id for h in hits] == [i for i, _ in exact]
            assert [h.score for h in hits] == pytest.approx([s for _, s in exact], abs=1e-6)


def _files(folder) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("precision", ["int8", "binary"])
def test_a_saved_compact_store_reads_its_float_vectors_from_disk_bit_for_bit(tmp_path, precision: str) -> None:  # type: ignore[no-untyped-def]
    emb = FakeEmbedder(dimensions=64)
    rows = _unit_rows(120, 64, seed=2)
    ids = [f"d{i}" for i in range(120)]
    # metric "ip" stores the vectors as given, so the expected bytes are these rows; rescore 20 x top_k 8
    # covers the whole store, so a compact search must give the exact answer.
    store = FaissStore(emb, path=tmp_path / "kb", metric="ip", precision=precision, rescore=20)
    store.add_embeddings(ids, rows, ids=ids)
    want = dict(zip(ids, rows, strict=True))
    _assert_store_holds(store, want)  # not saved yet: the rows are in an unnamed temporary file
    store.save()
    # no float index file beside the vectors file, and no temporary file left behind
    assert _files(tmp_path / "kb") == ["records-1.jsonl", "store.json", "vectors-1.f32"]
    assert (tmp_path / "kb" / "vectors-1.f32").stat().st_size == 120 * 64 * 4
    manifest = json.loads((tmp_path / "kb" / "store.json").read_text())
    assert manifest["version"] == 2 and manifest["files"]["vectors"] == "vectors-1.f32"
    assert manifest["files"]["index"] is None
    _assert_store_holds(store, want)  # the saving store now reads the saved file
    again = FaissStore(emb, path=tmp_path / "kb", rescore=20)
    assert again.precision == precision
    _assert_store_holds(again, want)


def test_a_reopened_compact_store_holds_no_float_vectors_in_memory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import tracemalloc

    emb = FakeEmbedder(dimensions=256)
    ids = [f"d{i}" for i in range(2000)]
    store = FaissStore(emb, path=tmp_path / "kb", precision="int8")
    store.add_embeddings(ids, _unit_rows(2000, 256, seed=9), ids=ids)
    store.save()
    del store
    tracemalloc.start()
    try:
        again = FaissStore(emb, path=tmp_path / "kb")
        for q in _unit_rows(20, 256, seed=10):
            assert len(again.search_by_vector(q, top_k=10)) == 10
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The 2,000 x 256 float32 vectors are 2,048,000 bytes; what stays traced is the records and per-slot
    # bookkeeping (the int8 codes are FAISS's C++ memory, not traced; a NumPy copy of the vectors would be).
    assert held < 2000 * 256 * 4 // 2


@pytest.mark.parametrize("precision", ["int8", "binary"])
def test_compact_upserts_and_deletes_keep_rescoring_right_across_saves(tmp_path, precision: str) -> None:  # type: ignore[no-untyped-def]
    emb = FakeEmbedder(dimensions=64)
    rows = _unit_rows(160, 64, seed=3)
    store = FaissStore(emb, path=tmp_path / "kb", metric="ip", precision=precision, rescore=40)
    ids = [f"d{i}" for i in range(100)]
    store.add_embeddings(ids, rows[:100], ids=ids)
    want = dict(zip(ids, rows[:100], strict=True))
    store.add_embeddings(["d5, changed"], rows[100:101], ids=["d5"])  # an upsert: the id gets a new vector
    want["d5"] = rows[100]
    store.delete(["d7", "d8"])
    del want["d7"], want["d8"]
    _assert_store_holds(store, want)
    store.save()
    again = FaissStore(emb, path=tmp_path / "kb", rescore=40)
    _assert_store_holds(again, want)
    # writes after the reopen: live rows in the saved file and in the temporary file, with holes in both
    more = [f"e{i}" for i in range(50)]
    again.add_embeddings(more, rows[101:151], ids=more)
    want.update(zip(more, rows[101:151], strict=True))
    again.add_embeddings(["d5, changed twice"], rows[151:152], ids=["d5"])  # its row moves again
    again.add_embeddings(["e3, changed"], rows[152:153], ids=["e3"])  # an id first written after the save
    want["d5"], want["e3"] = rows[151], rows[152]
    again.delete(["d0", "e0", "d99"])
    for gone in ("d0", "e0", "d99"):
        del want[gone]
    _assert_store_holds(again, want)
    again.save()
    assert _files(tmp_path / "kb") == ["records-2.jsonl", "store.json", "vectors-2.f32"]  # generation 1 removed
    assert (tmp_path / "kb" / "vectors-2.f32").stat().st_size == len(want) * 64 * 4  # deleted rows not copied
    _assert_store_holds(again, want)
    _assert_store_holds(FaissStore(emb, path=tmp_path / "kb", rescore=40), want)


class _Killed(Exception):
    """Stands for the process being killed at that point."""


def test_a_save_killed_before_store_json_moves_opens_with_the_previous_vectors(  # type: ignore[no-untyped-def]
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    emb = FakeEmbedder(dimensions=64)
    rows = _unit_rows(60, 64, seed=4)
    ids = [f"d{i}" for i in range(40)]
    store = FaissStore(emb, path=tmp_path / "kb", metric="ip", precision="int8", rescore=20)
    store.add_embeddings(ids, rows[:40], ids=ids)
    store.save()
    want = dict(zip(ids, rows[:40], strict=True))
    store.add_embeddings(["d1, changed"], rows[40:41], ids=["d1"])
    store.delete(["d2"])
    store.add_embeddings(["x"], rows[41:42], ids=["x"])
    real_replace = os.replace

    def replace(src, dst):  # type: ignore[no-untyped-def]
        if os.path.basename(dst) == "store.json":
            raise _Killed
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(_Killed):
        store.save()
    monkeypatch.undo()
    assert "vectors-2.f32" in _files(tmp_path / "kb")  # the new generation's vectors were already in place...
    _assert_store_holds(FaissStore(emb, path=tmp_path / "kb", rescore=20), want)  # ...store.json names the first


def test_a_truncated_vectors_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bad input tried: a vectors file cut short (a copy of the folder that did not finish)."""
    emb = FakeEmbedder(dimensions=64)
    store = FaissStore(emb, path=tmp_path / "kb", precision="binary")
    store.add_embeddings([f"d{i}" for i in range(30)], _unit_rows(30, 64))
    store.save()
    with open(tmp_path / "kb" / "vectors-1.f32", "r+b") as fh:
        fh.truncate(30 * 64 * 4 - 4)
    with pytest.raises(ConfigurationError, match=r"vectors-1\.f32 holds 7676 bytes, 30 records of 64-d float32 "
                                                  r"need 7680; the folder is inconsistent"):
        FaissStore(emb, path=tmp_path / "kb")


def test_int8_reopened_is_trained_and_coded_as_on_every_vector(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import faiss

    emb = FakeEmbedder(dimensions=64)
    ids = [f"d{i}" for i in range(300)]
    store = FaissStore(emb, path=tmp_path / "kb", precision="int8")
    store.add_embeddings(ids, _unit_rows(300, 64, seed=6), ids=ids)
    store.save()
    again = FaissStore(emb, path=tmp_path / "kb")
    # The reopen reads the vectors in chunks and trains on their per-dimension min/max: the same quantiser as
    # training on all 300 at once.
    ref = faiss.IndexScalarQuantizer(64, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    ref.sq.rangestat = faiss.ScalarQuantizer.RS_minmax
    ref.sq.rangestat_arg = 0.2
    stored = store.get_vectors(ids)
    ref.train(stored)
    ref.add(stored)
    got = faiss.downcast_index(again._compact.index)
    assert again._compact_trained_on == 300
    np.testing.assert_array_equal(faiss.vector_to_array(got.sq.trained), faiss.vector_to_array(ref.sq.trained))
    np.testing.assert_array_equal(faiss.vector_to_array(got.codes), faiss.vector_to_array(ref.codes))


def test_a_compact_folder_saved_with_a_float_index_file_opens_and_moves_to_a_vectors_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    emb = FakeEmbedder(dimensions=64)
    rows = _unit_rows(50, 64, seed=8)
    ids = [f"d{i}" for i in range(50)]
    store = FaissStore(emb, path=tmp_path / "kb", metric="ip")
    store.add_embeddings(ids, rows, ids=ids)
    store.delete(["d3"])
    store.save()
    manifest = json.loads((tmp_path / "kb" / "store.json").read_text())
    manifest["precision"] = "binary"  # what a compact store wrote before its float vectors left the index file
    (tmp_path / "kb" / "store.json").write_text(json.dumps(manifest))
    want = {i: r for i, r in zip(ids, rows, strict=True) if i != "d3"}
    again = FaissStore(emb, path=tmp_path / "kb", rescore=20)
    assert again.precision == "binary"
    _assert_store_holds(again, want)
    again.save()
    assert _files(tmp_path / "kb") == ["records-2.jsonl", "store.json", "vectors-2.f32"]
    _assert_store_holds(FaissStore(emb, path=tmp_path / "kb", rescore=20), want)


def test_keyword_index_is_saved_beside_and_read_back_without_retokenising(
    tmp_path, emb: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qwen_embed_adapters.retrieval as retrieval

    store = FaissStore(emb, path=tmp_path / "kb")
    store.add_texts(DOCS, ids=[f"d{i}" for i in range(len(DOCS))])
    store.save()
    assert json.loads((tmp_path / "kb" / "store.json").read_text())["files"]["keywords"] is None  # never built
    assert [h.id for h in store.search("人工智能", top_k=2, mode="keyword")] == ["d4"]
    store.save()
    manifest = json.loads((tmp_path / "kb" / "store.json").read_text())
    assert manifest["files"]["keywords"] == "keywords-2.jsonl"
    assert sorted(p.name for p in (tmp_path / "kb").glob("keywords-*")) == ["keywords-2.jsonl"]
    seen: list[str] = []
    real = retrieval.tokenize
    monkeypatch.setattr(retrieval, "tokenize", lambda text: seen.append(text) or real(text))
    again = FaissStore.load(tmp_path / "kb", emb)
    hits = again.search("Beijing capital", top_k=2, mode="keyword")
    assert [h.id for h in hits] == ["d3", "d0"] and hits[0].text == DOCS[3]
    assert seen == ["Beijing capital"]  # the saved terms were read, not the texts tokenised again
