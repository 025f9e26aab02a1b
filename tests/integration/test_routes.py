"""Routes as users write them (issue 13): a URL with a path is used as given; a bare host tries
``/v1/embeddings`` then Infinity's default ``/embeddings`` and keeps what answered.

Against the stand-in server of tests/support/openai_server.py with Infinity's default routes (no
``/v1``), vLLM/TEI's (``/v1`` only) and a gateway prefix.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from qwen_embed_adapters import RemoteEmbedder, embedder_from_config
from qwen_embed_adapters.errors import EmbeddingServiceError
from qwen_embed_adapters.http.routes import route_candidates
from qwen_embed_adapters.vectors import l2_normalize
from tests.support.openai_server import INFINITY_ROUTES, V1_ROUTES, EmbeddingServer

TEXTS = [f"text number {i}" for i in range(10)]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://h:1", ["http://h:1/v1/embeddings", "http://h:1/embeddings"]),
        ("http://h:1/", ["http://h:1/v1/embeddings", "http://h:1/embeddings"]),
        ("http://h:1/v1", ["http://h:1/v1/embeddings"]),
        ("https://gateway/openai/v1", ["https://gateway/openai/v1/embeddings"]),
        ("http://h:1/v1/embeddings", ["http://h:1/v1/embeddings"]),
        ("http://h:1/embeddings", ["http://h:1/embeddings"]),
        ("http://h:1/api/embeddings/", ["http://h:1/api/embeddings"]),
    ],
)
def test_route_candidates(given: str, expected: list[str]) -> None:
    assert route_candidates(given, "embeddings") == expected


def test_rerank_route_candidates() -> None:
    assert route_candidates("http://h:1", "rerank") == ["http://h:1/v1/rerank", "http://h:1/rerank"]
    assert route_candidates("http://h:1/v1", "rerank", v1_root=True) == ["http://h:1/v1/rerank", "http://h:1/rerank"]
    assert route_candidates("http://h:1/v1/embeddings", "rerank", swap=("embeddings",), v1_root=True) == [
        "http://h:1/v1/rerank", "http://h:1/rerank",
    ]
    assert route_candidates("http://h:1/x/rerank", "rerank") == ["http://h:1/x/rerank"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_bare_host_finds_infinitys_default_route_and_keeps_it(mode: str) -> None:
    """The issue's case: Infinity with no --url-prefix answers /embeddings only."""
    with EmbeddingServer(dim=16, routes=INFINITY_ROUTES) as srv:
        emb = RemoteEmbedder(srv.root_url, "m", batch_size=4, max_concurrency=3)
        assert emb.endpoint_url is None
        run = emb.embed_documents if mode == "sync" else (lambda t: asyncio.run(emb.aembed_documents(t)))
        out = run(TEXTS)
        np.testing.assert_allclose(out, l2_normalize(srv.expected(TEXTS)), atol=1e-6)
        assert emb.endpoint_url == emb.url == f"{srv.root_url}/embeddings"
        assert srv.paths[0] == "/v1/embeddings" and "/embeddings" in srv.paths
        srv.paths.clear()
        run(TEXTS[:3])
        assert srv.paths == ["/embeddings"]  # kept for the life of the embedder
        # The config keeps what the user gave: a rebuilt embedder finds the route again.
        cfg = emb.to_config()
        assert cfg["base_url"] == srv.root_url
        again = embedder_from_config(cfg)
        assert isinstance(again, RemoteEmbedder) and again.endpoint_url is None
        again.embed_documents(["x"])
        assert again.endpoint_url == f"{srv.root_url}/embeddings"
        emb.close()
        again.close()


def test_bare_host_on_a_v1_server_takes_one_request() -> None:
    with EmbeddingServer(dim=16, routes=V1_ROUTES) as srv:
        emb = RemoteEmbedder(srv.root_url, "m")
        emb.embed_documents(["a", "b"])
        assert srv.paths == ["/v1/embeddings"] and emb.endpoint_url == f"{srv.root_url}/v1/embeddings"


@pytest.mark.parametrize(
    ("routes", "suffix"),
    [
        (V1_ROUTES, "/v1"),
        (V1_ROUTES, "/v1/embeddings"),
        (INFINITY_ROUTES, "/embeddings"),
        (("/openai/v1/embeddings",), "/openai/v1"),
        (("/openai/v1/embeddings",), "/openai/v1/embeddings/"),
    ],
)
def test_a_url_with_a_path_is_used_as_given(routes: tuple[str, ...], suffix: str) -> None:
    with EmbeddingServer(dim=16, routes=routes) as srv:
        emb = RemoteEmbedder(srv.root_url + suffix, "m")
        emb.embed_documents(["a"])
        assert srv.paths == [routes[0]] and emb.endpoint_url == srv.root_url + routes[0]
        assert emb.to_config()["base_url"] == (srv.root_url + suffix).rstrip("/")


def test_a_path_given_is_not_second_guessed() -> None:
    """Bad input: ``.../v1`` for an Infinity without --url-prefix; the client does not wander to
    other routes, and the error names the URL tried and which engines use which route."""
    with EmbeddingServer(dim=16, routes=INFINITY_ROUTES) as srv:
        emb = RemoteEmbedder(srv.base_url, "m", max_retries=0)
        with pytest.raises(EmbeddingServiceError) as err:
            emb.embed_documents(["a"])
        msg = str(err.value)
        assert f"tried {srv.root_url}/v1/embeddings (HTTP 404)" in msg
        assert "Infinity answers on /embeddings by default" in msg and err.value.status == 404
        assert srv.paths == ["/v1/embeddings"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_route_404_names_each_url_and_the_engines(mode: str) -> None:
    """Bad input: a bare host of a server with no embeddings route (several batches at once)."""
    with EmbeddingServer(dim=16, routes=("/other",)) as srv:
        emb = RemoteEmbedder(srv.root_url, "m", batch_size=2, max_retries=0)
        with pytest.raises(EmbeddingServiceError) as err:
            if mode == "sync":
                emb.embed_documents(TEXTS)
            else:
                asyncio.run(emb.aembed_documents(TEXTS))
        msg = str(err.value)
        assert f"{srv.root_url}/v1/embeddings (HTTP 404), {srv.root_url}/embeddings (HTTP 404)" in msg
        assert "TEI, vLLM, SGLang, Ollama, llama.cpp server and `qwen-embed serve` answer on /v1/embeddings" in msg
        assert emb.endpoint_url is None
