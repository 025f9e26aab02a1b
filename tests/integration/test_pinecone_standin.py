"""Pinecone, CI tier: the real ``pinecone`` 10.2 SDK over real HTTP to ``tests/support/pinecone_server``.

That server is a local stand-in for Pinecone's cloud (no real Pinecone can run here: the service is
remote and Pinecone Local needs Docker). It implements the control- and data-plane routes the SDK
sends, enforces Pinecone's limits and records every request, so these tests assert what went over
the wire. The same checks against Pinecone Local and the live service are in
test_pinecone_docker.py and test_pinecone_live.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import numpy as np
import pytest

pinecone = pytest.importorskip("pinecone")

from qwen_embed_adapters.adapters import sparse  # noqa: E402
from qwen_embed_adapters.adapters.base import content_id  # noqa: E402
from qwen_embed_adapters.adapters.pinecone import SPACE_CARD_NAMESPACE, PineconeStore  # noqa: E402
from qwen_embed_adapters.errors import (  # noqa: E402
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    WriteError,
)
from qwen_embed_adapters.testing import FakeEmbedder  # noqa: E402
from qwen_embed_adapters.testing.contract import OpenStore, StoreContract, unique_name  # noqa: E402
from tests.support.keyword_checks import NativeKeywordChecks  # noqa: E402
from tests.support.pinecone_scenario import CORPUS, run_store_scenario  # noqa: E402
from tests.support.pinecone_server import MAX_REQUEST_BYTES, PineconeServer  # noqa: E402

pytestmark = pytest.mark.integration

SECRET = "pc-SECRET-key-0123456789"
INSTRUCTION = "Find the passage that answers the question"


@pytest.fixture
def server() -> Any:
    with PineconeServer(api_key=SECRET) as srv:
        yield srv


@pytest.fixture
def pc(server: PineconeServer) -> Any:
    client = pinecone.Pinecone(api_key=SECRET, host=server.host)
    yield client
    client.close()


def _store(pc: Any, name: str = "docs", dim: int = 64, **kw: Any) -> PineconeStore:
    return PineconeStore.create(pc, name, FakeEmbedder(dimensions=dim, query_instruction=INSTRUCTION), **kw)


class TestPineconeStandinContract(StoreContract):
    """The shared store contract (qwen_embed_adapters.testing.contract) through the real ``pinecone`` SDK
    against tests/support/pinecone_server.py, the stand-in for Pinecone's cloud."""

    @pytest.fixture
    def open_store(self, pc: Any) -> OpenStore:
        name = unique_name("contract")
        return lambda embedder, **kw: PineconeStore.create(pc, name, embedder, **kw)

    refused_precisions = ("int8", "binary")  # Pinecone offers its clients no quantization setting


def _card_request(r: Any) -> bool:
    """A request of the space card's (its reserved namespace), not of the user's data."""
    where = r.body if isinstance(r.body, dict) else {}
    ns = where.get("namespace", (r.params or {}).get("namespace"))
    ns = ns[0] if isinstance(ns, list) and ns else ns
    return bool(ns == SPACE_CARD_NAMESPACE)


def _data_requests(server: PineconeServer, path: str) -> list[Any]:
    return [r for r in server.requests_to(path) if not _card_request(r)]


def _upsert_bodies(server: PineconeServer) -> list[dict[str, Any]]:
    return [r.body for r in _data_requests(server, "/vectors/upsert") if r.status == 200]


def test_the_space_card_lives_in_its_own_namespace(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: the first write records one card record per user namespace in the
    reserved namespace; the user's namespace holds exactly the user's texts; a second store on the same
    index and namespace reads the card back (a fetch) instead of writing a new one."""
    store = _store(pc, dim=32, namespace="kb")
    store.add_texts(["alpha", "beta"])
    cards = [r.body for r in server.requests_to("/vectors/upsert") if _card_request(r)]
    assert len(cards) == 1 and [v["id"] for v in cards[0]["vectors"]] == ["card:kb"]
    assert json.loads(cards[0]["vectors"][0]["metadata"]["card"])["dimension"] == 32
    assert store.count() == 2 and {h.text for h in store.search("alpha", top_k=5)} == {"alpha", "beta"}
    again = PineconeStore(store.index, FakeEmbedder(dimensions=32, query_instruction=INSTRUCTION), namespace="kb",
                          name="docs")
    again.add_texts(["gamma"])
    assert len([r for r in server.requests_to("/vectors/upsert") if _card_request(r)]) == 1
    assert again.space_card is not None and again.space_card.fingerprint == store.space_card.fingerprint


def _assert_float_lists(values: Any, dim: int) -> None:
    assert isinstance(values, list) and len(values) == dim
    assert all(type(v) is float for v in values)  # JSON numbers with a fraction, as Python floats
    # float32 values widened exactly: no float64 arithmetic on the way
    assert all(float(np.float32(v)) == v for v in values)


def test_scenario_ids_counts_nearest_and_dimension_error(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: ids, counts, nearest results, filter, delete and the
    dimension error, as the Docker and live tiers check them."""
    store = _store(pc, namespace="scenario")
    wrong = PineconeStore(pc.Index(host=pc.describe_index("docs").host), FakeEmbedder(dimensions=32),
                          namespace="scenario", name="docs")
    run_store_scenario(store, wrong)
    assert all(b["namespace"] == "scenario" for b in _upsert_bodies(server))


def test_create_sends_2026_07_body_with_dimension_metric_and_tags(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: create() sends the SDK 10 create body with the embedder's
    dimension, the metric and the serverless deployment, and records the model in tags."""
    store = PineconeStore.create(pc, "created", FakeEmbedder(dimensions=48), metric="dotproduct",
                                 cloud="gcp", region="europe-west4")
    (create,) = server.requests_to("/indexes", plane="control")
    assert create.method == "POST"
    assert create.headers["x-pinecone-api-version"] == "2026-07"
    assert create.headers["api-key"] == SECRET
    assert create.body["name"] == "created"
    assert create.body["schema"] == {
        "fields": {"_values": {"type": "dense_vector", "dimension": 48, "metric": "dotproduct"}}
    }
    assert create.body["deployment"] == {"deployment_type": "managed", "cloud": "gcp", "region": "europe-west4"}
    assert create.body["tags"] == {"embedding_model": "fake-embedding", "embedding_dim": "48"}
    assert store.dimension == 48 and store.metric == "dotproduct"
    assert server.indexes["created"].dimension == 48
    # Opening it again reads it back and creates nothing.
    again = PineconeStore.create(pc, "created", FakeEmbedder(dimensions=48), metric="dotproduct")
    assert again.dimension == 48
    assert len([r for r in server.requests_to("/indexes", plane="control") if r.method == "POST"]) == 1


def test_existing_index_with_other_dimension_raises_before_any_write(server: PineconeServer, pc: Any) -> None:
    """Bad input: an existing 32-d index opened with a 64-d embedder. Stand-in for Pinecone's cloud:
    DimensionMismatchError names both numbers and the index, and nothing reaches the data plane."""
    server.add_index("legacy", dimension=32)
    with pytest.raises(DimensionMismatchError) as err:
        _store(pc, "legacy", dim=64)
    assert (err.value.expected, err.value.actual, err.value.where) == (32, 64, "legacy")
    assert "32" in str(err.value) and "64" in str(err.value) and "'legacy'" in str(err.value)
    assert [r for r in server.requests if r.plane == "legacy"] == []
    assert not [r for r in server.requests_to("/indexes") if r.method == "POST"]


def test_handle_with_other_dimension_raises_before_upsert(server: PineconeServer, pc: Any) -> None:
    """Bad input: a store over a bare 32-d index handle with a 16-d embedder. Stand-in for Pinecone's
    cloud: the dimension is read from describe_index_stats and no upsert is sent."""
    ix = server.add_index("bare", dimension=32)
    store = PineconeStore(pc.Index(host=ix.host), FakeEmbedder(dimensions=16))
    with pytest.raises(DimensionMismatchError) as err:
        store.add_texts(["a", "b"])
    assert (err.value.expected, err.value.actual) == (32, 16)
    assert [r.path for r in server.requests if r.plane == "bare"] == ["/describe_index_stats"]
    with pytest.raises(DimensionMismatchError):
        store.search("anything")
    assert not server.requests_to("/query")


def test_other_metric_raises_configuration_error(server: PineconeServer, pc: Any) -> None:
    """Bad input: metric="cosine" on an existing euclidean index. Stand-in for Pinecone's cloud."""
    server.add_index("euclid", dimension=64, metric="euclidean")
    with pytest.raises(ConfigurationError, match="'euclidean'.*'cosine'"):
        _store(pc, "euclid")


def test_wire_lists_of_float32_values_text_metadata_and_namespace(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: upserts carry lists of Python floats equal to the embedder's
    float32 vectors, the text under metadata ``text`` next to the user's metadata, the namespace."""
    store = _store(pc, namespace="wire")
    texts = ["first text", "second text", "third, with ünïcode"]
    ids = store.add_texts(texts, ids=["a", "b", "c"], metadatas=[{"src": "x.md"}, None, {"tags": ["p", "q"]}])
    assert ids == ["a", "b", "c"]
    (body,) = _upsert_bodies(server)
    assert body["namespace"] == "wire"
    expected = FakeEmbedder(dimensions=64).embed_documents(texts)
    for rec, text, vec in zip(body["vectors"], texts, expected, strict=True):
        _assert_float_lists(rec["values"], 64)
        np.testing.assert_array_equal(np.asarray(rec["values"], dtype=np.float32), vec)
        assert rec["metadata"]["text"] == text
    assert [r["id"] for r in body["vectors"]] == ["a", "b", "c"]
    assert body["vectors"][0]["metadata"] == {"src": "x.md", "text": "first text"}
    assert body["vectors"][1]["metadata"] == {"text": "second text"}
    assert body["vectors"][2]["metadata"] == {"tags": ["p", "q"], "text": "third, with ünïcode"}
    assert server.indexes["docs"].count("wire") == 3 and server.indexes["docs"].count("") == 0


def test_search_sends_a_list_uses_the_instruction_and_returns_hits(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: search embeds the query with the Qwen3 instruction, sends a
    list of floats with top_k, namespace, filter and include_metadata, and returns Hits."""
    store = _store(pc, namespace="q")
    store.add_texts(CORPUS, metadatas=[{"i": i} for i in range(len(CORPUS))])
    emb = store.embedder
    assert isinstance(emb, FakeEmbedder)
    hits = store.search("vector database for similarity search", top_k=2, filter={"i": {"$lt": 4}})
    assert emb.calls[-1] == [f"Instruct: {INSTRUCTION}\nQuery:vector database for similarity search"]
    (query,) = server.requests_to("/query")
    assert query.body["topK"] == 2 and query.body["namespace"] == "q"
    assert query.body["includeMetadata"] is True
    assert query.body["filter"] == {"i": {"$lt": 4}}
    _assert_float_lists(query.body["vector"], 64)
    np.testing.assert_array_equal(
        np.asarray(query.body["vector"], dtype=np.float32),
        emb.embed_query("vector database for similarity search"),
    )
    assert len(hits) == 2 and hits[0].id == content_id(CORPUS[0])
    assert hits[0].text == CORPUS[0] and hits[0].metadata == {"i": 0}
    assert all(h.metadata["i"] < 4 for h in hits)
    # the score is Pinecone's cosine of the two vectors
    ref = float(emb.embed_documents([CORPUS[0]])[0] @ emb.embed_query("vector database for similarity search"))
    assert hits[0].score == pytest.approx(ref, abs=1e-5)


def test_upserts_are_cut_at_1000_vectors(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: 2,500 small records in one write go out as 1000 + 1000 + 500."""
    store = _store(pc, dim=8, namespace="big")
    store.write_batch_size = 5000
    texts = [f"record number {i}" for i in range(2500)]
    ids = store.add_texts(texts)
    bodies = _upsert_bodies(server)
    assert [len(b["vectors"]) for b in bodies] == [1000, 1000, 500]
    assert [v["id"] for b in bodies for v in b["vectors"]] == ids
    assert store.count() == 2500
    assert all(r.size <= MAX_REQUEST_BYTES for r in server.requests_to("/vectors/upsert"))


def test_upserts_are_cut_at_2mb(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: 1024-d vectors with 4 KB texts, 300 in one write, go out in
    requests of at most 2 MB (the server refuses larger ones with 413), none lost."""
    store = _store(pc, dim=1024, namespace="wide")
    store.write_batch_size = 300
    texts = [f"{i:04d} " + "long text " * 400 for i in range(300)]
    store.add_texts(texts)
    reqs = _data_requests(server, "/vectors/upsert")
    assert len(reqs) > 1 and all(r.status == 200 for r in reqs)
    assert all(r.size <= 2_000_000 for r in reqs)
    assert max(r.size for r in reqs) > 1_500_000  # batches are filled, not cut needlessly small
    assert sum(len(r.body["vectors"]) for r in reqs) == 300
    assert store.count() == 300


def test_server_enforces_the_limits_the_adapter_respects(server: PineconeServer, pc: Any) -> None:
    """Bad input sent with the raw SDK (1,001 vectors; a 2.1 MB body; a wrong width; 41 KB of
    metadata; NaN): the stand-in for Pinecone's cloud refuses each, so the adapter tests above
    would fail if the adapter broke a limit."""
    ix = server.add_index("raw", dimension=4)
    index = pc.Index(host=ix.host)
    with pytest.raises(pinecone.ApiError, match="exceeds the maximum of 1000"):
        index.upsert(vectors=[(f"v{i}", [0.1, 0.2, 0.3, 0.4]) for i in range(1001)])
    with pytest.raises(pinecone.PayloadTooLargeError, match="exceeds the maximum supported size"):
        index.upsert(vectors=[(f"v{i}", [0.1] * 4, {"t": "x" * 30_000}) for i in range(70)])
    with pytest.raises(pinecone.ApiError, match="Vector dimension 3 does not match the dimension of the index 4"):
        index.upsert(vectors=[("v", [0.1, 0.2, 0.3])])
    with pytest.raises(pinecone.ApiError, match="exceeds the limit of 40960 bytes"):
        index.upsert(vectors=[("v", [0.1] * 4, {"t": "x" * 41_000})])
    with pytest.raises(pinecone.ApiError, match="values must be numbers"):
        index.upsert(vectors=[("v", [float("nan"), 0.1, 0.2, 0.3])])
    assert ix.count() == 0


def test_metadata_over_40kb_raises_naming_the_id_before_sending(server: PineconeServer, pc: Any) -> None:
    """Bad input: the 4th of 6 texts is 41,000 characters (over 40 KB of metadata). InvalidInputError
    names its id and index; the stand-in for Pinecone's cloud received no upsert at all."""
    store = _store(pc)
    texts = [f"small {i}" for i in range(6)]
    texts[3] = "x" * 41_000
    ids = [f"doc-{i}" for i in range(6)]
    with pytest.raises(InvalidInputError, match="'doc-3'.*40960 bytes") as err:
        store.add_texts(texts, ids=ids)
    assert err.value.item_id == "doc-3" and err.value.index == 3
    assert server.requests_to("/vectors/upsert") == []


@pytest.mark.parametrize(
    ("meta", "why"),
    [
        ({"nested": {"a": 1}}, "strings, numbers, booleans or lists of strings"),
        ({"none": None}, "strings, numbers, booleans or lists of strings"),
        ({"nums": [1, 2]}, "strings, numbers, booleans or lists of strings"),
        ({"text": "mine"}, "holds the text itself"),
    ],
)
def test_metadata_pinecone_refuses_is_caught_before_sending(
    server: PineconeServer, pc: Any, meta: dict[str, Any], why: str
) -> None:
    """Bad input: metadata Pinecone refuses (a nested object, null, a list of numbers, a user key
    ``text``) on the 2nd record. Stand-in for Pinecone's cloud: nothing is sent."""
    store = _store(pc)
    with pytest.raises(InvalidInputError, match=why) as err:
        store.add_texts(["one", "two"], ids=["i1", "i2"], metadatas=[{}, meta])
    assert err.value.item_id == "i2"
    assert server.requests_to("/vectors/upsert") == []


def test_non_ascii_id_is_refused_before_sending(server: PineconeServer, pc: Any) -> None:
    """Bad input: an id with a non-ASCII character. Stand-in for Pinecone's cloud: nothing sent."""
    store = _store(pc)
    with pytest.raises(InvalidInputError, match="ASCII") as err:
        store.add_texts(["one", "two"], ids=["ok", "naïve"])
    assert err.value.item_id == "naïve"
    assert server.requests_to("/vectors/upsert") == []


def test_failed_request_raises_with_ids_not_written_and_rerun_completes(
    server: PineconeServer, pc: Any
) -> None:
    """Stand-in for Pinecone's cloud: the 2nd of 3 upsert requests fails with a 400. WriteError
    lists exactly the ids of requests 2 and 3 as not written and those of request 1 as written;
    the index holds request 1 only; re-running the same call stores the rest."""
    store = _store(pc, dim=8)
    store.write_batch_size = 5000
    ids = [f"id-{i:04d}" for i in range(2500)]
    texts = [f"text {i}" for i in range(2500)]
    server.fail("upsert", status=400, message="simulated refusal",
                when=lambda body: body["vectors"][0]["id"] == "id-1000")
    with pytest.raises(WriteError) as err:
        store.add_texts(texts, ids=ids)
    assert err.value.written_ids == ids[:1000]
    assert err.value.failed_ids == ids[1000:]
    assert "simulated refusal" in str(err.value) and SECRET not in str(err.value)
    assert store.count() == 1000
    store.add_texts(texts, ids=ids)
    assert store.count() == 2500


def test_failure_in_a_later_base_batch_keeps_earlier_batches(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: with the default write batch (256 records), a refused upsert of
    the batch holding record 600 reports records 0-511 written and 512-699 not written."""
    store = _store(pc, dim=8)
    ids = [f"r{i}" for i in range(700)]
    server.fail("upsert", status=400, message="refused", when=lambda body: "r600" in {v["id"] for v in body["vectors"]})
    with pytest.raises(WriteError) as err:
        store.add_texts([f"t{i}" for i in range(700)], ids=ids)
    assert err.value.written_ids == ids[:512]
    assert err.value.failed_ids == ids[512:]
    assert server.indexes["docs"].count() == 512


def test_retryable_503_is_retried_by_the_sdk(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: one 503 on upsert; the SDK retries the same body and the
    write succeeds with every record stored once."""
    store = _store(pc)
    store.ensure_dimension()
    store.ensure_space(writing=True)  # the card is recorded before the fault
    server.fail("upsert", status=503, message="busy")
    store.add_texts(["alpha", "beta"])
    reqs = _data_requests(server, "/vectors/upsert")
    assert [r.status for r in reqs] == [503, 200]
    assert reqs[0].body == reqs[1].body
    assert store.count() == 2


def test_default_namespace_count_delete_and_existing_ids(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: the default namespace (reported as ``__default__`` in stats)
    is counted; delete sends at most 1,000 ids per request; existing_ids fetches 100 per request."""
    store = _store(pc, dim=8)
    store.write_batch_size = 5000
    ids = store.add_texts([f"doc {i}" for i in range(1500)])
    assert all("namespace" not in b for b in _upsert_bodies(server))  # SDK omits the default namespace
    assert store.count() == 1500
    found = store.existing_ids(ids[:250] + ["missing-1", "missing-2"])
    assert found == set(ids[:250])
    assert [len(r.params["ids"]) for r in _data_requests(server, "/vectors/fetch")] == [100, 100, 52]
    store.delete(ids[:1200])
    assert [len(r.body["ids"]) for r in server.requests_to("/vectors/delete")] == [1000, 200]
    assert store.count() == 300
    store.delete([])
    assert len(server.requests_to("/vectors/delete")) == 2


def test_namespaces_are_separate(server: PineconeServer, pc: Any) -> None:
    """Stand-in for Pinecone's cloud: two stores on one index in two namespaces see only their own."""
    a = _store(pc, namespace="a")
    b = PineconeStore(a.index, a.embedder, namespace="b", name="docs")
    a.add_texts(["only in a"])
    b.add_texts(["only in b", "also in b"])
    assert (a.count(), b.count()) == (1, 2)
    assert [h.text for h in a.search("only", top_k=5)] == ["only in a"]
    assert {h.text for h in b.search("only", top_k=5)} == {"only in b", "also in b"}


def test_no_secret_in_repr_logs_or_errors(server: PineconeServer, pc: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Stand-in for Pinecone's cloud: the API key appears in no repr, log line or error message."""
    caplog.set_level(logging.DEBUG)
    store = _store(pc)
    store.ensure_dimension()
    store.ensure_space(writing=True)  # the card is recorded before the fault
    server.fail("upsert", status=400, message="nope")
    with pytest.raises(WriteError) as err:
        store.add_texts(["x"])
    assert SECRET not in repr(store) and SECRET not in str(err.value)
    assert SECRET not in caplog.text


async def test_asyncio_client_create_write_search_count_delete(server: PineconeServer) -> None:
    """Stand-in for Pinecone's cloud: PineconeStore.acreate on the SDK's AsyncPinecone, then the
    async twins over its AsyncIndex: same wire bodies (lists, namespace, text), ids, counts, hits."""
    async with pinecone.AsyncPinecone(api_key=SECRET, host=server.host) as apc:
        store = await PineconeStore.acreate(apc, "async-docs", FakeEmbedder(dimensions=32), namespace="aio")
        try:
            assert store.is_async
            ids = await store.aadd_texts(CORPUS, metadatas=[{"i": i} for i in range(len(CORPUS))])
            assert ids == [content_id(t) for t in CORPUS]
            assert await store.acount() == len(CORPUS)
            hits = await store.asearch(CORPUS[4], top_k=2, instruction="")
            assert hits[0].id == ids[4] and hits[0].text == CORPUS[4] and hits[0].metadata == {"i": 4}
            await store.adelete(ids[:3])
            assert await store.acount() == len(CORPUS) - 3
            with pytest.raises(ConfigurationError, match="asyncio index"):
                store.add_texts(["sync call on an async store"])
            with pytest.raises(ConfigurationError, match="asyncio index"):
                store.count()
        finally:
            await store.aclose()
        with pytest.raises(DimensionMismatchError) as err:
            await PineconeStore.acreate(apc, "async-docs", FakeEmbedder(dimensions=64))
        assert (err.value.expected, err.value.actual, err.value.where) == (32, 64, "async-docs")
    (body,) = _upsert_bodies(server)
    assert body["namespace"] == "aio"
    for rec, text in zip(body["vectors"], CORPUS, strict=True):
        _assert_float_lists(rec["values"], 32)
        assert rec["metadata"]["text"] == text
    assert json.loads(json.dumps(body)) == body


def test_create_refuses_the_wrong_kind_of_client(server: PineconeServer, pc: Any) -> None:
    """Bad input: an AsyncPinecone passed to create() and a Pinecone to acreate(); a bad index name."""
    apc = pinecone.AsyncPinecone(api_key=SECRET, host=server.host)
    with pytest.raises(ConfigurationError, match="acreate"):
        PineconeStore.create(apc, "docs", FakeEmbedder())
    with pytest.raises(ConfigurationError, match="create"):
        asyncio.run(PineconeStore.acreate(pc, "docs", FakeEmbedder()))
    with pytest.raises(ConfigurationError, match="lowercase"):
        PineconeStore.create(pc, "Bad_Name", FakeEmbedder())
    assert server.requests == []


def test_bulk_ingest_skips_what_the_index_holds_and_retries_only_the_missing(
    server: PineconeServer, pc: Any
) -> None:
    """Stand-in for Pinecone's cloud: ``ingest`` over PineconeStore stores 600 texts; a refused
    request in batch 2 is retried with only the ids the index lacks (found with fetch); a re-run
    embeds and upserts nothing."""
    from qwen_embed_adapters.ingest import ingest

    store = _store(pc, dim=8, namespace="bulk")
    texts = [f"bulk text {i}" for i in range(600)]
    server.fail("upsert", status=400, message="refused once",
                when=lambda body: content_id(texts[300]) in {v["id"] for v in body["vectors"]})
    report = ingest(store, texts, batch_size=200, progress=False, retry_backoff=0.0)
    assert report.written == 600 and report.failed == 0
    assert store.count() == 600
    upserted = [v["id"] for b in _upsert_bodies(server) for v in b["vectors"]]
    assert sorted(upserted) == sorted(content_id(t) for t in texts)  # each id written exactly once
    server.clear_requests()
    again = ingest(store, texts, batch_size=200, progress=False)
    assert again.skipped == 600 and again.written == 0
    assert server.requests_to("/vectors/upsert") == []


# ---------------------------------------------------------------------------- keyword search (issue 32)
class TestPineconeStandinKeywordContract(StoreContract):
    """The whole store contract again on a dotproduct index opened with keyword=True (dense scores are the
    cosine for unit vectors; the keyword and hybrid tests run instead of being skipped)."""

    @pytest.fixture
    def open_store(self, pc: Any) -> OpenStore:
        name = unique_name("kwc")
        return lambda embedder: PineconeStore.create(pc, name, embedder, metric="dotproduct", keyword=True)


class TestPineconeStandinKeyword(NativeKeywordChecks):
    """Keyword and hybrid search through sparse-dense records on a dotproduct index, against the stand-in."""

    @pytest.fixture
    def open_store(self, pc: Any) -> OpenStore:
        name = unique_name("kw")
        return lambda embedder: PineconeStore.create(pc, name, embedder, metric="dotproduct", keyword=True)


def test_sparse_values_and_the_keyword_query_on_the_wire(server: PineconeServer, pc: Any) -> None:
    store = _store(pc, "kw-wire", dim=16, metric="dotproduct", keyword=True)
    texts = ["向量数据库的混合检索", "parse_args parses argv"]
    store.add_texts(texts, ids=["zh", "code"])
    [body] = _upsert_bodies(server)
    for record, text in zip(body["vectors"], texts, strict=True):
        indices, values = sparse.document_vector(text)
        assert record["sparseValues"]["indices"] == indices
        assert record["sparseValues"]["values"] == pytest.approx(values)
    hits = store.search("数据库 argv", top_k=5, mode="keyword")
    [query] = [r.body for r in _data_requests(server, "/query")]
    assert query["vector"] == [0.0] * 16  # sparse only: alpha = 0 of Pinecone's convex combination
    assert query["sparseVector"] == {"indices": sparse.query_vector("数据库 argv")[0], "values": [1.0, 1.0]}
    # the score is the sparse dot product: the record's weight of each query term it holds (no IDF); the
    # shorter text (4 terms against 5) weighs its term a little more
    weights = {i: dict(zip(*sparse.document_vector(t), strict=True)) for i, t in zip(["zh", "code"], texts, strict=True)}
    assert [(h.id, h.score) for h in hits] == [
        ("zh", pytest.approx(weights["zh"][sparse.term_index("数据库")], rel=1e-6)),
        ("code", pytest.approx(weights["code"][sparse.term_index("argv")], rel=1e-6)),
    ]
    assert hits[0].score > hits[1].score


def test_at_most_1000_sparse_values_per_record(server: PineconeServer, pc: Any) -> None:
    # Bad input tried: a text of 1,200 distinct words, over Pinecone's 1,000 non-zero sparse values.
    store = _store(pc, "kw-cap", dim=16, metric="dotproduct", keyword=True)
    store.add_texts([" ".join(f"w{i}" for i in range(1200))], ids=["long"])
    [body] = _upsert_bodies(server)
    assert len(body["vectors"][0]["sparseValues"]["indices"]) == 1000
    assert [h.id for h in store.search("w7", mode="keyword")] == ["long"]


def test_keyword_search_needs_a_dotproduct_index_opened_with_keyword(server: PineconeServer, pc: Any) -> None:
    # Bad input tried: keyword=True with the cosine metric; keyword search on a store without keyword=True.
    with pytest.raises(ConfigurationError, match="Pinecone index 'kw-cos' uses metric 'cosine'.*metric='dotproduct'"):
        _store(pc, "kw-cos", dim=16, keyword=True)
    assert not pc.has_index("kw-cos")  # refused before anything was created
    plain = _store(pc, "kw-plain", dim=16)
    plain.add_texts(["数据库"], ids=["a"])
    assert "sparseValues" not in _upsert_bodies(server)[0]["vectors"][0]
    server.clear_requests()
    for mode in ("keyword", "hybrid"):
        with pytest.raises(ConfigurationError, match="PineconeStore 'kw-plain' has no keyword search, so mode 'keyword' "
                           "and 'hybrid' are refused: it was opened without keyword=True.*only on dotproduct indexes"):
            plain.search("数据库", mode=mode)
    assert _data_requests(server, "/query") == []  # refused before any request
    assert (plain.keyword_support, PineconeStore.keyword_support) == ("none", "native")


def test_the_standin_refuses_a_sparse_query_on_a_cosine_index_as_pinecone_does(server: PineconeServer, pc: Any) -> None:
    # Pinecone's known limitations: upserting sparse values into a non-dotproduct index succeeds, querying fails.
    store = _store(pc, "kw-cos-raw", dim=4)
    index = store.index
    index.upsert(vectors=[{"id": "a", "values": [1.0, 0, 0, 0], "sparse_values": {"indices": [3], "values": [0.5]}}])
    with pytest.raises(Exception, match="only indexes using the dotproduct metric support querying sparse-dense"):
        index.query(vector=[1.0, 0, 0, 0], sparse_vector={"indices": [3], "values": [1.0]}, top_k=1)


def test_async_keyword_search_over_the_asyncio_index(server: PineconeServer) -> None:
    async def main() -> list[str]:
        apc = pinecone.AsyncPinecone(api_key=SECRET, host=server.host)
        try:
            store = await PineconeStore.acreate(apc, "kw-async", FakeEmbedder(dimensions=16), metric="dotproduct",
                                                keyword=True)
            await store.aadd_texts(["向量数据库", "公园散步"], ids=["db", "park"])
            hits = await store.asearch("数据库", mode="keyword")
            await store.aclose()
            return [h.id for h in hits]
        finally:
            await apc.close()

    assert asyncio.run(main()) == ["db"]
