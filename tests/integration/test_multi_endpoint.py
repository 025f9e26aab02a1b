"""RemoteEmbedder over several servers (issue 16 item 3).

Fault tests run real `qwen-embed serve` processes on the tiny Qwen3 (one is SIGKILLed mid-run) and
compare every vector with LocalEmbedder; routing, per-endpoint learning and the first-use check run
against the OpenAI stand-in (tests/support/openai_server.py), whose modes copy the engines it names.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.config import embedder_from_config, embedder_from_env
from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.http.embeddings_api import PROBE_TEXT
from tests.support.local_fixtures import ServeProcess, start_serve, tiny_qwen3_dir  # noqa: F401
from tests.support.openai_server import EmbeddingServer

MODEL = "stand-in"  # a name the model table does not know: the width is learnt from the answers
TEXTS = [f"text number {i}: {'word ' * (i % 7)}end" for i in range(200)]


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _sizes(srv: EmbeddingServer) -> list[int]:
    """Inputs per request a stand-in received, the first-use probe left out."""
    return [len(b["input"]) for b in srv.requests if b["input"] != [PROBE_TEXT]]


# ============================================================================ stand-ins: routing and learning
def test_routing_spreads_load_and_vectors_are_exact() -> None:
    servers = [EmbeddingServer(dim=64, service_time=0.02, slots=2).start() for _ in range(3)]
    try:
        with RemoteEmbedder([s.base_url for s in servers], model=MODEL, batch_size=8, max_concurrency=6) as emb:
            got = emb.embed_documents(TEXTS)
            stats = emb.endpoint_stats
        np.testing.assert_allclose(got, servers[0].expected(TEXTS), atol=1e-6)
        per_server = [sum(_sizes(s)) for s in servers]
        assert sum(per_server) == len(TEXTS)  # each text embedded exactly once
        assert all(n >= 20 for n in per_server), per_server  # 25 batches, 6 at a time, over 3 servers
        assert [st["served"] for st in stats] == [len(_sizes(s)) + 1 for s in servers]  # + the probe
        assert all(st["outstanding"] == 0 and st["checked"] for st in stats)
        # every server got the probe once, before any batch
        assert all(s.requests[0]["input"] == [PROBE_TEXT] for s in servers)
    finally:
        for s in servers:
            s.stop()


def test_each_endpoint_learns_its_own_caps_dimensions_and_encoding() -> None:
    """A TEI-like server (cap 4), a vLLM-like one refusing ``dimensions``, an SGLang-like one refusing base64."""
    tei = EmbeddingServer(dim=64, max_batch=4).start()
    vllm = EmbeddingServer(dim=64, dimensions="refuse").start()
    sglang = EmbeddingServer(dim=64, base64="refuse").start()
    servers = [tei, vllm, sglang]
    try:
        with RemoteEmbedder([s.base_url for s in servers], model=MODEL, dimensions=32, batch_size=16,
                            max_concurrency=3) as emb:
            got = emb.embed_documents(TEXTS)
            eps = emb._session.pool.endpoints
            assert [e.batch_cap for e in eps] == [4, 16, 16]
            assert [e.send_dimensions for e in eps] == [True, False, True]  # type: ignore[attr-defined]
            assert [e.encoding_format for e in eps] == ["base64", "base64", "float"]  # type: ignore[attr-defined]
            assert emb.batch_size == 16
        np.testing.assert_allclose(got, _unit(tei.expected(TEXTS, 32)), atol=1e-6)
        # after the one refused 16-input request, TEI only ever got batches of at most 4
        # TEI refused the 16-input requests sent before it was learnt (at most one per thread), then got <= 4
        refused = [n for n in _sizes(tei) if n > 4]
        assert refused and set(refused) == {16} and len(refused) <= 3
        assert sum(n for n in _sizes(tei) if n <= 4) >= 1
        assert all(n <= 16 for n in _sizes(vllm) + _sizes(sglang))
        assert all("dimensions" not in b for b in vllm.requests[2:])
    finally:
        for s in servers:
            s.stop()


@pytest.mark.parametrize("odd", ["width", "model"])
def test_an_odd_endpoint_is_a_configuration_error_naming_it(odd: str) -> None:
    """Bad input: the third server serves 32-d vectors, or another model, than the first two."""
    kwargs = {"dim": 32} if odd == "width" else {"dim": 64, "model": "other-model"}
    servers = [EmbeddingServer(dim=64).start(), EmbeddingServer(dim=64).start(), EmbeddingServer(**kwargs).start()]
    odd_url = servers[2].base_url.replace("http://", "http://user:s3cret@")
    try:
        emb = RemoteEmbedder([servers[0].base_url, servers[1].base_url, odd_url], model=MODEL, api_key="sk-hidden-key")
        with pytest.raises(ConfigurationError) as info:
            emb.embed_documents(TEXTS[:10])
        message = str(info.value)
        assert f"127.0.0.1:{servers[2].port}" in message
        assert "s3cret" not in message and "sk-hidden-key" not in message
        assert ("32-d" in message) if odd == "width" else ("'other-model'" in message)
        assert all(b["input"] == [PROBE_TEXT] for s in servers for b in s.requests)  # nothing embedded
        emb.close()
    finally:
        for s in servers:
            s.stop()


def test_async_odd_endpoint_is_a_configuration_error() -> None:
    servers = [EmbeddingServer(dim=64).start(), EmbeddingServer(dim=48).start()]
    try:
        emb = RemoteEmbedder([s.base_url for s in servers], model=MODEL)
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{servers[1].port}.*48-d"):
            asyncio.run(emb.aembed_documents(TEXTS[:10]))
    finally:
        for s in servers:
            s.stop()


def test_failing_endpoint_is_benched_and_its_batches_go_elsewhere(caplog: pytest.LogCaptureFixture) -> None:
    """One server answers 503 and drops connections after the probe: no batch is lost or doubled."""
    bad = EmbeddingServer(dim=64, faults=["ok", "503", "drop", "503", "503"]).start()
    good = [EmbeddingServer(dim=64).start() for _ in range(2)]
    try:
        with caplog.at_level(logging.WARNING, logger="qwen_embed_adapters.remote"):
            # one request at a time, so the bad server's n-th request meets its n-th fault
            with RemoteEmbedder([bad.base_url, *(s.base_url for s in good)], model=MODEL, batch_size=5, max_retries=0,
                                max_concurrency=1) as emb:
                got = emb.embed_documents(TEXTS)
                stats = emb.endpoint_stats
        np.testing.assert_allclose(got, good[0].expected(TEXTS), atol=1e-6)
        assert "benched" in caplog.text and stats[0]["failures"] >= 1
        # Each text was answered exactly once: by a good server, or by the bad one after its 4 faults.
        answered = sum(sum(_sizes(s)) for s in good) + sum(_sizes(bad)[4:])
        assert answered == len(TEXTS)
        assert all(st["served"] > 1 for st in stats[1:])
    finally:
        for s in [bad, *good]:
            s.stop()


def test_endpoint_down_at_start_is_skipped_then_checked_when_back() -> None:
    up = EmbeddingServer(dim=64).start()
    down = EmbeddingServer(dim=64).start()
    down_url = down.base_url
    down.stop()
    emb = RemoteEmbedder([down_url, up.base_url], model=MODEL, max_retries=0, batch_size=8)
    try:
        np.testing.assert_allclose(emb.embed_documents(TEXTS[:20]), up.expected(TEXTS[:20]), atol=1e-6)
        stats = emb.endpoint_stats
        assert [st["checked"] for st in stats] == [False, True]
        assert stats[0]["served"] == 0 and stats[0]["failures"] >= 1
        back = EmbeddingServer(dim=64, port=down.port).start()  # the same server comes back
        try:
            deadline = time.monotonic() + 10
            while emb.endpoint_stats[0]["benched"] and time.monotonic() < deadline:
                time.sleep(0.05)
            np.testing.assert_allclose(emb.embed_documents(TEXTS), up.expected(TEXTS), atol=1e-6)
            stats = emb.endpoint_stats
            assert stats[0]["checked"] and stats[0]["failures"] == 0
            assert back.requests[0]["input"] == [PROBE_TEXT] and sum(_sizes(back)) > 0  # checked, then used
        finally:
            back.stop()
    finally:
        emb.close()
        up.stop()


def test_config_round_trips_the_list_and_env_takes_a_comma_list() -> None:
    urls = ["http://a.example:8000/v1", "http://b.example:8000/v1", "http://user:pw@c.example:8000/v1"]
    emb = RemoteEmbedder(urls, model="Qwen3-Embedding-0.6B", dimensions=256, batch_size=16)
    cfg = emb.to_config()
    assert cfg["base_url"] == ["http://a.example:8000/v1", "http://b.example:8000/v1", "http://***@c.example:8000/v1"]
    assert "pw" not in repr(emb) and "pw" not in str(cfg)
    again = embedder_from_config({**cfg, "base_url": urls[:2]})
    assert isinstance(again, RemoteEmbedder) and again.base_urls == urls[:2] and again.dimension == 256
    assert embedder_from_config(RemoteEmbedder(urls[0]).to_config()).to_config()["base_url"] == urls[0]  # a str stays
    env = embedder_from_env({"QWEN_EMBED_BASE_URL": " http://a.example:8000/v1, http://b.example:8000/v1 "})
    assert isinstance(env, RemoteEmbedder) and env.base_urls == urls[:2]
    with pytest.raises(ConfigurationError, match="twice"):
        RemoteEmbedder([urls[0], urls[0] + "/"])  # bad input: the same server twice
    with pytest.raises(ConfigurationError, match="list of URLs"):
        RemoteEmbedder([])  # bad input: no URL at all
    with pytest.raises(ConfigurationError, match="http://"):
        RemoteEmbedder([urls[0], "ftp://d.example"])  # bad input: the second URL


# ============================================================================ real servers, one SIGKILLed
N_TEXTS = 5000


@pytest.fixture(scope="module")
def serve_trio(tiny_qwen3_dir: str) -> Iterator[list[ServeProcess]]:  # noqa: F811
    """Three `qwen-embed serve` processes on the tiny Qwen3; a test may kill one (it is restarted for the next)."""
    args = ["--served-model-name", "tiny-qwen3", "--max-length", "512"]
    with ThreadPoolExecutor(3) as pool:
        servers = list(pool.map(lambda _: start_serve(tiny_qwen3_dir, args), range(3)))
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()


@pytest.fixture
def trio(serve_trio: list[ServeProcess], tiny_qwen3_dir: str) -> list[ServeProcess]:  # noqa: F811
    args = ["--served-model-name", "tiny-qwen3", "--max-length", "512"]
    for i, s in enumerate(serve_trio):
        if s.process.poll() is not None:
            s.stop()
            serve_trio[i] = start_serve(tiny_qwen3_dir, args)
    return serve_trio


@pytest.fixture(scope="module")
def reference(tiny_qwen3_dir: str) -> tuple[list[str], np.ndarray]:  # noqa: F811
    from qwen_embed_adapters.local import LocalEmbedder

    texts = [f"document {i}: {'alpha beta gamma ' * (i % 5)}{i * 7919 % 10007}" for i in range(N_TEXTS)]
    with LocalEmbedder(tiny_qwen3_dir, device="cpu", max_length=512) as local:
        return texts, local.embed_documents(texts)


def _kill_when_busy(emb: RemoteEmbedder, server: ServeProcess, index: int, after: int) -> threading.Thread:
    """SIGKILL ``server`` once it has answered ``after`` requests of ``emb`` (mid-run, requests in flight)."""
    def watch() -> None:
        deadline = time.monotonic() + 120
        while emb.endpoint_stats[index]["served"] < after and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _check_after_kill(emb: RemoteEmbedder, got: np.ndarray, ref: np.ndarray, killed: ServeProcess) -> None:
    assert killed.process.returncode == -signal.SIGKILL
    assert got.shape == ref.shape == (N_TEXTS, 64)
    np.testing.assert_allclose(got, ref, atol=1e-5)  # every row is its own text's vector: none lost or swapped
    stats = emb.endpoint_stats
    assert all(st["served"] >= 10 for st in stats), stats  # each served before (or without) the kill
    assert stats[2]["failures"] >= 1  # it failed at least once and was benched (its batches went elsewhere)
    assert sum(st["served"] for st in stats) >= N_TEXTS // 16 + 3


def test_sigkilled_server_mid_run_loses_nothing(trio: list[ServeProcess],
                                                reference: tuple[list[str], np.ndarray]) -> None:
    texts, ref = reference
    with RemoteEmbedder([s.base_url for s in trio], model="tiny-qwen3", batch_size=16, max_concurrency=6,
                        max_retries=2) as emb:
        watcher = _kill_when_busy(emb, trio[2], 2, after=20)
        got = emb.embed_documents(texts)
        watcher.join(5)
        _check_after_kill(emb, got, ref, trio[2])


def test_async_sigkilled_server_mid_run_loses_nothing(trio: list[ServeProcess],
                                                      reference: tuple[list[str], np.ndarray]) -> None:
    texts, ref = reference

    async def run() -> tuple[RemoteEmbedder, np.ndarray]:
        emb = RemoteEmbedder([s.base_url for s in trio], model="tiny-qwen3", batch_size=16, max_concurrency=6,
                             max_retries=2)
        watcher = _kill_when_busy(emb, trio[2], 2, after=20)
        got = await emb.aembed_documents(texts)
        watcher.join(5)
        await emb.aclose()
        return emb, got

    emb, got = asyncio.run(run())
    _check_after_kill(emb, got, ref, trio[2])
