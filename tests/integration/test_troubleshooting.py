"""One test per row of the error table in docs/troubleshooting.md ("The guide's error table, row by row":
the Chinese tutorial's troubleshooting rows and its "关键提醒" on fixed dimensions): each produces the
exact exception or HTTP answer this library gives for that row. docs/troubleshooting.md cites these tests
by name.

Real parts: ``qwen-embed serve`` on a tiny random Qwen3 as a subprocess (``serve_tiny``: served as
``tiny-qwen3`` with ``--max-inputs 64``), FAISS and Chroma in-process. The EmbeddingServer stand-in is only
used for a slow server (its "slow" fault) and to count requests.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.errors import (
    DimensionMismatchError,
    EmbeddingServiceError,
    EmbeddingTimeoutError,
    InvalidInputError,
)
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support.local_fixtures import ServeProcess, free_port, serve_tiny, tiny_qwen3_dir  # noqa: F401
from tests.support.openai_server import EmbeddingServer


def _post(server: ServeProcess, body: object) -> httpx.Response:
    return httpx.post(f"{server.base_url}/embeddings", json=body, timeout=30)


# ---- 6.1 row 1: HTTP 400 "input must be a string or array of strings" ------------------------------------
def test_row_400_token_ids_by_hand(serve_tiny: ServeProcess) -> None:  # noqa: F811
    """Bad input tried: ``input=[1, 2]`` (token ids) posted by hand."""
    r = _post(serve_tiny, {"model": "tiny-qwen3", "input": [1, 2]})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "input"
    assert err["message"].startswith("input[0] is int: token-id arrays are not supported, send text")


def test_row_400_none_input_by_hand(serve_tiny: ServeProcess) -> None:  # noqa: F811
    """Bad input tried: ``input=None`` posted by hand."""
    r = _post(serve_tiny, {"model": "tiny-qwen3", "input": None})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "'input' is required: a string or a list of strings"


def test_row_400_none_in_list_caught_before_request(serve_tiny: ServeProcess) -> None:  # noqa: F811
    """Bad input tried: ``["ok", None]`` through RemoteEmbedder: refused before any request, item named."""
    emb = RemoteEmbedder(serve_tiny.base_url, "tiny-qwen3", max_retries=0)
    with pytest.raises(InvalidInputError, match=r"^texts\[1\] is None$"):
        emb.embed_documents(["ok", None])  # type: ignore[list-item]


# ---- 6.1 row 2: model 'xxx' not found ---------------------------------------------------------------------
def test_row_model_not_found_http_404(serve_tiny: ServeProcess) -> None:  # noqa: F811
    r = _post(serve_tiny, {"model": "xxx", "input": ["a"]})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "model_not_found"
    assert err["message"] == "model 'xxx' is not served here; this server serves 'tiny-qwen3'"


def test_row_model_not_found_remote_embedder(serve_tiny: ServeProcess) -> None:  # noqa: F811
    emb = RemoteEmbedder(serve_tiny.base_url, "xxx", max_retries=0)
    with pytest.raises(EmbeddingServiceError, match=r"HTTP 404: .*model 'xxx' is not served here") as info:
        emb.embed_documents(["a"])
    assert info.value.status == 404


# ---- 6.1 row 3: Connection refused ------------------------------------------------------------------------
def test_row_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    emb = RemoteEmbedder(url, max_retries=0)
    with pytest.raises(EmbeddingServiceError) as info:
        emb.embed_documents(["a"])
    msg = str(info.value)
    assert msg.startswith(f"{url}/embeddings: ConnectError after 1 attempts")
    assert "Connection refused" in msg


# ---- 6.2: out of memory -> too big a batch ----------------------------------------------------------------
def test_row_oom_too_many_inputs_by_hand(serve_tiny: ServeProcess) -> None:  # noqa: F811
    """qwen-embed serve caps inputs per request (--max-inputs 64) instead of running out of memory."""
    r = _post(serve_tiny, {"model": "tiny-qwen3", "input": ["a"] * 65})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "too_many_inputs"
    assert err["message"] == "'input' holds 65 items; this server takes at most 64 per request"


def test_row_oom_remote_embedder_splits_to_the_cap(serve_tiny: ServeProcess) -> None:  # noqa: F811
    """The same 150 texts through RemoteEmbedder(batch_size=100): the cap is learnt, all 150 come back."""
    emb = RemoteEmbedder(serve_tiny.base_url, "tiny-qwen3", batch_size=100, max_retries=0)
    vecs = emb.embed_documents([f"text {i}" for i in range(150)])
    assert vecs.shape == (150, 64)


def test_row_oom_smaller_dimensions(serve_tiny: ServeProcess) -> None:  # noqa: F811
    """减小dimensions: ``dimensions=32`` returns 32-d unit vectors."""
    import numpy as np

    emb = RemoteEmbedder(serve_tiny.base_url, "tiny-qwen3", dimensions=32, max_retries=0)
    vecs = emb.embed_documents(["a", "b"])
    assert vecs.shape == (2, 32)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)


# ---- 5.2 "关键提醒": dimension mismatch ---------------------------------------------------------------------
def test_row_dimension_mismatch_faiss(tmp_path: Path) -> None:
    """A FAISS folder built with 64-d vectors, reopened with a 32-d embedder (a changed ``dimensions``)."""
    from qwen_embed_adapters.adapters.faiss import FaissStore

    store = FaissStore(FakeEmbedder(dimensions=64), path=tmp_path / "kb")
    store.add_texts(["a", "b"], ids=["1", "2"])
    store.save()
    with pytest.raises(DimensionMismatchError) as info:
        FaissStore(FakeEmbedder(dimensions=32), path=tmp_path / "kb").add_texts(["c"], ids=["3"])
    msg = str(info.value)
    assert "64" in msg and "32" in msg, msg
    assert len(FaissStore(FakeEmbedder(dimensions=64), path=tmp_path / "kb")) == 2  # nothing half-written


def test_row_dimension_mismatch_chroma() -> None:
    chromadb = pytest.importorskip("chromadb")
    from qwen_embed_adapters.adapters.chroma import ChromaStore

    client = chromadb.EphemeralClient()
    name = f"kb{free_port()}"
    ChromaStore(client, name, FakeEmbedder(dimensions=64)).add_texts(["a"], ids=["1"])
    with pytest.raises(DimensionMismatchError) as info:
        ChromaStore(client, name, FakeEmbedder(dimensions=32), strict_model=False).add_texts(["b"], ids=["2"])
    assert str(info.value).startswith(f"dimension mismatch for '{name}': it holds 64-d vectors, got 32-d (recorded")
    assert client.get_collection(name).count() == 1


# ---- 4.3 / slow batches -----------------------------------------------------------------------------------
def test_row_slow_one_request_per_batch_not_per_text() -> None:
    """100 texts, batch_size 64: two requests, not the for-loop's 100."""
    with EmbeddingServer(dim=1024) as srv:
        RemoteEmbedder(srv.base_url, batch_size=64, max_retries=0).embed_documents([f"t{i}" for i in range(100)])
        assert sorted(len(r["input"]) for r in srv.requests) == [36, 64]


def test_row_slow_server_times_out() -> None:
    """A server slower than ``timeout``: EmbeddingTimeoutError, not a hang."""
    with EmbeddingServer(dim=1024, faults=["slow"], slow_seconds=2.0) as srv:
        emb = RemoteEmbedder(srv.base_url, max_retries=0, timeout=0.3)
        with pytest.raises(EmbeddingTimeoutError, match="Timeout"):
            emb.embed_documents(["a"])
