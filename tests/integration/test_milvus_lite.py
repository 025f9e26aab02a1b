"""MilvusStore against a real Milvus Lite (in-process gRPC server on a temp .db)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.adapters.milvus import (
    DEFAULT_ANALYZER,
    PROP_DIMENSION,
    PROP_METRIC,
    PROP_MODEL,
    PROP_PRECISION,
    MilvusStore,
    milvus_rows,
)
from qwen_embed_adapters.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    WriteError,
)
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import MilvusContract, OpenStore, unique_name
from tests.support.keyword_checks import NativeKeywordChecks
from tests.support.milvus_fixtures import corpus, index_lite, release_lite

pymilvus = pytest.importorskip("pymilvus")
pytestmark = pytest.mark.integration

DIM = 64
INSTRUCTION = "Given a question, find the passage"


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("milvus_lite") / "store.db"
    yield path
    release_lite(path)


@pytest.fixture(scope="module")
def milvus_uri(db_path: Path) -> str:
    """Where the stores go; tests/integration/test_milvus_standalone.py runs these tests again with the
    URI of a real Milvus standalone server."""
    return str(db_path)


@pytest.fixture()
def open_store(milvus_uri: str) -> Iterator[Callable[..., MilvusStore]]:
    """Opens stores on the module's .db (or server) and closes them at teardown."""
    stores: list[MilvusStore] = []

    def _open(collection: str, embedder: Any = None, **kw: Any) -> MilvusStore:
        s = MilvusStore(milvus_uri, collection, embedder or FakeEmbedder(dimensions=DIM), **kw)
        stores.append(s)
        return s

    yield _open
    for s in stores:
        s.close()
    if milvus_uri.startswith("http"):  # a server keeps collections between tests
        with MilvusStore(milvus_uri, "cleanup", FakeEmbedder(dimensions=DIM)) as c:
            for name in c.client.list_collections():
                c.client.drop_collection(name)


class TestMilvusLiteContract(MilvusContract):
    """The shared store contract (qwen_embed_adapters.testing.contract) on Milvus Lite."""

    @pytest.fixture
    def milvus_uri(self, db_path: Path) -> str:
        return str(db_path)


def stored(store: MilvusStore, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Rows by id, read back with the raw client."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        for row in store.client.get(store.collection, ids=ids[i : i + 500], output_fields=["*"]):
            out[row["id"]] = row
    return out


def test_bulk_2000_ids_count_vectors_search_and_rerun(open_store: Callable[..., MilvusStore]) -> None:
    emb = FakeEmbedder(dimensions=DIM)
    store = open_store("bulk", emb)
    texts = corpus(2000)
    ids = store.add_texts(texts)

    assert ids == [content_id(t) for t in texts]
    assert len(set(ids)) == 2000
    assert store.count() == 2000

    rows = stored(store, ids)
    assert sorted(rows) == sorted(ids)
    expected = emb.embed_documents(texts)
    got = np.array([rows[i]["vector"] for i in ids], dtype=np.float32)
    assert got.shape == (2000, DIM)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [rows[i]["text"] for i in ids] == texts

    # a query equal to a stored text finds that text first (no instruction for a non-Qwen3 model name)
    for k in (0, 1, 977, 1999):
        hits = store.search(texts[k], top_k=3)
        assert hits[0].id == ids[k]
        assert hits[0].text == texts[k]
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert hits[0].score >= hits[1].score >= hits[2].score

    again = store.add_texts(texts)
    assert again == ids
    assert store.count() == 2000


def test_collection_records_model_dimension_and_metric(open_store: Callable[..., MilvusStore]) -> None:
    store = open_store("recorded", FakeEmbedder("my-model", dimensions=48), metric="ip")
    assert store.ensure_collection() == 48
    info = store.client.describe_collection("recorded")
    assert info["properties"][PROP_MODEL] == "my-model"
    assert info["properties"][PROP_DIMENSION] == "48"
    assert info["properties"][PROP_METRIC] == "IP"
    fields = {f["name"]: f for f in info["fields"]}
    assert fields["id"]["is_primary"] is True
    assert fields["id"]["type"] == pymilvus.DataType.VARCHAR
    assert fields["text"]["type"] == pymilvus.DataType.VARCHAR
    assert fields["metadata"]["type"] == pymilvus.DataType.JSON
    assert fields["vector"]["type"] == pymilvus.DataType.FLOAT_VECTOR
    assert int(fields["vector"]["params"]["dim"]) == 48
    index = store.client.describe_index("recorded", "vector")
    assert index["metric_type"] == "IP"
    # a second store on the same collection adopts it
    assert open_store("recorded", FakeEmbedder("my-model", dimensions=48), metric="IP").ensure_dimension() == 48


def test_other_dimension_or_metric_is_refused_before_any_write(open_store: Callable[..., MilvusStore]) -> None:
    good = open_store("guarded")
    good.add_texts(["first text", "second text"])
    assert good.count() == 2

    wrong = FakeEmbedder(dimensions=32)
    with pytest.raises(DimensionMismatchError) as err:
        open_store("guarded", wrong).add_texts(["third text"])
    assert (err.value.expected, err.value.actual, err.value.where) == (DIM, 32, "guarded")
    assert "64" in str(err.value) and "32" in str(err.value) and "'guarded'" in str(err.value)
    assert wrong.calls == []  # refused before embedding, so before writing
    with pytest.raises(DimensionMismatchError):
        open_store("guarded", FakeEmbedder(dimensions=32)).search("first text")

    l2_emb = FakeEmbedder(dimensions=DIM)
    with pytest.raises(ConfigurationError) as cerr:
        open_store("guarded", l2_emb, metric="L2").add_texts(["third text"])
    msg = str(cerr.value)
    assert "'guarded'" in msg and "COSINE" in msg and "L2" in msg
    assert l2_emb.calls == []
    assert good.count() == 2


@pytest.mark.parametrize(
    ("case", "texts", "ids", "metadatas", "error", "needle"),
    [
        ("oversize text", ["ok one", "x" * 65536, "ok two"], ["a", "big", "c"], None, InvalidInputError,
         "'big'"),
        ("oversize multibyte text", ["ok one", "数" * 22000], ["a", "zh"], None, InvalidInputError,
         "66000 bytes"),
        ("unserialisable metadata", ["ok one", "ok two"], ["a", "b"], [{"k": 1}, {"when": object()}],
         InvalidInputError, "'b'"),
    ],
)
def test_bad_inputs_write_nothing(
    open_store: Callable[..., MilvusStore],
    case: str, texts: list[Any], ids: list[str] | None, metadatas: Any, error: type[Exception], needle: str,
) -> None:
    """Each case puts one bad item (named in ``case``) among good ones, with a write batch of one record
    so that a store writing batch by batch would have written the good items before it."""
    emb = FakeEmbedder(dimensions=DIM)
    store = open_store("badinputs", emb, write_batch_size=1)
    store.add_texts(["already here"])
    with pytest.raises(error) as err:
        store.add_texts(texts, ids=ids, metadatas=metadatas)
    assert needle in str(err.value), case
    assert store.count() == 1, case
    good_ids = ids or [content_id(t) for t in texts if isinstance(t, str)]
    assert store.existing_ids(good_ids) == set(), case


def test_oversize_text_limit_follows_the_collection(open_store: Callable[..., MilvusStore]) -> None:
    """A text over a collection's own (smaller) VARCHAR limit is refused by a store opened with defaults."""
    open_store("small_text", text_max_length=100).ensure_collection()
    store = open_store("small_text")
    with pytest.raises(InvalidInputError) as err:
        store.add_texts(["short", "y" * 101], ids=["s", "long"])
    assert err.value.item_id == "long" and "at most 100" in str(err.value)
    assert store.count() == 0
    store.add_texts(["y" * 100], ids=["fits"])
    assert store.count() == 1


def test_expression_and_dict_filters(open_store: Callable[..., MilvusStore]) -> None:
    store = open_store("meta")
    texts = ["the red apple", "the green apple", "a red car", "a blue car"]
    metas = [{"kind": "fruit", "n": 1}, {"kind": "fruit", "n": 2}, {"kind": "car", "n": 3}, {"kind": "car", "n": 4}]
    ids = store.add_texts(texts, ids=["r-apple", "g-apple", "r-car", "b-car"], metadatas=metas)
    assert ids == ["r-apple", "g-apple", "r-car", "b-car"]

    hits = store.search("red apple", top_k=4)
    assert hits[0].id == "r-apple" and hits[0].metadata == {"kind": "fruit", "n": 1}
    assert {h.id for h in hits} == set(ids)

    cars = store.search("red apple", top_k=4, filter='metadata["kind"] == "car"')
    assert {h.id for h in cars} == {"r-car", "b-car"}
    assert cars[0].id == "r-car"
    picked = store.search("apple", top_k=4, filter={"n": [2, 4]})
    assert {h.id for h in picked} == {"g-apple", "b-car"}
    assert [h.id for h in store.search("car", top_k=4, filter={"kind": "fruit", "n": 1})] == ["r-apple"]



def test_query_instruction_is_applied_to_search_only(open_store: Callable[..., MilvusStore]) -> None:
    emb = FakeEmbedder(dimensions=DIM, query_instruction=INSTRUCTION)
    store = open_store("instructed", emb)
    store.add_texts(["Paris is the capital of France"])
    assert emb.calls[-1] == ["Paris is the capital of France"]
    hits = store.search("capital of France", top_k=1)
    assert emb.calls[-1] == [f"Instruct: {INSTRUCTION}\nQuery:capital of France"]
    expected = float(emb.embed_documents(["Paris is the capital of France"])[0] @ emb.embed_query("capital of France"))
    assert hits[0].score == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("metric", ["COSINE", "IP", "L2"])
def test_scores_match_numpy_for_each_metric(open_store: Callable[..., MilvusStore], metric: str) -> None:
    emb = FakeEmbedder(dimensions=DIM)
    store = open_store(f"metric_{metric.lower()}", emb, metric=metric)
    texts = corpus(150, prefix=metric)
    ids = store.add_texts(texts)
    q = "milvus vector alpha number 12"
    ref = emb.embed_documents(texts) @ emb.embed_query(q)
    order = np.argsort(-ref)[:5]
    hits = store.search(q, top_k=5)
    assert [h.id for h in hits] == [ids[i] for i in order]
    np.testing.assert_allclose([h.score for h in hits], ref[order], atol=1e-4)


async def test_async_twins_use_the_async_client(open_store: Callable[..., MilvusStore]) -> None:
    emb = FakeEmbedder(dimensions=DIM)
    store = open_store("async", emb)
    texts = corpus(300, prefix="async")
    ids = await store.aadd_texts(texts, metadatas=[{"i": i} for i in range(300)])
    assert store._aclients, "the AsyncMilvusClient was not used"
    assert ids == [content_id(t) for t in texts]
    assert await store.acount() == 300
    assert store.count() == 300
    hits = await store.asearch(texts[42], top_k=2, filter={"i": [42, 43]})
    assert [h.id for h in hits][0] == ids[42] and {h.id for h in hits} == {ids[42], ids[43]}
    assert hits[0].metadata == {"i": 42}
    sync_hits = store.search(texts[42], top_k=2, filter={"i": [42, 43]})
    assert [(h.id, round(h.score, 5)) for h in hits] == [(h.id, round(h.score, 5)) for h in sync_hits]
    await store.adelete(ids[:10])
    assert await store.acount() == 290
    assert await store.aensure_dimension() == DIM
    await store.aclose()
    assert not store._aclients


def test_existing_client_is_used_and_left_open(db_path: Path) -> None:
    client = pymilvus.MilvusClient(str(db_path))
    store = MilvusStore(client, "shared_client", FakeEmbedder(dimensions=DIM))
    assert store.client is client
    store.add_texts(["via a client"])
    store.close()
    res = client.query("shared_client", filter="", output_fields=["count(*)"])
    assert res[0]["count(*)"] == 1
    assert "shared_client" in client.list_collections()
    client.close()


def test_milvus_rows_for_users_who_insert_themselves(open_store: Callable[..., MilvusStore]) -> None:
    emb = FakeEmbedder(dimensions=DIM)
    store = open_store("manual", emb)
    store.ensure_collection()
    texts = ["inserted by hand", "also by hand"]
    vectors = emb.embed_documents(texts).astype(np.float64)  # float64 in, float32 rows out
    rows = milvus_rows(["h1", "h2"], vectors, texts, [{"src": "me"}, None], dim=DIM)
    assert rows[0]["vector"].dtype == np.float32 and rows[1]["metadata"] == {}
    assert store.client.insert("manual", rows)["insert_count"] == 2
    hits = store.search("inserted by hand", top_k=1)
    assert (hits[0].id, hits[0].metadata) == ("h1", {"src": "me"})
    with pytest.raises(DimensionMismatchError):
        milvus_rows(["x"], np.ones((1, 8)), dim=DIM)
    with pytest.raises(InvalidInputError, match="row 1"):
        milvus_rows(["x", "y"], np.array([[1.0] * DIM, [np.nan] * DIM]), dim=DIM)


def test_failed_batch_reports_ids_and_rerun_completes(
    open_store: Callable[..., MilvusStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store("partial", write_batch_size=10)
    texts = corpus(30, prefix="partial")
    real_upsert = store.client.upsert
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise pymilvus.MilvusException(message="injected failure")
        return real_upsert(*args, **kwargs)

    monkeypatch.setattr(store.client, "upsert", flaky)
    with pytest.raises(WriteError) as err:
        store.add_texts(texts)
    ids = [content_id(t) for t in texts]
    assert err.value.written_ids == ids[:10]
    assert err.value.failed_ids == ids[10:]
    assert store.count() == 10
    assert store.existing_ids(ids) == set(ids[:10])
    store.add_texts(texts)
    assert store.count() == 30


def test_reopen_after_restart_loads_the_collection(db_path: Path, open_store: Callable[..., MilvusStore]) -> None:
    """The Lite server is stopped and started again from disk: the collection comes back released and
    the store loads it before counting and searching."""
    first = open_store("persisted")
    texts = corpus(20, prefix="persist")
    ids = first.add_texts(texts, metadatas=[{"i": i} for i in range(20)])
    first.close()
    release_lite(db_path)

    again = open_store("persisted")
    assert again.count() == 20
    assert again.search(texts[7], top_k=1)[0].id == ids[7]
    info = again.client.describe_collection("persisted")
    assert json.loads(json.dumps(info["properties"]))[PROP_DIMENSION] == str(DIM)


def test_count_and_delete_on_a_missing_collection(open_store: Callable[..., MilvusStore]) -> None:
    store = open_store("never_created", FakeEmbedder(dimensions=16))
    assert store.count() == 0
    store.delete(["a"])
    assert not store.client.has_collection("never_created")


def test_collection_made_by_another_tool_is_refused_clearly(open_store: Callable[..., MilvusStore]) -> None:
    """Bad input: a collection from pymilvus's quick setup (INT64 ids, dynamic fields, no text/metadata)."""
    store = open_store("quick_setup")
    store.client.create_collection("quick_setup", dimension=DIM)
    emb = FakeEmbedder(dimensions=DIM)
    other = open_store("quick_setup", emb)
    with pytest.raises(ConfigurationError, match="has no field 'text'"):
        other.add_texts(["x"])
    assert emb.calls == []
    assert other.count() == 0


def test_collection_with_int64_ids_is_refused_clearly(open_store: Callable[..., MilvusStore]) -> None:
    """Bad input: a collection with every field name right but an INT64 primary key."""
    store = open_store("int_ids")
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
    schema.add_field("text", pymilvus.DataType.VARCHAR, max_length=1000)
    schema.add_field("metadata", pymilvus.DataType.JSON)
    schema.add_field("vector", pymilvus.DataType.FLOAT_VECTOR, dim=DIM)
    index = store.client.prepare_index_params()
    index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
    store.client.create_collection("int_ids", schema=schema, index_params=index)
    with pytest.raises(ConfigurationError, match="'id' is INT64, this store needs VARCHAR"):
        store.add_texts(["x"])
    assert store.count() == 0


def test_lite_alloc_timestamp_noise_is_dropped_and_other_errors_pass(
    open_store: Callable[..., MilvusStore], caplog: pytest.LogCaptureFixture
) -> None:
    """Milvus Lite's gRPC server logs an ERROR traceback for every AllocTimestamp call pymilvus makes;
    the store drops exactly that record and lets every other grpc._server record through."""
    import logging

    caplog.set_level(logging.ERROR, logger="grpc._server")
    store = open_store("noise", FakeEmbedder(dimensions=16))
    store.add_texts(["quiet please", "no tracebacks"])
    assert store.search("quiet", top_k=1)[0].text == "quiet please"
    assert not [r for r in caplog.records if r.name == "grpc._server"]

    grpc_logger = logging.getLogger("grpc._server")
    try:
        raise NotImplementedError("Method not implemented!")  # not from AllocTimestamp
    except NotImplementedError:
        grpc_logger.exception("Exception calling application: other method")
    grpc_logger.error("a real server error")
    assert [r.getMessage() for r in caplog.records if r.name == "grpc._server"] == [
        "Exception calling application: other method",
        "a real server error",
    ]


# ---------------------------------------------------------------------------- keyword search (issue 32)
class TestMilvusLiteKeyword(NativeKeywordChecks):
    """Keyword and hybrid search through Milvus's BM25 function on Milvus Lite."""

    @pytest.fixture
    def open_store(self, open_store: Callable[..., MilvusStore]) -> OpenStore:  # type: ignore[override]
        name = unique_name("kw").replace("-", "_")
        return lambda embedder: open_store(name, embedder)


def test_a_new_collection_has_the_bm25_function_over_the_text(open_store: Callable[..., MilvusStore]) -> None:
    store = open_store("kw_schema")
    store.add_texts(["机器学习"])
    info = store.client.describe_collection("kw_schema")
    text = next(f for f in info["fields"] if f["name"] == "text")
    assert text["params"]["enable_analyzer"] in (True, "true")
    analyzer = text["params"]["analyzer_params"]
    assert (json.loads(analyzer) if isinstance(analyzer, str) else analyzer) == DEFAULT_ANALYZER
    sparse_field = next(f for f in info["fields"] if f["name"] == "text_bm25")
    assert sparse_field["type"] == pymilvus.DataType.SPARSE_FLOAT_VECTOR
    [fn] = info["functions"]
    assert (fn["type"], fn["input_field_names"], fn["output_field_names"]) == (
        pymilvus.FunctionType.BM25, ["text"], ["text_bm25"])
    [index_name] = store.client.list_indexes("kw_schema", field_name="text_bm25")
    assert store.client.describe_index("kw_schema", index_name)["metric_type"] == "BM25"


def test_a_collection_without_bm25_refuses_keyword_search_naming_why(open_store: Callable[..., MilvusStore]) -> None:
    old = open_store("kw_off", keyword=False)
    old.add_texts(["数据库"], ids=["a"])
    assert not old.client.describe_collection("kw_off").get("functions")
    assert [h.id for h in old.search("数据库")] == ["a"]  # dense search is unchanged
    for mode in ("keyword", "hybrid"):
        with pytest.raises(ConfigurationError, match="has no BM25 function over field 'text'.*ingest into a new collection"):
            old.search("数据库", mode=mode)
    # the collection decides, not the setting
    with pytest.raises(ConfigurationError, match="has no BM25 function"):
        open_store("kw_off").search("数据库", mode="keyword")


def test_a_refused_hybrid_search_embeds_and_searches_nothing(open_store: Callable[..., MilvusStore],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The refusal is only known by asking the engine (no BM25 function on this collection): a sync hybrid
    # search asks before it embeds the query or runs the vector search; the async one cancels its dense side.
    old = open_store("kw_off_hybrid", keyword=False)
    old.add_texts(["数据库"], ids=["a"])
    calls: list[str] = []
    monkeypatch.setattr(old, "_search_vector", lambda *a: calls.append("vector") or [])
    monkeypatch.setattr(old, "ensure_space", lambda **kw: calls.append("space"))
    with pytest.raises(ConfigurationError, match="has no BM25 function"):
        old.search("数据库", mode="hybrid")
    assert calls == []
    with pytest.raises(ConfigurationError, match="has no BM25 function"):
        asyncio.run(old.asearch("数据库", mode="hybrid"))


def test_a_server_before_2_5_gets_no_bm25_and_keyword_search_says_so(
    open_store: Callable[..., MilvusStore], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Milvus standalone 2.3.5 (the Docker tier) has no BM25 function; its version is what decides.
    store = open_store("kw_old_server")
    monkeypatch.setattr(store, "server_version", lambda: "v2.3.5")
    with caplog.at_level("WARNING", logger="qwen_embed_adapters.adapters.milvus"):
        store.add_texts(["数据库"], ids=["a"])
    assert "Milvus server v2.3.5 has no BM25 function (Milvus 2.5+)" in caplog.text
    assert not store.client.describe_collection("kw_old_server").get("functions")
    with pytest.raises(ConfigurationError, match=r"Milvus server v2\.3\.5 has no BM25 function \(it came with Milvus 2\.5\)"):
        store.search("数据库", mode="hybrid")


def test_lite_keyword_search_flushes_once_after_writes(open_store: Callable[..., MilvusStore],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store("kw_flush")
    store.add_texts(["数据库", "公园"], ids=["a", "b"])
    flushed: list[str] = []
    real = store.client.flush
    monkeypatch.setattr(store.client, "flush", lambda name, **kw: (flushed.append(name), real(name, **kw))[1])
    assert [h.id for h in store.search("数据库", mode="keyword")] == ["a"]
    assert [h.id for h in store.search("公园", mode="keyword")] == ["b"]
    assert flushed == ["kw_flush"]  # once: rows written since are the only reason to flush again
    store.delete(["a"])
    assert store.search("数据库", mode="keyword") == []
    assert flushed == ["kw_flush", "kw_flush"]


# ---------------------------------------------------------------------------- compact vectors (issue 32)
QUERIES = ["milvus alpha river", "机器学习 number 42", "cosine stone paper", "qwen garden lamp 7"]


def _spy_search(store: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every client.search call the store makes from now on."""
    calls: list[dict[str, Any]] = []
    real = store.client.search
    monkeypatch.setattr(store.client, "search", lambda *a, **kw: (calls.append(kw), real(*a, **kw))[1])
    return calls


def _indexed(store: MilvusStore) -> None:
    """The rows out of Milvus Lite's memtable (searched by brute force over the float vectors) into a segment
    with its vector index built."""
    assert store.settings.uri is not None
    index_lite(store.client, store.settings.uri, store.collection)


def _int8_store(open_store: Callable[..., MilvusStore], name: str, n: int = 300) -> tuple[MilvusStore, np.ndarray, list[str]]:
    store = open_store(name, precision="int8", rescore=4)
    texts, ids = corpus(n), [f"d{i}" for i in range(n)]
    store.add_texts(texts, ids=ids)
    _indexed(store)
    return store, store.embedder.embed_documents(texts), ids


def _exact(store: MilvusStore, docs: np.ndarray, ids: list[str], query: str, top_k: int) -> tuple[list[str], np.ndarray]:
    scores = docs @ store.embedder.embed_query(query)
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [ids[i] for i in order], scores[order]


def test_int8_on_lite_is_an_hnsw_sq_index_rescored_to_the_float_cosine(
    open_store: Callable[..., MilvusStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, docs, ids = _int8_store(open_store, "int8_lite")
    info = store.client.describe_collection("int8_lite")
    assert info["properties"][PROP_PRECISION] == "int8"
    [index_name] = store.client.list_indexes("int8_lite", field_name="vector")
    assert store.client.describe_index("int8_lite", index_name)["index_type"] == "HNSW_SQ"
    # the index alone answers with 8-bit distances: not the float cosines
    q = store.embedder.embed_query(QUERIES[0])
    raw = store.client.search("int8_lite", data=[q], limit=5, anns_field="vector", search_params={"metric_type": "COSINE"})
    raw_ids = [str(h["id"]) for h in raw[0]]
    raw_err = max(abs(float(h["distance"]) - float(docs[ids.index(i)] @ q)) for h, i in zip(raw[0], raw_ids, strict=True))
    assert raw_err > 1e-5
    calls = _spy_search(store, monkeypatch)
    for query in QUERIES:
        want_ids, want_scores = _exact(store, docs, ids, query, 5)
        hits = store.search(query, top_k=5)
        assert [h.id for h in hits] == want_ids
        np.testing.assert_allclose([h.score for h in hits], want_scores, atol=1e-5)  # float32 arithmetic
    # rescore 4 x top_k 5 candidates, with their float vectors; the graph's list holds them all
    assert calls[-1]["limit"] == 20 and calls[-1]["output_fields"] == ["text", "metadata", "vector"]
    assert calls[-1]["search_params"] == {"metric_type": "COSINE", "params": {"ef": 64}}
    # the stored vectors are the float ones written, not their codes
    row = store.client.get("int8_lite", ids=["d7"], output_fields=["vector"])[0]
    np.testing.assert_array_equal(np.asarray(row["vector"], dtype=np.float32), docs[7])


@pytest.mark.asyncio
async def test_int8_async_search_rescores_like_sync(open_store: Callable[..., MilvusStore]) -> None:
    store, docs, ids = _int8_store(open_store, "int8_async", n=120)
    again = open_store("int8_async")  # no precision asked: the recorded one, found before the first search
    for query in QUERIES[:2]:
        sync_hits = store.search(query, top_k=4)
        async_hits = await again.asearch(query, top_k=4)
        assert again.precision == "int8"
        assert [h.id for h in async_hits] == [h.id for h in sync_hits] == _exact(store, docs, ids, query, 4)[0]
        np.testing.assert_allclose([h.score for h in async_hits], [h.score for h in sync_hits], atol=1e-6)


def test_int8_on_a_server_before_2_5_is_ivf_sq8_rescored_here(
    open_store: Callable[..., MilvusStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Milvus standalone 2.3.5 has IVF_SQ8 but no HNSW_SQ: the server version decides (Lite builds both). Lite
    # trains min(nlist, rows) cells (milvus_lite/index/faiss_ivf_sq8.py): 16 rows, 16 cells, and nprobe 16
    # visits them all, so what is checked is the rescoring of 8-bit candidates, not IVF's recall.
    store = open_store("int8_old", precision="int8")
    monkeypatch.setattr(store, "server_version", lambda: "v2.3.5")
    texts, ids = corpus(16), [f"d{i}" for i in range(16)]
    store.add_texts(texts, ids=ids)
    _indexed(store)
    [index_name] = store.client.list_indexes("int8_old", field_name="vector")
    assert store.client.describe_index("int8_old", index_name)["index_type"] == "IVF_SQ8"
    calls = _spy_search(store, monkeypatch)
    docs = store.embedder.embed_documents(texts)
    for query in QUERIES:
        want_ids, want_scores = _exact(store, docs, ids, query, 3)
        hits = store.search(query, top_k=3)
        assert [h.id for h in hits] == want_ids
        np.testing.assert_allclose([h.score for h in hits], want_scores, atol=1e-5)
    assert calls[-1]["limit"] == 12 and calls[-1]["search_params"] == {"metric_type": "COSINE", "params": {"nprobe": 16}}


def test_int8_on_milvus_2_5_asks_the_engine_to_refine(
    open_store: Callable[..., MilvusStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Milvus 2.5+: HNSW_SQ built with refine (FP32) re-ranks refine_k x limit candidates itself, so the search
    # asks for top_k rows with refine_k = rescore and no vectors. Milvus Lite ignores the refine params: only
    # the requests are checked here (no Milvus 2.5+ server runs in these tests).
    store = open_store("int8_refine", precision="int8", rescore=5)
    monkeypatch.setattr(store, "server_version", lambda: "v2.5.4")
    store.add_texts(corpus(50), ids=[f"d{i}" for i in range(50)])
    assert store._compact_index == ("HNSW_SQ", True, 0)
    calls = _spy_search(store, monkeypatch)
    hits = store.search(QUERIES[0], top_k=3)
    assert len(hits) == 3
    assert calls[-1]["limit"] == 3 and calls[-1]["output_fields"] == ["text", "metadata"]
    assert calls[-1]["search_params"] == {"metric_type": "COSINE", "params": {"ef": 64, "refine_k": 5.0}}


def test_a_collection_without_a_recorded_precision_is_float32(open_store: Callable[..., MilvusStore]) -> None:
    # a collection written before precisions existed has no PROP_PRECISION property: it is float32
    old = open_store("int8_legacy")
    old.add_texts(["written before precisions"], ids=["a"])
    old.client.drop_collection_properties("int8_legacy", property_keys=[PROP_PRECISION])
    assert PROP_PRECISION not in old.client.describe_collection("int8_legacy")["properties"]
    assert open_store("int8_legacy").search("written before precisions", top_k=1)[0].id == "a"
    # bad input tried: int8 asked of that float32 collection
    with pytest.raises(ConfigurationError, match="'int8_legacy' was created with precision='float32'; it cannot be "
                                                 "opened with precision='int8'"):
        open_store("int8_legacy", precision="int8").add_texts(["more"])


@pytest.mark.parametrize("metric", ["IP", "L2"])
def test_int8_rescoring_scores_like_float32_for_each_metric(open_store: Callable[..., MilvusStore], metric: str) -> None:
    # the rescored score is the one a float32 collection of that metric gives (L2: 1 - d2 / 2)
    texts = corpus(40)
    exact = open_store(f"f32_{metric.lower()}", metric=metric, index_type="FLAT")
    compact = open_store(f"int8_{metric.lower()}", metric=metric, precision="int8", rescore=10)
    exact.add_texts(texts, ids=[f"d{i}" for i in range(40)])
    compact.add_texts(texts, ids=[f"d{i}" for i in range(40)])
    _indexed(compact)
    for query in QUERIES:
        want, got = exact.search(query, top_k=4), compact.search(query, top_k=4)
        assert [h.id for h in got] == [h.id for h in want]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-5)
