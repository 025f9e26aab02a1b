"""RemoteEmbedder against a real HTTP server on 127.0.0.1 that behaves like each engine
(tests/support/openai_server.py names the version and public source of every behaviour it copies).

Every misbehaviour has a test that shows the client's answer: recovered, or a clear error. Each test
runs through the sync API and the async API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from qwen_embed_adapters import RemoteEmbedder, embedder_from_config, embedder_from_env
from qwen_embed_adapters.errors import ConfigurationError, EmbeddingServiceError
from qwen_embed_adapters.http import session as http_mod
from tests.support.openai_server import EmbeddingServer

TEXTS = [f"document {i}: " + "词" * (i % 5) + " text" * (i % 3) for i in range(10)]


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def embed(emb: RemoteEmbedder, texts: list[str], mode: str) -> np.ndarray:
    if mode == "sync":
        return emb.embed_documents(texts)
    return asyncio.run(emb.aembed_documents(texts))


def reference(srv: EmbeddingServer, texts: list[str], dim: int | None = None) -> np.ndarray:
    ref = srv.expected(texts)
    if dim is not None:
        ref = ref[:, :dim]
    return ref / np.linalg.norm(ref, axis=1, keepdims=True)


def client(srv: EmbeddingServer, **kw: Any) -> RemoteEmbedder:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("model", "Qwen3-Embedding-0.6B")
    return RemoteEmbedder(srv.base_url, **kw)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Records every backoff delay instead of sleeping (sync and async paths)."""
    delays: list[float] = []

    async def fake_async_sleep(d: float) -> None:
        delays.append(d)

    monkeypatch.setattr(http_mod.time, "sleep", lambda d: delays.append(d))
    monkeypatch.setattr(http_mod.asyncio, "sleep", fake_async_sleep)
    yield delays


# ---------------------------------------------------------------------------- well-behaved servers
def test_base64_answer_decoded_in_input_order(mode: str) -> None:
    with EmbeddingServer(dim=1024) as srv:
        emb = client(srv, batch_size=4)
        out = embed(emb, TEXTS, mode)
        assert out.shape == (10, 1024) and out.dtype == np.float32
        np.testing.assert_allclose(out, reference(srv, TEXTS), atol=1e-6)
        assert sorted(len(r["input"]) for r in srv.requests) == [2, 4, 4]
        assert {r["encoding_format"] for r in srv.requests} == {"base64"}
        assert all("dimensions" not in r for r in srv.requests)


def test_server_that_ignores_base64_returns_floats(mode: str) -> None:
    """SGLang before mid-2026 ignores encoding_format and returns floats."""
    with EmbeddingServer(dim=1024, base64="ignore") as srv:
        out = embed(client(srv), TEXTS, mode)
        np.testing.assert_allclose(out, reference(srv, TEXTS), atol=1e-6)


def test_server_that_refuses_base64_gets_floats_from_then_on(mode: str) -> None:
    with EmbeddingServer(dim=1024, base64="refuse") as srv:
        emb = client(srv)
        np.testing.assert_allclose(embed(emb, TEXTS, mode), reference(srv, TEXTS), atol=1e-6)
        embed(emb, ["again"], mode)
        assert [r["encoding_format"] for r in srv.requests] == ["base64", "float", "float"]


def test_dimensions_sent_when_supported(mode: str) -> None:
    """TEI and Ollama truncate and renormalise on the server."""
    with EmbeddingServer(dim=1024, dimensions="support") as srv:
        emb = client(srv, dimensions=256)
        out = embed(emb, TEXTS, mode)
        assert out.shape == (10, 256) and emb.dimension == 256
        np.testing.assert_allclose(out, reference(srv, TEXTS, 256), atol=1e-6)
        assert [r["dimensions"] for r in srv.requests] == [256]


def test_dimensions_refused_like_vllm_truncates_client_side_and_remembers(mode: str) -> None:
    """vLLM answers 400 'does not support matryoshka' for a model not marked matryoshka."""
    with EmbeddingServer(dim=1024, dimensions="refuse") as srv:
        emb = client(srv, dimensions=128, batch_size=5)
        out = embed(emb, TEXTS, mode)
        np.testing.assert_allclose(out, reference(srv, TEXTS, 128), atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
        embed(emb, ["later call"], mode)
        sent = ["dimensions" in r for r in srv.requests]
        assert sent[0] is True and not any(sent[-1:])
        assert emb.send_dimensions is False


def test_dimensions_ignored_returns_native_width_and_client_truncates(mode: str) -> None:
    with EmbeddingServer(dim=1024, dimensions="ignore") as srv:
        emb = client(srv, dimensions=64)
        out = embed(emb, TEXTS, mode)
        np.testing.assert_allclose(out, reference(srv, TEXTS, 64), atol=1e-6)
        embed(emb, ["later"], mode)
        assert "dimensions" in srv.requests[0] and "dimensions" not in srv.requests[-1]


def test_infinity_slices_without_renormalising_client_renormalises(mode: str) -> None:
    with EmbeddingServer(dim=1024, dimensions="slice") as srv:
        out = embed(client(srv, dimensions=32), TEXTS, mode)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(out, reference(srv, TEXTS, 32), atol=1e-6)


def test_dimensions_above_native_fail_before_any_request() -> None:
    """Bad input: dimensions=4096 for Qwen3-Embedding-0.6B (native 1024)."""
    with EmbeddingServer(dim=1024) as srv:
        with pytest.raises(ConfigurationError, match="4096 is above the native dimension 1024"):
            client(srv, dimensions=4096)
        assert srv.requests == []


@pytest.mark.parametrize("status", [413, 422])
def test_batch_cap_halves_and_remembers(mode: str, status: int) -> None:
    """TEI refuses more than 32 inputs per request by default."""
    texts = [f"t{i}" for i in range(100)]
    with EmbeddingServer(dim=64, model="tei", max_batch=32, batch_status=status) as srv:
        emb = client(srv, model="tei-model", batch_size=64)
        out = embed(emb, texts, mode)
        np.testing.assert_allclose(out, reference(srv, texts), atol=1e-6)
        assert emb.batch_size == 32
        n_before = len(srv.requests)
        embed(emb, texts, mode)
        assert sorted(len(r["input"]) for r in srv.requests[n_before:]) == [4, 32, 32, 32]


def test_unknown_model_learns_its_dimension_and_keeps_it(mode: str) -> None:
    with EmbeddingServer(dim=384, model="all-MiniLM-L6-v2") as srv:
        emb = client(srv, model="all-MiniLM-L6-v2")
        assert emb.dimension_if_known is None
        embed(emb, TEXTS[:2], mode)
        assert emb.dimension == 384
        assert emb.to_config()["dimensions"] is None


def test_dimension_property_probes_once_for_an_unknown_model() -> None:
    with EmbeddingServer(dim=96, model="custom") as srv:
        emb = client(srv, model="custom")
        assert emb.dimension == 96 and emb.dimension == 96
        assert len(srv.requests) == 1


# ---------------------------------------------------------------------------- concurrency
def test_requests_run_concurrently_and_rows_stay_in_order(mode: str) -> None:
    texts = [f"item {i}" for i in range(64)]
    with EmbeddingServer(dim=64, service_time=0.05, slots=8) as srv:
        emb = client(srv, model="m", batch_size=4, max_concurrency=4)
        out = embed(emb, texts, mode)
        np.testing.assert_allclose(out, reference(srv, texts), atol=1e-6)
        assert srv.max_in_flight == 4  # never more than max_concurrency, and really parallel


def test_sync_api_inside_a_running_event_loop() -> None:
    """A Jupyter cell or a FastAPI handler calls the sync API with a loop already running."""
    with EmbeddingServer(dim=64) as srv:
        emb = client(srv, model="m", batch_size=3)

        async def handler() -> np.ndarray:
            return emb.embed_documents(TEXTS)

        np.testing.assert_allclose(asyncio.run(handler()), reference(srv, TEXTS), atol=1e-6)


def test_one_connection_pool_is_reused() -> None:
    with EmbeddingServer(dim=64) as srv:
        emb = client(srv, model="m")
        emb.embed_documents(["a"])
        first = emb._session._client
        emb.embed_documents(["b"])
        assert emb._session._client is first
        emb.close()
        assert emb._session._client is None
        emb.embed_documents(["c"])  # reopens lazily


# ---------------------------------------------------------------------------- failures that are retried
def test_429_honours_retry_after(mode: str, sleeps: list[float]) -> None:
    with EmbeddingServer(dim=64, faults=["429", "429"], retry_after=1.5) as srv:
        out = embed(client(srv, model="m"), TEXTS, mode)
        np.testing.assert_allclose(out, reference(srv, TEXTS), atol=1e-6)
        assert sleeps == [1.5, 1.5]
        assert len(srv.requests) == 3


@pytest.mark.parametrize("fault", ["503", "500", "drop"])
def test_transient_failures_are_retried_with_backoff(mode: str, fault: str, sleeps: list[float]) -> None:
    with EmbeddingServer(dim=64, faults=[fault, fault]) as srv:
        out = embed(client(srv, model="m", backoff_base=0.1), TEXTS, mode)
        np.testing.assert_allclose(out, reference(srv, TEXTS), atol=1e-6)
        assert len(sleeps) == 2
        # exponential with jitter: attempt k waits in [0.5, 1] x 0.1 x 2^k
        assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2


def test_timeout_is_retried(mode: str) -> None:
    with EmbeddingServer(dim=64, faults=["slow"], slow_seconds=1.0) as srv:
        out = embed(client(srv, model="m", timeout=0.3), ["a", "b"], mode)
        np.testing.assert_allclose(out, reference(srv, ["a", "b"]), atol=1e-6)
        assert len(srv.requests) == 2


def test_retries_exhausted_raise_with_status_and_body(mode: str, sleeps: list[float]) -> None:
    with EmbeddingServer(dim=64, faults=["503"] * 10) as srv:
        with pytest.raises(EmbeddingServiceError) as info:
            embed(client(srv, model="m", max_retries=2), ["a"], mode)
        assert info.value.status == 503
        assert "server overloaded" in (info.value.body or "")
        assert "HTTP 503 after 3 attempts" in str(info.value)
        assert len(srv.requests) == 3


def test_connection_refused_is_a_clear_error(mode: str, sleeps: list[float]) -> None:
    srv = EmbeddingServer(dim=64).start()
    url = srv.base_url
    srv.stop()  # nothing listens there any more
    emb = RemoteEmbedder(url, model="m", max_retries=1)
    with pytest.raises(EmbeddingServiceError, match="ConnectError after 2 attempts"):
        embed(emb, ["a"], mode)


# ---------------------------------------------------------------------------- answers that are refused
@pytest.mark.parametrize(
    "fault,message",
    [
        ("wrong_count", "asked for 10 embeddings, the server returned 9"),
        ("nan", "input 5: the answer holds NaN"),
        ("wrong_width", "63-d vectors, expected 64"),
        ("bad_index", "indices are"),
    ],
)
def test_malformed_answers_are_refused(mode: str, fault: str, message: str) -> None:
    """Bad server answers: one embedding short, a NaN, a width one short, an out-of-range index."""
    with EmbeddingServer(dim=64, faults=["ok", fault]) as srv:
        emb = client(srv, model="m")
        embed(emb, TEXTS, mode)  # learns the width 64 from a good answer
        with pytest.raises(EmbeddingServiceError, match=message):
            embed(emb, TEXTS, mode)


@pytest.mark.parametrize("fmt", ["base64", "float"])
def test_nan_is_refused_in_both_encodings(fmt: str) -> None:
    with EmbeddingServer(dim=64, faults=["nan"]) as srv:
        with pytest.raises(EmbeddingServiceError, match="NaN"):
            client(srv, model="m", encoding_format=fmt).embed_documents(["a", "b"])


def test_client_errors_are_not_retried_and_surface_the_message(sleeps: list[float]) -> None:
    with EmbeddingServer(dim=64, max_batch=1, batch_status=400) as srv:
        # a 400 that is not about batch size, dimensions or encoding: e.g. the server refuses input
        srv.max_batch = None
        emb = client(srv, model="m")
        emb.model = "x"
        # force an invalid body: the server checks input types
        with pytest.raises(EmbeddingServiceError, match="input must be a string or array of strings") as info:
            emb._embed_batch([1, 2])  # type: ignore[list-item]
        assert info.value.status == 400 and sleeps == []


# ---------------------------------------------------------------------------- keys and configuration
def test_api_key_is_sent_but_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-SECRET-1234567890"
    monkeypatch.setenv("QWEN_EMBED_API_KEY", secret)
    with EmbeddingServer(dim=64, api_key=secret) as srv:
        emb = client(srv, model="m")
        emb.embed_documents(["a"])
        assert srv.headers[0]["Authorization"] == f"Bearer {secret}"
        assert secret not in repr(emb) and "***" in repr(emb)
        cfg = emb.to_config()
        assert secret not in str(cfg) and cfg["api_key_env"] == "QWEN_EMBED_API_KEY"
        rebuilt = embedder_from_config(cfg)
        rebuilt.embed_documents(["b"])  # key read back from the environment
        wrong = client(srv, model="m", api_key="sk-wrong-key-000")
        with pytest.raises(EmbeddingServiceError) as info:
            wrong.embed_documents(["a"])
        assert info.value.status == 401 and "sk-wrong-key-000" not in str(info.value)


def test_openai_api_key_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QWEN_EMBED_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-abc")
    emb = RemoteEmbedder("http://127.0.0.1:9/v1")
    assert emb.to_config()["api_key_env"] == "OPENAI_API_KEY"
    assert "sk-openai-abc" not in repr(emb)


def test_config_round_trip_and_env() -> None:
    emb = RemoteEmbedder("http://127.0.0.1:8000", "Qwen3-Embedding-4B", dimensions=512, batch_size=16)
    # A bare host is kept as given: the rebuilt embedder finds its route again (/v1/embeddings or /embeddings).
    assert emb.base_url == "http://127.0.0.1:8000" and emb.endpoint_url is None
    cfg = emb.to_config()
    assert cfg == {
        "engine": "remote", "base_url": "http://127.0.0.1:8000", "model": "Qwen3-Embedding-4B",
        "dimensions": 512, "query_instruction": None, "batch_size": 16, "max_concurrency": 4,
        "max_retries": 5, "timeout": 60.0, "api_key_env": cfg["api_key_env"], "send_dimensions": True,
        "encoding_format": "base64", "truncate": False, "max_requests_per_minute": None,
        "max_tokens_per_minute": None, "backoff_base": 0.5, "backoff_max": 20.0, "max_retry_after": 60.0,
        "headers": None, "header_envs": None,
    }
    again = embedder_from_config(cfg)
    assert isinstance(again, RemoteEmbedder) and again.dimension == 512 and again.batch_size == 16
    env = {"QWEN_EMBED_BASE_URL": "http://h:1/v1", "QWEN_EMBED_MODEL": "Qwen3-Embedding-8B", "QWEN_EMBED_DIMENSIONS": "1024"}
    e = embedder_from_env(env)
    assert isinstance(e, RemoteEmbedder) and e.dimension == 1024 and e.model == "Qwen3-Embedding-8B"
    with pytest.raises(ConfigurationError, match="missing QWEN_EMBED_BASE_URL"):
        embedder_from_env({})
    with pytest.raises(ConfigurationError, match="QWEN_EMBED_DIMENSIONS must be an integer"):
        embedder_from_env({"QWEN_EMBED_BASE_URL": "http://h:1", "QWEN_EMBED_DIMENSIONS": "big"})


def test_a_key_echoed_across_the_body_cut_is_not_shown_in_part() -> None:
    """Bad answer: a 401 whose body echoes the key so that it straddles the 800-character cut of
    shown bodies; no prefix of the key may appear in the error or its ``body``."""
    secret = "sk-test-SECRET-1234567890"
    text = "x" * 784 + f"bad key {secret} refused"  # the key spans characters 792..816
    emb = RemoteEmbedder("http://127.0.0.1:9/v1", api_key=secret, max_retries=0,
                         transport=httpx.MockTransport(lambda request: httpx.Response(401, text=text)))
    with pytest.raises(EmbeddingServiceError) as info:
        emb.embed_documents(["a"])
    assert secret[:6] not in str(info.value) and secret[:6] not in (info.value.body or "")
    assert "***" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        [{"index": 0, "embedding": [1.0, 0.0]}, {"embedding": [0.0, 1.0]}],
        [{"index": 0, "embedding": [1.0, 0.0]}, [0.0, 1.0]],
    ],
)
def test_an_answer_with_index_on_some_items_only_is_a_service_error(data: list[Any]) -> None:
    """Bad answer: the first item has an 'index', the second has none (or is not an object)."""
    emb = RemoteEmbedder("http://127.0.0.1:9/v1", model="m", max_retries=0,
                         transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"data": data})))
    with pytest.raises(EmbeddingServiceError, match="index"):
        emb.embed_documents(["a", "b"])
