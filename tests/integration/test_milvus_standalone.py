"""The MilvusStore suite on a real Milvus standalone server with no Docker: the ``milvus`` 2.3.5 wheel's
``milvus-server`` (see tests/support/milvus_standalone.py). The Milvus Lite tests of
test_milvus_lite.py run again here with the server's URI, plus the two-stage rerank and the faults a
real server has: SIGKILL + restart between calls, a server down when a store is opened, and a kill
in the middle of a 20,000-text ingest (tests/support/fault_ingest.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from qwen_embed_adapters.adapters.milvus import MilvusStore
from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import MilvusContract
from tests.integration.test_milvus_lite import (  # noqa: F401  (collected here again with the server's URI)
    DIM,
    open_store,
    test_async_twins_use_the_async_client,
    test_bad_inputs_write_nothing,
    test_bulk_2000_ids_count_vectors_search_and_rerun,
    test_collection_made_by_another_tool_is_refused_clearly,
    test_collection_records_model_dimension_and_metric,
    test_collection_with_int64_ids_is_refused_clearly,
    test_count_and_delete_on_a_missing_collection,
    test_expression_and_dict_filters,
    test_failed_batch_reports_ids_and_rerun_completes,
    test_milvus_rows_for_users_who_insert_themselves,
    test_other_dimension_or_metric_is_refused_before_any_write,
    test_oversize_text_limit_follows_the_collection,
    test_query_instruction_is_applied_to_search_only,
    test_scores_match_numpy_for_each_metric,
)
from tests.support.fault_ingest import run_kill_and_rerun
from tests.support.milvus_fixtures import corpus, free_port
from tests.support.milvus_standalone import StandaloneMilvus, milvus_server_cmd, standalone_milvus

pymilvus = pytest.importorskip("pymilvus")
pytestmark = [pytest.mark.integration, pytest.mark.standalone]


@pytest.fixture(scope="module")
def milvus_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneMilvus]:
    exe = milvus_server_cmd()
    if exe is None:
        pytest.fail("could not build the milvus-server venv (tests/containers/milvus_venv.sh)")
    with standalone_milvus(tmp_path_factory.mktemp("milvus_standalone") / "data", exe) as server:
        yield server


@pytest.fixture(scope="module")
def milvus_uri(milvus_standalone: StandaloneMilvus) -> str:
    return milvus_standalone.uri


class TestStandaloneContract(MilvusContract):
    """The shared store contract (ids, dedupe, dimension guard, WriteError ids, async parity, rerank, ...)
    on a real Milvus standalone server."""

    @pytest.fixture
    def milvus_uri(self, milvus_standalone: StandaloneMilvus) -> str:  # type: ignore[override]
        return milvus_standalone.uri

    # Milvus 2.3.5 has no BM25 function (it came with Milvus 2.5): the contract's keyword tests become the refusal
    def _refuses_keyword_modes(self, store: MilvusStore) -> None:
        store.add_texts(["ERR_QUOTA_EXCEEDED after 100 requests"], ids=["k1"])
        # bad input tried: mode "keyword" / "hybrid" on a server without Milvus's BM25 function
        for mode in ("keyword", "hybrid"):
            with pytest.raises(ConfigurationError, match=r"Milvus server v2\.3\.5.* has no BM25 function"):
                store.search("ERR_QUOTA_EXCEEDED", top_k=2, mode=mode)
        assert [h.id for h in store.search("ERR_QUOTA_EXCEEDED", top_k=1)] == ["k1"]  # dense search still works

    def test_keyword_search_finds_exact_terms_and_chinese_words(self, store: MilvusStore) -> None:  # type: ignore[override]
        self._refuses_keyword_modes(store)

    def test_hybrid_is_the_rank_fusion_of_both_sides(self, store: MilvusStore) -> None:  # type: ignore[override]
        self._refuses_keyword_modes(store)

    def test_writes_and_deletes_reach_the_keyword_side(self, store: MilvusStore) -> None:  # type: ignore[override]
        self._refuses_keyword_modes(store)

    @pytest.mark.asyncio
    async def test_async_keyword_and_hybrid_match_sync(self, store: MilvusStore) -> None:  # type: ignore[override]
        await store.aadd_texts(["async ERR_ASYNC_ONLY"], ids=["k8"])
        for mode in ("keyword", "hybrid"):  # bad input tried: the async keyword modes on Milvus 2.3.5
            with pytest.raises(ConfigurationError, match=r"Milvus server v2\.3\.5.* has no BM25 function"):
                await store.asearch("ERR_ASYNC_ONLY", top_k=2, mode=mode)


def test_existing_client_is_used_and_left_open(milvus_uri: str) -> None:
    client = pymilvus.MilvusClient(milvus_uri)
    store = MilvusStore(client, "shared_client", FakeEmbedder(dimensions=DIM))
    store.add_texts(["via a client"])
    store.close()
    res = client.query("shared_client", filter="", output_fields=["count(*)"], consistency_level="Strong")
    assert res[0]["count(*)"] == 1
    client.drop_collection("shared_client")
    client.close()


def test_two_stage_rerank_on_the_server(milvus_uri: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from qwen_embed_adapters.rerank import LocalReranker
    from qwen_embed_adapters.testing import make_tiny_qwen3_reranker
    from qwen_embed_adapters.testing.contract import CORPUS, QUERY, check_two_stage, expected_two_stage

    reranker = LocalReranker(make_tiny_qwen3_reranker(tmp_path_factory.mktemp("rr") / "m", seed=0), device="cpu")
    with MilvusStore(milvus_uri, "two_stage", FakeEmbedder(dimensions=64)) as store:
        store.add_texts(CORPUS, metadatas=[{"even": i % 2 == 0} for i in range(len(CORPUS))])
        vector_hits, want = expected_two_stage(store, reranker, QUERY, top_k=5, candidates=12)
        assert len(vector_hits) == 12
        check_two_stage(store.search(QUERY, top_k=5, rerank=reranker, candidates=12), want)
        _, want = expected_two_stage(store, reranker, QUERY, top_k=3, candidates=8, filter={"even": True})
        got = store.search(QUERY, top_k=3, filter={"even": True}, rerank=reranker, candidates=8)
        check_two_stage(got, want)
        store.drop()


def test_restart_between_two_calls_is_reconnected(milvus_standalone: StandaloneMilvus) -> None:
    """SIGKILL of the whole server and a restart on the same data dir between two calls of one store:
    the next calls reconnect, find the collection (released after the restart) and see every row."""
    texts = corpus(300, prefix="restart")
    store = MilvusStore(milvus_standalone.uri, "restarted", FakeEmbedder(dimensions=DIM), timeout=60)
    try:
        ids = store.add_texts(texts)
        assert store.count() == 300
        milvus_standalone.restart()
        assert store.count() == 300
        assert store.search(texts[5], top_k=1)[0].id == ids[5]
        store.add_texts(corpus(310, prefix="restart"))
        assert store.count() == 310
        store.drop()
    finally:
        store.close()


def test_a_2_3_5_server_has_no_bm25_so_keyword_search_is_refused_naming_it(milvus_uri: str) -> None:
    # Milvus 2.3.5 predates the BM25 function (Milvus 2.5): the collection is created without it, dense
    # search works, and mode "keyword"/"hybrid" is refused with the server's version (issue 32).
    with MilvusStore(milvus_uri, "kw_on_2_3", FakeEmbedder(dimensions=16)) as store:
        assert store.server_version().startswith("v2.3")
        store.add_texts(["向量数据库", "公园散步"], ids=["db", "park"])
        assert not store.client.describe_collection("kw_on_2_3").get("functions")
        assert len(store.search("数据库", top_k=2)) == 2
        for mode in ("keyword", "hybrid"):
            with pytest.raises(ConfigurationError, match=r"Milvus server v2\.3\.\d+\S* has no BM25 function"):
                store.search("数据库", mode=mode)
        store.drop()


def test_server_down_when_opened_names_the_uri_within_the_timeout() -> None:
    """Nothing listens on the port: opening the store fails with the URI in the message, in bounded time."""
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=f"cannot reach Milvus at {uri}"):
        MilvusStore(uri, "nobody", FakeEmbedder(dimensions=DIM), timeout=5)
    assert time.monotonic() - started < 30


def test_sigkill_during_20000_text_ingest_then_rerun(milvus_standalone: StandaloneMilvus) -> None:
    def open_(timeout: float) -> Any:
        return MilvusStore(milvus_standalone.uri, "faulted", FakeEmbedder(dimensions=DIM), timeout=timeout,
                           write_batch_size=500)

    run_kill_and_rerun(open_, kill=milvus_standalone.kill, start=milvus_standalone.start)
