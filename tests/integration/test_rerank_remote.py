"""RemoteReranker against real HTTP servers on 127.0.0.1: `qwen-embed serve --reranker` and stand-ins that
speak vLLM's, TEI's and Infinity's /rerank shapes (scored by the same tiny model), with faults."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from qwen_embed_adapters.errors import ConfigurationError, InvalidInputError, ServiceError
from qwen_embed_adapters.rerank import LocalReranker, RemoteReranker
from qwen_embed_adapters.testing import make_tiny_qwen3_reranker
from tests.support import local_fixtures
from tests.support.local_fixtures import ServeProcess, start_serve
from tests.support.rerank_server import RerankServer

tiny_qwen3_dir = local_fixtures.tiny_qwen3_dir
pytestmark = pytest.mark.integration

QUERY = "What is the capital of China?"
DOCS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other.",
    "机器学习 深度学习 向量数据库",
    "",
    "the quick brown fox jumps over the lazy dog " * 6,
    "yes",
    "Paris is the capital of France.",
    "no",
    "vector databases store embeddings",
    "Beijing",
]
KEY = "rerank-secret-42"


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_tiny_qwen3_reranker(tmp_path_factory.mktemp("models") / "tiny-reranker", seed=0)


@pytest.fixture(scope="module")
def local(reranker_dir: str) -> LocalReranker:
    return LocalReranker(reranker_dir, device="cpu", max_length=512)


@pytest.fixture(scope="module")
def serve(tiny_qwen3_dir: str, reranker_dir: str) -> Iterator[ServeProcess]:
    server = start_serve(tiny_qwen3_dir, ["--reranker", reranker_dir, "--max-length", "512"], api_key=KEY)
    try:
        yield server
    finally:
        server.stop()


def raw_scorer(local: LocalReranker):  # type: ignore[no-untyped-def]
    """Scores of whole raw texts (no template), as vLLM's original-Qwen3-reranker mode computes them."""
    return lambda texts: local.score_token_ids([local.tokenizer(t)["input_ids"] for t in texts])


# ---------------------------------------------------------------------------- qwen-embed serve --reranker
def test_remote_against_serve_equals_local(serve: ServeProcess, local: LocalReranker) -> None:
    remote = RemoteReranker(serve.base_url, "tiny-reranker", api_key=KEY, batch_size=3)
    try:
        np.testing.assert_allclose(remote.score(QUERY, DOCS), local.score(QUERY, DOCS), atol=1e-5)
        assert [i for i, _ in remote.rerank(QUERY, DOCS, top_k=4)] == [i for i, _ in local.rerank(QUERY, DOCS, top_k=4)]
        assert remote.url == f"{serve.base_url}/rerank" and remote.shape == "cohere"
        task = "Given a Chinese question, find the passage that answers it"
        np.testing.assert_allclose(
            remote.score(QUERY, DOCS, instruction=task), local.score(QUERY, DOCS, instruction=task), atol=1e-5
        )
    finally:
        remote.close()


async def test_async_remote_against_serve_equals_local(serve: ServeProcess, local: LocalReranker) -> None:
    remote = RemoteReranker(serve.base_url, "tiny-reranker", api_key=KEY, batch_size=2, max_concurrency=3)
    try:
        scores = await remote.ascore(QUERY, DOCS)
        np.testing.assert_allclose(scores, local.score(QUERY, DOCS), atol=1e-5)
        ranked = await remote.arerank(QUERY, DOCS, top_k=3)
        assert [i for i, _ in ranked] == [i for i, _ in local.rerank(QUERY, DOCS, top_k=3)]
        many = await asyncio.gather(*(remote.ascore(QUERY, DOCS[i:]) for i in range(3)))
        for i, got in enumerate(many):
            np.testing.assert_allclose(got, local.score(QUERY, DOCS[i:]), atol=1e-5)
    finally:
        await remote.aclose()


def test_serve_rerank_route_shapes_and_errors(serve: ServeProcess, local: LocalReranker) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    body = {"model": "tiny-reranker", "query": QUERY, "documents": DOCS[:4], "top_n": 2, "return_documents": True}
    answer = httpx.post(f"{serve.base_url}/rerank", json=body, headers=auth, timeout=30).json()
    expected = local.rerank(QUERY, DOCS[:4], top_k=2)
    assert [r["index"] for r in answer["results"]] == [i for i, _ in expected]
    assert [r["document"]["text"] for r in answer["results"]] == [DOCS[i] for i, _ in expected]
    assert answer["results"][0]["relevance_score"] == pytest.approx(expected[0][1], abs=1e-5)
    tei = httpx.post(f"{serve.root_url}/rerank", json={"query": QUERY, "texts": DOCS[:3]}, headers=auth, timeout=30)
    assert [r["index"] for r in tei.json()] == [i for i, _ in local.rerank(QUERY, DOCS[:3])]
    # The bare /rerank alias is guarded by the key as well.
    assert httpx.post(f"{serve.root_url}/rerank", json={"query": QUERY, "texts": ["a"]}, timeout=30).status_code == 401
    bad = httpx.post(f"{serve.base_url}/rerank", json={"query": QUERY, "documents": ["a", None]}, headers=auth,
                     timeout=30)
    assert bad.status_code == 400 and "documents[1] must be a string" in bad.json()["error"]["message"]
    other = httpx.post(f"{serve.base_url}/rerank", json={"model": "nope", "query": "q", "documents": ["a"]},
                       headers=auth, timeout=30)
    assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"
    models = httpx.get(f"{serve.base_url}/models", headers=auth, timeout=30).json()
    assert "tiny-reranker" in [m["id"] for m in models["data"]]


def test_wrong_model_name_is_reported_not_retried_elsewhere(serve: ServeProcess) -> None:
    """Bad input: a model name the server does not serve (a 404 that is not a missing route)."""
    remote = RemoteReranker(serve.base_url, "Qwen3-Reranker-8B", api_key=KEY)
    with pytest.raises(ServiceError, match="model 'Qwen3-Reranker-8B' is not served here") as err:
        remote.score(QUERY, DOCS[:2])
    assert err.value.status == 404 and remote.url == f"{serve.base_url}/rerank"


def test_tei_shape_against_serve(serve: ServeProcess, local: LocalReranker) -> None:
    remote = RemoteReranker(serve.root_url, api="tei", api_key=KEY)
    try:
        np.testing.assert_allclose(remote.score(QUERY, DOCS), local.score(QUERY, DOCS), atol=1e-5)
        assert remote.url == remote.endpoint_url == f"{serve.root_url}/v1/rerank"  # a bare host tries /v1 first
    finally:
        remote.close()


def test_wrong_key_is_an_error_without_the_key(serve: ServeProcess) -> None:
    """Bad input: a wrong API key; the error has the status and never the key."""
    remote = RemoteReranker(serve.base_url, "tiny-reranker", api_key="wrong-key-777")
    with pytest.raises(ServiceError) as err:
        remote.score(QUERY, DOCS[:2])
    assert err.value.status == 401 and "wrong-key-777" not in str(err.value)
    assert "wrong-key-777" not in repr(remote) and "api_key=***" in repr(remote)


# ---------------------------------------------------------------------------- each engine's shape
@pytest.mark.parametrize(
    ("engine", "url", "api", "final_url_suffix", "shape"),
    [
        ("vllm", "base", "auto", "/v1/rerank", "cohere"),
        ("vllm", "root", "vllm", "/v1/rerank", "cohere"),  # a bare host tries /v1/rerank first
        ("infinity", "root", "auto", "/rerank", "cohere"),
        ("infinity", "base", "infinity", "/rerank", "cohere"),  # /v1/rerank is a 404: falls back to the root
        ("tei", "base", "auto", "/rerank", "tei"),  # 404 on /v1/rerank, then 422 "missing field `texts`"
        ("tei", "root", "tei", "/rerank", "tei"),
    ],
)
def test_each_engine_shape_gives_the_local_scores(
    local: LocalReranker, engine: str, url: str, api: str, final_url_suffix: str, shape: str
) -> None:
    with RerankServer(engine, local.score) as srv:
        remote = RemoteReranker(srv.base_url if url == "base" else srv.root_url, api=api, batch_size=4)
        scores = remote.score(QUERY, DOCS)
        np.testing.assert_allclose(scores, local.score(QUERY, DOCS), atol=1e-6)
        assert remote.url == srv.root_url + final_url_suffix and remote.shape == shape
        last_path, last_body = srv.requests[-1]
        if shape == "tei":
            assert set(last_body) >= {"query", "texts"} and "documents" not in last_body
        else:
            assert last_body["model"] == "Qwen3-Reranker-0.6B" and last_body["top_n"] == len(last_body["documents"])
        assert sum(len(b.get("texts", b.get("documents", []))) for p, b in srv.requests if p == last_path) >= len(DOCS)
        remote.close()


def test_qwen3_template_for_vllm_original_reranker_mode(local: LocalReranker) -> None:
    with RerankServer("vllm-qwen3-original", local.score, raw_score=raw_scorer(local)) as srv:
        remote = RemoteReranker(srv.base_url, template="qwen3")
        np.testing.assert_allclose(remote.score(QUERY, DOCS), local.score(QUERY, DOCS), atol=1e-5)
        task = "Find the passage about cities"
        np.testing.assert_allclose(
            remote.score(QUERY, DOCS, instruction=task), local.score(QUERY, DOCS, instruction=task), atol=1e-5
        )
        _, body = srv.requests[-1]
        assert body["query"].startswith("<|im_start|>system\nJudge whether the Document")
        assert body["query"].endswith(f"<Instruct>: {task}\n<Query>: {QUERY}\n")
        assert body["documents"][0] == f"<Document>: {DOCS[0]}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        # Without the template, that server scores the wrong text: the scores differ.
        plain = RemoteReranker(srv.base_url)
        assert not np.allclose(plain.score(QUERY, DOCS), local.score(QUERY, DOCS), atol=1e-3)


def test_tei_batch_limit_splits_and_is_learnt(local: LocalReranker) -> None:
    with RerankServer("tei", local.score, max_batch=3) as srv:
        remote = RemoteReranker(srv.root_url, api="tei", batch_size=10, max_concurrency=1)
        np.testing.assert_allclose(remote.score(QUERY, DOCS), local.score(QUERY, DOCS), atol=1e-6)
        assert remote.batch_size <= 3
        sizes = [len(b["texts"]) for _, b in srv.requests]
        # A bare host: /v1/rerank is a 404 first; then TEI's 422 names its cap (3), which is used at once.
        assert sizes == [10, 10, 3, 3, 3, 1]
        assert [p for p, _ in srv.requests][:2] == ["/v1/rerank", "/rerank"]
        srv.requests.clear()
        remote.score(QUERY, DOCS)
        assert all(len(b["texts"]) <= 3 for _, b in srv.requests)  # no refused request the second time


@pytest.mark.parametrize("faults", [["503", "429"], ["drop"], ["500", "503", "ok"]])
def test_transient_failures_are_retried(local: LocalReranker, faults: list[str]) -> None:
    with RerankServer("vllm", local.score, faults=faults) as srv:
        remote = RemoteReranker(srv.base_url, max_retries=3, backoff_base=0.01)
        np.testing.assert_allclose(remote.score(QUERY, DOCS[:4]), local.score(QUERY, DOCS[:4]), atol=1e-6)
        assert len(srv.requests) == len([f for f in faults if f != "ok"]) + 1


async def test_async_retries_too(local: LocalReranker) -> None:
    with RerankServer("infinity", local.score, faults=["503", "drop"]) as srv:
        remote = RemoteReranker(srv.root_url, max_retries=2, backoff_base=0.01)
        np.testing.assert_allclose(await remote.ascore(QUERY, DOCS[:3]), local.score(QUERY, DOCS[:3]), atol=1e-6)
        await remote.aclose()


def test_persistent_failure_raises_with_status(local: LocalReranker) -> None:
    """Bad input (from the server): 500 on every attempt."""
    with RerankServer("vllm", local.score, faults=["500"] * 5) as srv:
        remote = RemoteReranker(srv.base_url, max_retries=2, backoff_base=0.01)
        with pytest.raises(ServiceError, match="HTTP 500 after 3 attempts") as err:
            remote.score(QUERY, DOCS[:2])
        assert err.value.status == 500 and "injected 500" in (err.value.body or "")
        assert len(srv.requests) == 3


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("wrong_count", "asked for the scores of 4 documents, the server returned 3"),
        ("dup_index", "appears twice"),
        ("bad_index", "has index 7, expected 0..3"),
        ("nan", "not a finite number"),
        ("not_json", "malformed answer"),
        ("no_results", "no results list"),
    ],
)
def test_malformed_answers_are_refused(local: LocalReranker, fault: str, message: str) -> None:
    """Bad input (from the server): wrong count, repeated or out-of-range index, NaN score, not JSON, no results."""
    with RerankServer("vllm", local.score, faults=[fault]) as srv:
        remote = RemoteReranker(srv.base_url, max_retries=0)
        with pytest.raises(ServiceError, match=message):
            remote.score(QUERY, DOCS[:4])


def test_client_side_bad_input_never_reaches_the_server(local: LocalReranker) -> None:
    """Bad input: a None document, an empty query, and bad constructor arguments."""
    with RerankServer("vllm", local.score) as srv:
        remote = RemoteReranker(srv.base_url)
        with pytest.raises(InvalidInputError, match=r"documents\[1\] is None"):
            remote.score(QUERY, ["a", None])  # type: ignore[list-item]
        with pytest.raises(InvalidInputError, match="query must be a non-empty str"):
            remote.score("", ["a"])
        assert remote.score(QUERY, []).shape == (0,)
        assert srv.requests == []
    with pytest.raises(ConfigurationError, match="api must be one of"):
        RemoteReranker("http://127.0.0.1:1/v1", api="cohere-v9")
    with pytest.raises(ConfigurationError, match="template must be one of"):
        RemoteReranker("http://127.0.0.1:1/v1", template="chatml")
    with pytest.raises(ConfigurationError, match="must start with http"):
        RemoteReranker("localhost:8000")
    with pytest.raises(ConfigurationError, match="batch_size must be at least 1, got 0"):
        RemoteReranker("http://127.0.0.1:1/v1", batch_size=0)


def test_unreachable_server_fails_after_retries() -> None:
    """Bad input: a port nothing listens on."""
    port = local_fixtures.free_port()
    remote = RemoteReranker(f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_base=0.01, timeout=2)
    with pytest.raises(ServiceError, match="ConnectError after 2 attempts"):
        remote.score(QUERY, ["a"])


# ---------------------------------------------------------------------------- one fan-out, one error tree
def test_a_failed_batch_cancels_the_pending_ones(local: LocalReranker) -> None:
    """Bad answer: the first of 8 one-document batches is malformed; the other batches not yet sent
    are cancelled (before, every batch was still sent after the call had failed)."""
    with RerankServer("vllm", local.score, faults=["wrong_count"], delay=0.2) as srv:
        remote = RemoteReranker(srv.base_url, batch_size=1, max_concurrency=2, max_retries=0)
        with pytest.raises(ServiceError, match="asked for the scores of 1 documents"):
            remote.score(QUERY, DOCS[:8])
        remote.close()  # waits for the thread pool: whatever was still queued would be sent by now
        assert len(srv.requests) <= 4


async def test_a_failed_batch_cancels_the_pending_ones_async(local: LocalReranker) -> None:
    """Bad answer: as above, on the async path."""
    with RerankServer("vllm", local.score, faults=["wrong_count"], delay=0.2) as srv:
        remote = RemoteReranker(srv.base_url, batch_size=1, max_concurrency=2, max_retries=0)
        with pytest.raises(ServiceError, match="asked for the scores of 1 documents"):
            await remote.ascore(QUERY, DOCS[:8])
        await asyncio.sleep(0.6)
        assert len(srv.requests) <= 3
        await remote.aclose()


def test_a_too_long_document_is_named_and_the_batch_cap_kept(local: LocalReranker) -> None:
    """Bad input: the server refuses one document as too long (TEI's 413 wording); the error names the
    caller's index of that document and the batch size is not lowered."""
    with RerankServer("vllm", local.score, faults=["too_long", "ok", "too_long", "too_long"]) as srv:
        remote = RemoteReranker(srv.base_url, batch_size=4, max_concurrency=1, max_retries=0)
        # 6 documents: batch 0..3 refused -> halves 0..1 (ok) and 2..3 (refused) -> 2 (refused): document 2.
        with pytest.raises(InvalidInputError, match="document 2: 600 tokens, the server takes at most 512") as err:
            remote.score(QUERY, DOCS[:6])
        assert (err.value.index, err.value.tokens, err.value.limit) == (2, 600, 512)
        assert remote.batch_size == 4


def test_rate_limit_and_timeout_errors_are_typed(local: LocalReranker) -> None:
    """Bad answer: 429 on every attempt; then a server too slow for the timeout."""
    from qwen_embed_adapters.errors import EmbeddingServiceError, RateLimitError, ServiceTimeoutError

    with RerankServer("vllm", local.score, faults=["429"] * 3) as srv:
        remote = RemoteReranker(srv.base_url, max_retries=1, backoff_base=0.01)
        with pytest.raises(RateLimitError, match="HTTP 429 after 2 attempts") as err:
            remote.score(QUERY, DOCS[:2])
        assert err.value.status == 429 and err.value.retry_after == 0.0
        assert not isinstance(err.value, EmbeddingServiceError)  # a reranker's error is not an embedding one
    with RerankServer("vllm", local.score, delay=1.0) as srv:
        remote = RemoteReranker(srv.base_url, max_retries=0, timeout=0.2)
        with pytest.raises(ServiceTimeoutError, match="ReadTimeout"):
            remote.score(QUERY, DOCS[:2])


def test_every_route_404_names_each_url_and_the_engines(local: LocalReranker) -> None:
    """Bad input: a bare host whose server has no rerank route at all (the TEI stand-in on /v2 only is
    not one: use a path-less host that 404s everywhere)."""
    with RerankServer("vllm", local.score) as srv:
        remote = RemoteReranker(srv.root_url + "/api", max_retries=0)
        with pytest.raises(ServiceError, match="no route answered: tried") as err:
            remote.score(QUERY, DOCS[:2])
        assert f"{srv.root_url}/api/rerank (HTTP 404)" in str(err.value)
        assert "TEI and Infinity (by default) on /rerank" in str(err.value) and err.value.status == 404
