"""A real Infinity (``infinity_emb v2``) serving the packaged all-MiniLM-L6-v2, driven by RemoteEmbedder.

Infinity runs from its own venv (``scripts/engines.sh infinity``); these tests run in the project's venv
and compare against LocalEmbedder on the same folder. Infinity's default routes have no ``/v1``
(``/embeddings``, ``/rerank``, ``/models``, ``/health``); ``--url-prefix /v1`` adds one.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.local import LocalEmbedder
from qwen_embed_adapters.rerank import RemoteReranker
from tests.support import local_fixtures
from tests.support.engines import EngineProcess, engine_venv, start_engine
from tests.support.recording_proxy import RecordingProxy

minilm_dir = local_fixtures.minilm_dir

pytestmark = [pytest.mark.engines, pytest.mark.integration]

MODEL = "minilm"
BATCH_SIZE = 4  # Infinity's --batch-size: how many inputs one forward pass takes
TEXTS = [
    "Beijing is the capital of China",
    "The cat sat on the mat",
    "Photosynthesis turns light into chemical energy",
    "a",
    "机器学习是人工智能的一个分支",
    "The quick brown fox jumps over the lazy dog. " * 5,
]
MANY = [f"sentence number {i} about topic {i % 7}" for i in range(3 * BATCH_SIZE + 1)]


def _infinity(model_dir: str, tmp: Path, *extra: str, name: str = MODEL) -> EngineProcess:
    venv = engine_venv("infinity")
    cmd = [str(venv / "bin" / "infinity_emb"), "v2", "--model-id", model_dir, "--served-model-name", name,
           "--port", "{port}", "--host", "127.0.0.1", "--engine", "torch", "--device", "cpu",
           "--batch-size", str(BATCH_SIZE), "--no-bettertransformer", "--no-model-warmup", *extra]
    # /health stays at the root even with --url-prefix
    return start_engine("infinity", cmd, health_path="/health", log_dir=tmp)


@pytest.fixture(scope="module")
def infinity_root(minilm_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """Infinity with its default routes: ``/embeddings``, no ``/v1``."""
    server = _infinity(minilm_dir, tmp_path_factory.mktemp("infinity"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def infinity_v1(minilm_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """Infinity started with ``--url-prefix /v1``."""
    server = _infinity(minilm_dir, tmp_path_factory.mktemp("infinity-v1"), "--url-prefix", "/v1")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def local(minilm_dir: str) -> LocalEmbedder:
    return LocalEmbedder(minilm_dir, device="cpu")


def test_default_routes_have_no_v1(infinity_root: EngineProcess) -> None:
    # what the route fallback exists for: the OpenAI path 404s on Infinity's defaults
    assert httpx.get(f"{infinity_root.root_url}/models").status_code == 200
    body = {"model": MODEL, "input": ["x"]}
    assert httpx.post(f"{infinity_root.root_url}/v1/embeddings", json=body).status_code == 404
    assert httpx.post(f"{infinity_root.root_url}/embeddings", json=body).status_code == 200


def test_bare_root_url_equals_local(infinity_root: EngineProcess, local: LocalEmbedder) -> None:
    """The issue's headline case: Infinity's defaults and the URL a user copies from its log."""
    with RemoteEmbedder(infinity_root.root_url, model=MODEL) as remote:
        np.testing.assert_allclose(remote.embed_documents(TEXTS), local.embed_documents(TEXTS), atol=1e-4)
        assert remote.url == f"{infinity_root.root_url}/embeddings"  # the route that answered, kept
        assert remote.to_config()["base_url"] == infinity_root.root_url  # only what the user gave


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_v1_prefix_equals_local(infinity_v1: EngineProcess, local: LocalEmbedder, encoding_format: str) -> None:
    with RemoteEmbedder(f"{infinity_v1.root_url}/v1", model=MODEL, encoding_format=encoding_format) as remote:
        got = remote.embed_documents(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, local.embed_documents(TEXTS), atol=1e-4)


def test_infinity_answers_base64_on_the_wire(infinity_v1: EngineProcess, local: LocalEmbedder) -> None:
    r = httpx.post(f"{infinity_v1.root_url}/v1/embeddings",
                   json={"model": MODEL, "input": TEXTS[:2], "encoding_format": "base64"}, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["index"] for d in data] == [0, 1]
    assert isinstance(data[0]["embedding"], str)
    vecs = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype=np.float32) for d in data])
    np.testing.assert_allclose(vecs, local.embed_documents(TEXTS[:2]), atol=1e-4)


def test_dimensions_come_back_unit_length(infinity_v1: EngineProcess, local: LocalEmbedder) -> None:
    # Infinity slices without renormalising (checked on the wire below); ours = truncate, then renormalise
    raw = httpx.post(f"{infinity_v1.root_url}/v1/embeddings",
                     json={"model": MODEL, "input": TEXTS, "dimensions": 64, "encoding_format": "float"},
                     timeout=60).json()["data"]
    sliced = np.array([d["embedding"] for d in raw], dtype=np.float32)
    assert sliced.shape == (len(TEXTS), 64)
    assert np.all(np.linalg.norm(sliced, axis=1) < 0.99)  # not renormalised by Infinity
    with RemoteEmbedder(f"{infinity_v1.root_url}/v1", model=MODEL, dimensions=64) as remote:
        got = remote.embed_documents(TEXTS)
    full = local.embed_documents(TEXTS)[:, :64]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-4)


def test_request_larger_than_batch_size(infinity_v1: EngineProcess, local: LocalEmbedder) -> None:
    # one request of 13 inputs; Infinity runs them in forward passes of --batch-size 4. RemoteEmbedder
    # would split and retry on a 413/422 and still get the right vectors, so the wire is checked too:
    # one POST carrying all 13, answered 200, and the client's batch size left as it was.
    with RecordingProxy(infinity_v1.root_url) as proxy:
        with RemoteEmbedder(f"{proxy.url}/v1", model=MODEL, batch_size=64) as remote:
            got = remote.embed_documents(MANY)
            assert remote.batch_size == 64
    assert [(len(e.body["input"]), e.status) for e in proxy.posts("/embeddings")] == [(len(MANY), 200)]
    np.testing.assert_allclose(got, local.embed_documents(MANY), atol=1e-4)


# ------------------------------------------------------------------------------------------ rerank
@pytest.fixture(scope="module")
def cross_encoder_dir(minilm_dir: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small random BERT cross-encoder (MiniLM's tokenizer and shape, one logit), saved locally."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out = tmp_path_factory.mktemp("cross-encoder") / "tiny-cross-encoder"
    config = BertConfig.from_pretrained(minilm_dir, num_labels=1, num_hidden_layers=2, initializer_range=0.2)
    config.architectures = ["BertForSequenceClassification"]
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (Path(minilm_dir) / name).exists():
            shutil.copy(Path(minilm_dir) / name, out / name)
    return str(out)


@pytest.fixture(scope="module")
def infinity_rerank(cross_encoder_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    server = _infinity(cross_encoder_dir, tmp_path_factory.mktemp("infinity-rerank"), name="tiny-ce")
    try:
        yield server
    finally:
        server.stop()


def _reference_scores(model_dir: str, query: str, docs: list[str]) -> np.ndarray:
    """sentence-transformers' CrossEncoder convention for one label: sigmoid of the logit."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        batch = tok([query] * len(docs), docs, padding=True, truncation=True, return_tensors="pt")
        return torch.sigmoid(model(**batch).logits[:, 0]).numpy()


def test_rerank_wire_shape_and_order(infinity_rerank: EngineProcess, cross_encoder_dir: str) -> None:
    query = "what is the capital of China?"
    r = httpx.post(f"{infinity_rerank.root_url}/rerank",
                   json={"model": "tiny-ce", "query": query, "documents": TEXTS}, timeout=60)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert all(set(x) >= {"index", "relevance_score"} for x in results)
    expected = _reference_scores(cross_encoder_dir, query, TEXTS)
    # best first on the wire: the order Infinity sent, not one sorted here
    assert [x["index"] for x in results] == [int(i) for i in np.argsort(-expected, kind="stable")]
    wire_scores = [x["relevance_score"] for x in results]
    assert wire_scores == sorted(wire_scores, reverse=True)
    np.testing.assert_allclose(wire_scores, expected[[x["index"] for x in results]], atol=1e-4)
    with RemoteReranker(infinity_rerank.root_url, model="tiny-ce") as reranker:
        scores = reranker.score(query, TEXTS)
        ranking = reranker.rerank(query, TEXTS, top_k=3)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    assert [i for i, _ in ranking] == [int(i) for i in np.argsort(-expected, kind="stable")[:3]]
    assert all(type(i) is int and type(score) is float for i, score in ranking)  # plain JSON-able numbers


def test_query_instruction_is_applied_client_side(infinity_v1: EngineProcess, local: LocalEmbedder) -> None:
    # the Qwen3 "Instruct: ...\nQuery:" text is built by the client, so any engine serves it
    with RemoteEmbedder(f"{infinity_v1.root_url}/v1", model=MODEL) as remote:
        got = remote.embed_query("capital of China", instruction="Find the city")
    np.testing.assert_allclose(got, local.embed_query("capital of China", instruction="Find the city"), atol=1e-4)


def test_token_id_input_is_refused(infinity_root: EngineProcess) -> None:
    # bad input: token ids, what LangChain's OpenAIEmbeddings sends by default
    r = httpx.post(f"{infinity_root.root_url}/embeddings", json={"model": MODEL, "input": [[101, 7592, 102]]},
                   timeout=60)
    assert r.status_code == 422, r.text
