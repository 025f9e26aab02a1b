"""Client-side rate limits (issue 20): ``max_requests_per_minute`` and ``max_tokens_per_minute`` hold
for every call of one RemoteEmbedder, sync and async together. Scaled to seconds: the limiter has no
burst allowance, so the spacing of requests at the server shows the rate."""

from __future__ import annotations

import asyncio
import threading

import pytest

from qwen_embed_adapters import RemoteEmbedder, embedder_from_config
from qwen_embed_adapters.errors import ConfigurationError
from tests.support.openai_server import EmbeddingServer


def test_requests_per_minute_hold_across_sync_threads_and_async() -> None:
    """1200 requests a minute = one each 50 ms: 30 one-text requests from 2 threads and an event loop
    arrive over at least 29 * 50 ms * 0.9, and not much slower than the limit allows."""
    with EmbeddingServer(dim=16) as srv:
        emb = RemoteEmbedder(srv.base_url, "m", batch_size=1, max_concurrency=4, max_requests_per_minute=1200)

        def sync_calls() -> None:
            for i in range(10):
                emb.embed_documents([f"sync {threading.get_ident()} {i}"])

        async def async_calls() -> None:
            await emb.aembed_documents([f"async {i}" for i in range(10)])

        threads = [threading.Thread(target=sync_calls) for _ in range(2)]
        for t in threads:
            t.start()
        asyncio.run(async_calls())
        for t in threads:
            t.join()
        times = sorted(srv.times)
        assert len(times) == 30
        span = times[-1] - times[0]
        assert span >= 29 * 0.05 * 0.9
        rate = 29 / span * 60
        assert rate <= 1200 * 1.1, rate


def test_tokens_per_minute_use_the_servers_count() -> None:
    """60,000 tokens a minute = 1,000 a second; the stand-in counts a token per character, so 12 texts of
    200 characters (2,400 tokens, estimated at 600 before the answers correct it) take >= 2.0 s."""
    with EmbeddingServer(dim=16) as srv:
        emb = RemoteEmbedder(srv.base_url, "m", batch_size=1, max_concurrency=2, max_tokens_per_minute=60_000)
        emb.embed_documents([f"{i:03d}" + "x" * 197 for i in range(12)])
        times = sorted(srv.times)
        # The first request is free; the next 11 wait for the 200 tokens before each: 11 * 0.2 s.
        assert times[-1] - times[0] >= 11 * 0.2 * 0.9 - 0.25  # the first answers correct the estimate late


def test_limits_round_trip_and_are_checked() -> None:
    emb = RemoteEmbedder("http://127.0.0.1:9/v1", max_requests_per_minute=60, max_tokens_per_minute=1e6)
    cfg = emb.to_config()
    assert (cfg["max_requests_per_minute"], cfg["max_tokens_per_minute"]) == (60, 1e6)
    again = embedder_from_config(cfg)
    assert again._session.limiter is not None and again._session.limiter.requests_per_minute == 60  # type: ignore[attr-defined]
    assert RemoteEmbedder("http://127.0.0.1:9/v1").to_config()["max_requests_per_minute"] is None
    with pytest.raises(ConfigurationError, match="max_requests_per_minute must be above 0, got 0"):
        RemoteEmbedder("http://127.0.0.1:9/v1", max_requests_per_minute=0)


def test_the_server_side_429_and_timeouts_are_typed() -> None:
    """Bad answers: 429 on every attempt; then a server slower than the timeout. Both stay
    EmbeddingServiceErrors (existing handlers keep working) and say why through their class."""
    from qwen_embed_adapters.errors import (
        EmbeddingRateLimitError,
        EmbeddingServiceError,
        EmbeddingTimeoutError,
        RateLimitError,
        ServiceError,
        ServiceTimeoutError,
    )

    with EmbeddingServer(dim=16, faults=["429"] * 3, retry_after=0.01) as srv:
        emb = RemoteEmbedder(srv.base_url, "m", max_retries=2)
        with pytest.raises(EmbeddingRateLimitError, match="HTTP 429 after 3 attempts") as err:
            emb.embed_documents(["a"])
        assert isinstance(err.value, RateLimitError) and isinstance(err.value, EmbeddingServiceError)
        assert err.value.status == 429 and err.value.retry_after == 0.01
    with EmbeddingServer(dim=16, faults=["slow"], slow_seconds=1.0) as srv:
        emb = RemoteEmbedder(srv.base_url, "m", max_retries=0, timeout=0.2)
        with pytest.raises(EmbeddingTimeoutError, match="ReadTimeout after 1 attempts") as terr:
            emb.embed_documents(["a"])
        assert isinstance(terr.value, ServiceTimeoutError) and isinstance(terr.value, ServiceError)
        assert terr.value.status is None
