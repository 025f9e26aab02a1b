"""llama.cpp's server (``llama-cpp-python[server]``, compiled here) serving a GGUF of the tiny Qwen3.

The GGUF is made by llama.cpp's own ``convert_hf_to_gguf.py`` (from the llama-cpp-python sdist, see
tests/support/gguf_convert.py) at f32, and carries last-token pooling from the folder's
sentence-transformers config: how llama.cpp and Ollama serve Qwen3-Embedding GGUF files. llama.cpp
returns unnormalised vectors; RemoteEmbedder normalises, so it must equal LocalEmbedder on the same
weights. Tolerance: 5e-4 (f32 GGUF, llama.cpp's own kernels). Measured max difference with
llama-cpp-python 0.3.36: 1.2e-4 (1.1e-4 on TEXTS, 1.2e-4 on MANY), the figure docs/compatibility.md gives.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.local import LocalEmbedder
from tests.support import local_fixtures
from tests.support.engines import EngineProcess, engine_venv, llamacpp_source, start_engine
from tests.support.recording_proxy import RecordingProxy

tiny_qwen3_dir = local_fixtures.tiny_qwen3_dir

pytestmark = [pytest.mark.engines, pytest.mark.integration]

ATOL = 5e-4
MODEL = "tiny-qwen3-gguf"
TEXTS = [
    "Beijing is the capital of China",
    "机器学习是人工智能的一个分支",
    "a",
    "The quick brown fox jumps over the lazy dog. " * 10,
]


@pytest.fixture(scope="module")
def tiny_gguf(tiny_qwen3_dir: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    venv = engine_venv("llamacpp")
    src = llamacpp_source()
    out = tmp_path_factory.mktemp("gguf") / "tiny-qwen3-f32.gguf"
    convert = Path(__file__).resolve().parents[1] / "support" / "gguf_convert.py"
    proc = subprocess.run([str(venv / "bin" / "python"), str(convert), str(src), tiny_qwen3_dir,
                           "--outfile", str(out), "--outtype", "f32"], capture_output=True, text=True)
    assert proc.returncode == 0, f"convert_hf_to_gguf.py failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert out.stat().st_size > 0
    return str(out)


@pytest.fixture(scope="module")
def llama_server(tiny_gguf: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    venv = engine_venv("llamacpp")
    cmd = [str(venv / "bin" / "python"), "-m", "llama_cpp.server", "--model", tiny_gguf, "--model_alias", MODEL,
           "--embedding", "true", "--n_ctx", "512", "--n_threads", "1",
           "--host", "127.0.0.1", "--port", "{port}"]
    server = start_engine("llamacpp", cmd, health_path="/v1/models", log_dir=tmp_path_factory.mktemp("llamacpp"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def local(tiny_qwen3_dir: str) -> LocalEmbedder:
    return LocalEmbedder(tiny_qwen3_dir, device="cpu", max_length=512)


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_remote_equals_local(llama_server: EngineProcess, local: LocalEmbedder, encoding_format: str) -> None:
    with RemoteEmbedder(f"{llama_server.root_url}/v1", model=MODEL, encoding_format=encoding_format,
                        batch_size=2) as remote:
        got = remote.embed_documents(TEXTS)
    assert got.shape == (len(TEXTS), 64)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, local.embed_documents(TEXTS), atol=ATOL)


def test_server_returns_unnormalised_last_token_vectors(llama_server: EngineProcess, local: LocalEmbedder) -> None:
    r = httpx.post(f"{llama_server.root_url}/v1/embeddings", json={"model": MODEL, "input": TEXTS[:2]}, timeout=60)
    assert r.status_code == 200, r.text
    raw = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    norms = np.linalg.norm(raw, axis=1)
    assert np.all(np.abs(norms - 1.0) > 1e-2)  # llama.cpp leaves normalising to the client
    np.testing.assert_allclose(raw / norms[:, None], local.embed_documents(TEXTS[:2]), atol=ATOL)


def test_query_instruction_and_dimensions(llama_server: EngineProcess, local: LocalEmbedder) -> None:
    # the instruction text is built client-side; the default one only for a known Qwen3 model name,
    # so with this GGUF's alias it is passed explicitly
    task = "Given a web search query, retrieve relevant passages that answer the query"
    with RemoteEmbedder(f"{llama_server.root_url}/v1", model=MODEL, query_instruction=task) as remote:
        np.testing.assert_allclose(remote.embed_query("capital of China"), local.embed_query("capital of China"),
                                   atol=ATOL)
        np.testing.assert_allclose(remote.embed_query("capital of China", instruction="Find the city"),
                                   local.embed_query("capital of China", instruction="Find the city"), atol=ATOL)
    # whatever llama.cpp does with `dimensions`, ours comes back truncated then renormalised
    with RemoteEmbedder(f"{llama_server.root_url}/v1", model=MODEL, dimensions=32) as remote:
        got = remote.embed_documents(TEXTS)
    full = local.embed_documents(TEXTS)[:, :32]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, full / np.linalg.norm(full, axis=1, keepdims=True), atol=ATOL)


def test_token_id_input(llama_server: EngineProcess) -> None:
    # bad input: token ids, what LangChain's OpenAIEmbeddings sends by default
    r = httpx.post(f"{llama_server.root_url}/v1/embeddings", json={"model": MODEL, "input": [[9707, 1879]]},
                   timeout=60)
    # llama-cpp-python wraps the request-validation error as a 500 (a client that retries 5xx retries it)
    assert r.status_code == 500, r.text
    assert "Input should be a valid string" in r.json()["error"]["message"]


def test_wire_dimensions_and_base64(llama_server: EngineProcess) -> None:
    url = f"{llama_server.root_url}/v1/embeddings"
    r = httpx.post(url, json={"model": MODEL, "input": ["a"], "dimensions": 32, "encoding_format": "float"}, timeout=60)
    assert r.status_code == 200, r.text
    assert len(r.json()["data"][0]["embedding"]) == 64  # `dimensions` is ignored: the client must truncate
    r = httpx.post(url, json={"model": MODEL, "input": ["a"], "encoding_format": "base64"}, timeout=60)
    assert r.status_code == 200, r.text
    emb = r.json()["data"][0]["embedding"]
    # base64 is accepted but ignored: floats come back (RemoteEmbedder takes either, test_remote_equals_local)
    assert isinstance(emb, list) and len(emb) == 64


MANY = [f"sentence number {i} about topic {i % 7}" for i in range(150)]


def test_no_batch_cap_met(llama_server: EngineProcess, local: LocalEmbedder) -> None:
    # llama-cpp-python has no per-request input cap (Llama.embed packs inputs into n_batch-token decode
    # batches): 150 texts in one raw request, then RemoteEmbedder's full batches of 64, none refused
    r = httpx.post(f"{llama_server.root_url}/v1/embeddings", json={"model": MODEL, "input": MANY}, timeout=120)
    assert r.status_code == 200, r.text
    assert [d["index"] for d in r.json()["data"]] == list(range(len(MANY)))
    with RecordingProxy(llama_server.root_url) as proxy:
        with RemoteEmbedder(f"{proxy.url}/v1", model=MODEL, batch_size=64, max_concurrency=1) as remote:
            got = remote.embed_documents(MANY)
            assert remote.batch_size == 64
    assert sorted((len(e.body["input"]), e.status) for e in proxy.posts("/embeddings")) == [
        (22, 200), (64, 200), (64, 200)]
    np.testing.assert_allclose(got, local.embed_documents(MANY), atol=ATOL)


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
def test_rerank_is_not_served(llama_server: EngineProcess, path: str) -> None:
    # llama-cpp-python's server has no rerank route (llama_cpp/server/app.py: completions, chat,
    # embeddings, models, tokenize): the request falls through to FastAPI's 404
    r = httpx.post(f"{llama_server.root_url}{path}", json={"model": MODEL, "query": "q", "documents": ["a", "b"]},
                   timeout=30)
    assert r.status_code == 404, r.text
