"""The serve app in-process (ASGI, no socket): request gathering, auth, OpenAI error shape, any Embedder."""

from __future__ import annotations

import asyncio
import base64
import threading

import httpx
import numpy as np
import pytest

from qwen_embed_adapters.server import build_app
from qwen_embed_adapters.testing import FakeEmbedder


class SlowFake(FakeEmbedder):
    """A FakeEmbedder whose batches wait until released, so requests pile up while one runs."""

    def __init__(self) -> None:
        super().__init__(dimensions=32)
        self.release = threading.Event()

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.release.wait(timeout=20)
        return super()._embed_batch(texts)


async def _send_all(app: object, bodies: list[dict], headers: dict[str, str] | None = None) -> list:
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
            return list(await asyncio.gather(*[client.post("/v1/embeddings", json=b) for b in bodies]))


@pytest.mark.parametrize(("gather_ms", "max_batches"), [(50.0, 3), (0.0, 16)])
async def test_concurrent_requests_are_gathered(gather_ms: float, max_batches: int) -> None:
    emb = SlowFake()
    app = build_app(emb, model_name="fake", gather_ms=gather_ms)
    texts = [f"text {i}" for i in range(16)]
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, emb.release.set)  # let requests queue up behind the first batch
    resps = await _send_all(app, [{"input": t, "model": "fake", "encoding_format": "float"} for t in texts])
    assert [r.status_code for r in resps] == [200] * 16
    got = np.array([r.json()["data"][0]["embedding"] for r in resps], dtype=np.float32)
    np.testing.assert_allclose(got, FakeEmbedder(dimensions=32).embed_documents(texts), atol=1e-6)
    if gather_ms > 0:
        assert 1 <= len(emb.calls) <= max_batches  # 16 requests became at most a few model calls
        assert sorted(t for call in emb.calls for t in call) == sorted(texts)
    else:
        assert len(emb.calls) == 16


async def test_base64_and_auth_in_process() -> None:
    """Bad input: a request without the bearer key is refused with 401 and the key is never echoed."""
    emb = FakeEmbedder(dimensions=32)
    app = build_app(emb, model_name="fake", api_key="k3y")
    [denied] = await _send_all(app, [{"input": "x"}])
    assert denied.status_code == 401 and "k3y" not in denied.text
    [ok] = await _send_all(app, [{"input": ["x", "y"], "encoding_format": "base64", "dimensions": 8}],
                           headers={"authorization": "Bearer k3y"})
    data = ok.json()["data"]
    vecs = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in data])
    full = emb.embed_documents(["x", "y"])[:, :8]
    np.testing.assert_allclose(vecs, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-6)
    assert [d["index"] for d in data] == [0, 1]


async def test_unknown_route_has_openai_error_shape() -> None:
    """Bad input: a GET on a route that does not exist."""
    app = build_app(FakeEmbedder(dimensions=32), model_name="fake")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        resp = await client.get("/v1/nothing")
    assert resp.status_code == 404
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


async def test_the_gap_takes_a_trickling_burst_whole_and_closes_a_lone_batch_early() -> None:
    # Requests 40 ms apart, a 150 ms gap and a 5 s window: one model call for all six. A fixed window of
    # 25 ms (no gap) cuts the same burst in pieces. A lone request then waits the gap, not the 5 s window.
    from qwen_embed_adapters.server.gatherer import RequestGatherer

    async def burst(gatherer: RequestGatherer, calls: list[list[str]]) -> None:
        async def one(i: int) -> np.ndarray:
            await asyncio.sleep(0.04 * i)
            return await gatherer.submit([f"t{i}"], 1)

        got = await asyncio.gather(*[one(i) for i in range(6)])
        assert [float(g[0, 0]) for g in got] == [float(i) for i in range(6)]  # each request gets its own row
        assert sorted(t for c in calls for t in c) == [f"t{i}" for i in range(6)]

    def embed_into(calls: list[list[str]]):
        def embed(texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return np.array([[float(t[1:])] for t in texts], dtype=np.float32)
        return embed

    gapped: list[list[str]] = []
    g = RequestGatherer(embed_into(gapped), window_s=5.0, gap_s=0.15, max_tokens=100)
    await g.start()
    try:
        await burst(g, gapped)
        assert len(gapped) == 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        await g.submit(["t9"], 1)
        assert loop.time() - started < 2.5  # the gap closed it, not the 5 s window
    finally:
        await g.stop()
    fixed: list[list[str]] = []
    g = RequestGatherer(embed_into(fixed), window_s=0.025, max_tokens=100)
    await g.start()
    try:
        await burst(g, fixed)
        assert len(fixed) >= 2
    finally:
        await g.stop()
