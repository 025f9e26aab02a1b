"""The serve app's guard in-process (ASGI, no socket): 429 back-pressure, 500 JSON with a request id,
413 for a streamed body, 503 while draining, hostile JSON, pieces of a large request, /metrics."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from qwen_embed_adapters.server import build_app
from qwen_embed_adapters.server.gatherer import split_by_tokens
from qwen_embed_adapters.testing import FakeEmbedder


class GatedFake(FakeEmbedder):
    """A FakeEmbedder whose model calls wait until released."""

    def __init__(self) -> None:
        super().__init__(dimensions=32)
        self.release = threading.Event()
        self.started: list[list[str]] = []

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.started.append(list(texts))
        self.release.wait(timeout=20)
        return super()._embed_batch(texts)


class BrokenFake(FakeEmbedder):
    """An embedder failing with an exception nobody expects (not a QwenEmbedError)."""

    def embed_texts(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
        raise RuntimeError("boom in the model")


class Client:
    """An httpx client over the app's ASGI interface, inside its lifespan."""

    def __init__(self, app: object) -> None:
        self.app = app

    async def __aenter__(self) -> httpx.AsyncClient:
        self._life = self.app.router.lifespan_context(self.app)  # type: ignore[attr-defined]
        await self._life.__aenter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t")
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()
        await self._life.__aexit__(None, None, None)


async def test_full_server_answers_429_with_retry_after() -> None:
    """Bad input: a fourth request while three are in progress on a server taking three."""
    emb = GatedFake()
    app = build_app(emb, model_name="fake", max_concurrent_requests=3, gather_ms=0)
    async with Client(app) as client:
        busy = [asyncio.create_task(client.post("/v1/embeddings", json={"input": f"t{i}"})) for i in range(3)]
        while app.state.guard.in_flight < 3:
            await asyncio.sleep(0.01)
        refused = await client.post("/v1/embeddings", json={"input": "one more"})
        health = await client.get("/health")
        emb.release.set()
        done = await asyncio.gather(*busy)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert health.status_code == 200  # /health is never refused for load
    assert [r.status_code for r in done] == [200, 200, 200]


async def test_unexpected_exception_is_500_json_with_a_logged_request_id(caplog: pytest.LogCaptureFixture) -> None:
    """Bad input: the model raises RuntimeError (a bug, not a refused input)."""
    app = build_app(BrokenFake(dimensions=8), model_name="fake", gather_ms=0)
    with caplog.at_level(logging.ERROR, logger="qwen_embed_adapters.server"):
        async with Client(app) as client:
            resp = await client.post("/v1/embeddings", json={"input": "x"})
    assert resp.status_code == 500
    err = resp.json()["error"]
    rid = resp.headers["x-request-id"]
    assert err["type"] == "server_error" and err["code"] == "internal_error"
    assert rid in err["message"] and "boom" not in err["message"]  # details stay in the log
    logged = [r for r in caplog.records if rid in r.getMessage()]
    assert logged and logged[0].exc_info is not None and "boom in the model" in str(logged[0].exc_info[1])


async def test_streamed_body_over_the_limit_is_413() -> None:
    """Bad input: a chunked body with no Content-Length that passes the 1,000-byte limit."""
    app = build_app(FakeEmbedder(dimensions=8), model_name="fake", payload_limit=1000)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"input": "'
        for _ in range(100):
            sent += 1
            yield b"a" * 100
        yield b'"}'

    async with Client(app) as client:
        resp = await client.post("/v1/embeddings", content=chunks())
        small = await client.post("/v1/embeddings", json={"input": "fits"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    assert "limit of 1000 bytes" in resp.json()["error"]["message"]
    assert small.status_code == 200


async def test_declared_length_over_the_limit_is_413_without_reading() -> None:
    app = build_app(FakeEmbedder(dimensions=8), model_name="fake", payload_limit=1000)
    async with Client(app) as client:
        resp = await client.post("/v1/embeddings", content=b'{"input": "' + b"a" * 5000 + b'"}')
    assert resp.status_code == 413
    assert "(5013 bytes)" in resp.json()["error"]["message"]


async def test_draining_server_answers_503() -> None:
    app = build_app(FakeEmbedder(dimensions=8), model_name="fake")
    app.state.guard.draining = True
    async with Client(app) as client:
        resp = await client.post("/v1/embeddings", json={"input": "x"})
        health = await client.get("/health")
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "shutting_down"
    assert health.status_code == 503  # so that a balancer stops sending here


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"input": "\\ud800x"}', "input holds a lone surrogate (U+D800 at character 0)"),
        (b'{"input": ["ok", "a\\udfffb"]}', "input[1] holds a lone surrogate (U+DFFF at character 1)"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'{"input": "\xff\xfe"}', "not valid UTF-8 (byte 0xff at offset 11"),
        (b'"just a string"', "must be a JSON object, got str"),
        (b"null", "must be a JSON object, got NoneType"),
        (b'{"input": "x", "dimensions": ' + b"9" * 5000 + b"}", "not valid JSON (Exceeds the limit"),
    ],
)
async def test_hostile_json_is_a_named_400(body: bytes, needle: str) -> None:
    """Bad input: lone surrogates (alone and in a list), 5,000-deep nesting, invalid UTF-8, non-object bodies,
    a 5,000-digit integer (Python refuses to parse it)."""
    app = build_app(FakeEmbedder(dimensions=8), model_name="fake")
    async with Client(app) as client:
        resp = await client.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert needle in resp.json()["error"]["message"]


async def test_lone_surrogate_in_rerank_is_a_named_400() -> None:
    """Bad input: a lone surrogate in the second document of a rerank request."""
    from qwen_embed_adapters.rerank import Reranker

    class FakeReranker(Reranker):
        def _score(self, query: str, documents: list[str], instruction: str) -> np.ndarray:
            return np.zeros(len(documents), dtype=np.float32)

    app = build_app(FakeEmbedder(dimensions=8), FakeReranker("fake-reranker"), model_name="fake")
    async with Client(app) as client:
        resp = await client.post("/v1/rerank", content=b'{"query": "q", "documents": ["a", "\\ud800"]}')
    assert resp.status_code == 400
    assert "documents[1] holds a lone surrogate" in resp.json()["error"]["message"]


def test_split_by_tokens() -> None:
    assert split_by_tokens([3, 3, 3, 10, 1], 6) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert split_by_tokens([1, 1], 100) == [(0, 2)]
    assert split_by_tokens([], 5) == []


async def test_small_request_is_served_between_pieces_of_a_large_one() -> None:
    """A 40-text request over a 10-token budget runs in pieces; a one-text request sent meanwhile gets the
    model before the large request's last piece, and both get exactly their own vectors."""
    emb = GatedFake()
    emb.release.set()
    app = build_app(emb, model_name="fake", gather_ms=1, max_gather_tokens=10)
    big = [f"word{i} x" for i in range(40)]  # FakeEmbedder counts words: 2 tokens each -> 8 pieces
    async with Client(app) as client:
        emb.release.clear()
        large = asyncio.create_task(client.post("/v1/embeddings", json={"input": big}))
        while not emb.started:
            await asyncio.sleep(0.01)  # the first piece is in the model
        small = asyncio.create_task(client.post("/v1/embeddings", json={"input": "small one"}))
        await asyncio.sleep(0.05)
        emb.release.set()
        large_resp, small_resp = await large, await small
    assert large_resp.status_code == small_resp.status_code == 200
    small_call = next(i for i, c in enumerate(emb.started) if "small one" in c)
    assert len(emb.started) >= 8 and small_call < len(emb.started) - 1  # not after the whole large request
    got = np.array([d["embedding"] for d in large_resp.json()["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, FakeEmbedder(dimensions=32).embed_documents(big), atol=1e-6)


async def test_metrics_scrape() -> None:
    app = build_app(FakeEmbedder(dimensions=8), model_name="fake")
    async with Client(app) as client:
        await client.post("/v1/embeddings", json={"input": ["a b", "c"]})
        await client.post("/v1/embeddings", json={"input": None})
        text = (await client.get("/metrics")).text
    assert 'qwen_embed_requests_total{route="/v1/embeddings",status="200"} 1.0' in text
    assert 'qwen_embed_requests_total{route="/v1/embeddings",status="400"} 1.0' in text
    assert 'qwen_embed_inputs_total{route="/v1/embeddings"} 2.0' in text
    assert "qwen_embed_tokens_total 3.0" in text
    for name in ("qwen_embed_batch_size_count", "qwen_embed_queue_seconds_count",
                 "qwen_embed_request_duration_seconds_bucket"):
        assert name in text


def test_malloc_settings_respect_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from qwen_embed_adapters.server.memory import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the operator's setting wins


async def test_rerank_cuts_huge_documents_before_tokenising() -> None:
    """Bad input: a 1.5 MB document (and a 100 kB query) to a reranker that keeps 64 tokens per pair.

    The reranker receives at most 64 * CHARS_PER_TOKEN characters of each; short texts arrive whole.
    """
    from qwen_embed_adapters.rerank import Reranker
    from qwen_embed_adapters.server.embeddings import CHARS_PER_TOKEN

    seen: list[tuple[str, list[str]]] = []

    class RecordingReranker(Reranker):
        max_length = 64

        def _score(self, query: str, documents: list[str], instruction: str) -> np.ndarray:
            seen.append((query, list(documents)))
            return np.arange(len(documents), dtype=np.float32) / 10

    app = build_app(FakeEmbedder(dimensions=8), RecordingReranker("rec"), model_name="fake")
    huge, short = "word " * 300_000, "Beijing is the capital of China"
    async with Client(app) as client:
        resp = await client.post("/v1/rerank", json={"query": "q" * 100_000, "documents": [short, huge]})
    assert resp.status_code == 200, resp.text
    assert [r["index"] for r in resp.json()["results"]] == [1, 0]
    (query, docs), = seen
    cap = 64 * CHARS_PER_TOKEN
    assert query == "q" * cap
    assert docs == [short, huge[:cap]]
