"""`qwen-embed serve` as a real subprocess on 127.0.0.1, driven by the openai SDK, RemoteEmbedder and httpx."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import numpy as np
import openai
import pytest

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.errors import EmbeddingServiceError
from qwen_embed_adapters.local import LocalEmbedder
from tests.support import local_fixtures
from tests.support.local_fixtures import ServeProcess, start_serve

tiny_qwen3_dir = local_fixtures.tiny_qwen3_dir
serve_tiny = local_fixtures.serve_tiny

pytestmark = pytest.mark.integration

TEXTS = [
    "Beijing is the capital of China",
    "机器学习是人工智能的一个分支",
    "a",
    "The quick brown fox jumps over the lazy dog. " * 20,
]


@pytest.fixture(scope="module")
def local(tiny_qwen3_dir: str) -> LocalEmbedder:
    return LocalEmbedder(tiny_qwen3_dir, device="cpu", max_length=512)


def _post(server: ServeProcess, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{server.base_url}/embeddings", content=data,
                      headers={"content-type": "application/json", **(headers or {})}, timeout=30)


def test_health_and_models(serve_tiny: ServeProcess) -> None:
    assert httpx.get(f"{serve_tiny.root_url}/health").json() == {"status": "ok"}
    models = httpx.get(f"{serve_tiny.base_url}/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["tiny-qwen3"]


def test_v1_embeddings_route_answers_a_post(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    r = httpx.post(f"{serve_tiny.root_url}/v1/embeddings",
                   json={"model": "tiny-qwen3", "input": TEXTS[:2], "encoding_format": "float"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["model"] == "tiny-qwen3"
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    np.testing.assert_allclose(np.array([d["embedding"] for d in body["data"]], dtype=np.float32),
                               local.embed_documents(TEXTS[:2]), atol=1e-5)


def test_openai_sdk_base64_default_equals_in_process(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    # the SDK decodes base64 before the caller sees it, so a server that ignored base64 and sent floats
    # would pass the vector check too: what went over the wire is recorded and checked here
    sent: list[dict] = []
    answered: list[dict] = []

    def on_request(request: httpx.Request) -> None:
        sent.append(json.loads(request.content))

    def on_response(response: httpx.Response) -> None:
        response.read()
        answered.append(response.json())

    http = httpx.Client(event_hooks={"request": [on_request], "response": [on_response]})
    client = openai.OpenAI(base_url=serve_tiny.base_url, api_key="unused", max_retries=0, http_client=http)
    resp = client.embeddings.create(model="tiny-qwen3", input=TEXTS)  # the SDK asks for base64
    http.close()
    assert [b["encoding_format"] for b in sent] == ["base64"]
    wire = answered[0]["data"]
    assert all(isinstance(d["embedding"], str) for d in wire)  # base64 strings, not float lists
    decoded = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in wire])
    np.testing.assert_allclose(decoded, local.embed_documents(TEXTS), atol=1e-5)
    got = np.array([d.embedding for d in resp.data], dtype=np.float32)
    assert [d.index for d in resp.data] == [0, 1, 2, 3]
    assert got.shape == (4, 64)
    np.testing.assert_allclose(got, local.embed_documents(TEXTS), atol=1e-5)
    assert resp.usage.prompt_tokens == sum(local.token_counts(TEXTS))
    assert resp.model == "tiny-qwen3"


def test_openai_sdk_floats_and_dimensions(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    client = openai.OpenAI(base_url=serve_tiny.base_url, api_key="unused", max_retries=0)
    resp = client.embeddings.create(model="tiny-qwen3", input=TEXTS[0], encoding_format="float")
    np.testing.assert_allclose(np.array(resp.data[0].embedding, dtype=np.float32),
                               local.embed_documents(TEXTS[:1])[0], atol=1e-5)
    resp = client.embeddings.create(model="tiny-qwen3", input=TEXTS, dimensions=32, encoding_format="float")
    got = np.array([d.embedding for d in resp.data], dtype=np.float32)
    full = local.embed_documents(TEXTS)[:, :32]
    np.testing.assert_allclose(got, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_remote_embedder_equals_local(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    with RemoteEmbedder(serve_tiny.base_url, model="tiny-qwen3", batch_size=3) as remote:
        np.testing.assert_allclose(remote.embed_documents(TEXTS), local.embed_documents(TEXTS), atol=1e-5)
        # both apply the same Qwen3 instruction client-side, so queries agree too
        np.testing.assert_allclose(remote.embed_query("capital of China", instruction="Find the city"),
                                   local.embed_query("capital of China", instruction="Find the city"),
                                   atol=1e-5)
    with RemoteEmbedder(serve_tiny.base_url, model="tiny-qwen3", dimensions=48) as remote:
        got = remote.embed_documents(TEXTS)
        assert got.shape == (4, 48)
        np.testing.assert_allclose(got, LocalEmbedder(local.path.as_posix(), device="cpu", dimensions=48,
                                                      max_length=512).embed_documents(TEXTS), atol=1e-5)


async def test_concurrent_clients_get_their_own_rows(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    texts = [f"request number {i} " + "word " * (i % 7 * 9) for i in range(24)]
    async with httpx.AsyncClient(base_url=serve_tiny.base_url, timeout=60) as client:
        resps = await asyncio.gather(*[
            client.post("/embeddings", json={"model": "tiny-qwen3", "input": t, "encoding_format": "float"})
            for t in texts
        ])
    got = np.array([r.json()["data"][0]["embedding"] for r in resps], dtype=np.float32)
    np.testing.assert_allclose(got, local.embed_documents(texts), atol=1e-5)


@pytest.mark.parametrize(
    ("body", "status", "param", "needle"),
    [
        (b"{not json", 400, None, "not valid JSON"),
        (b"[1, 2]", 400, None, "must be a JSON object"),
        ({"model": "tiny-qwen3"}, 400, "input", "'input' is required"),
        ({"input": 42}, 400, "input", "got int"),
        ({"input": ["ok", "fine", None]}, 400, "input", "input[2] is NoneType"),
        ({"input": ["ok", ""]}, 400, "input", "input[1] is an empty string"),
        ({"input": [[1, 2, 3]]}, 400, "input", "token-id arrays are not supported"),
        ({"input": []}, 400, "input", "empty list"),
        ({"input": ["x"] * 65}, 400, "input", "at most 64"),
        ({"input": ["short", "word " * 600]}, 400, "input", "input[1] is 1802 tokens long; this model takes at most 512"),
        ({"input": "hi", "dimensions": 65}, 400, "dimensions", "between 1 and 64"),
        ({"input": "hi", "dimensions": 0}, 400, "dimensions", "between 1 and 64"),
        ({"input": "hi", "dimensions": "32"}, 400, "dimensions", "must be an integer"),
        ({"input": "hi", "encoding_format": "int8"}, 400, "encoding_format", "'float' or 'base64'"),
        ({"input": "hi", "model": "gpt-4"}, 404, "model", "'gpt-4' is not served here"),
    ],
)
def test_bad_requests_get_openai_errors(serve_tiny: ServeProcess, body: object, status: int,
                                        param: str | None, needle: str) -> None:
    """Bad input: malformed JSON, wrong types, None/empty items, token arrays, an empty list, too many
    inputs, an over-long input, dimensions out of range or of the wrong type, a bad format, unknown model."""
    resp = _post(serve_tiny, body)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert needle in err["message"]
    assert err["param"] == param
    assert err["type"] == "invalid_request_error"


def test_remote_embedder_surfaces_the_servers_400(serve_tiny: ServeProcess) -> None:
    """Bad input: a text over the server's 512-token limit; the 400 message reaches the caller."""
    with RemoteEmbedder(serve_tiny.base_url, model="tiny-qwen3", max_retries=0) as remote:
        with pytest.raises(EmbeddingServiceError) as info:
            remote.embed_documents(["fine", "word " * 600])
    assert info.value.status == 400
    assert "input[1] is 1802 tokens long" in str(info.value) + (info.value.body or "")


def test_api_key_and_auto_truncate(tiny_qwen3_dir: str, local: LocalEmbedder) -> None:
    """Bad input: no key and a wrong key (401); with --auto-truncate an over-long input is cut, not refused."""
    server = start_serve(tiny_qwen3_dir, ["--max-length", "512", "--auto-truncate"], api_key="s3cret-key")
    try:
        assert httpx.get(f"{server.root_url}/health").status_code == 200  # health needs no key
        no_key = _post(server, {"input": "hi"})
        assert no_key.status_code == 401
        assert no_key.json()["error"]["code"] == "invalid_api_key"
        wrong = _post(server, {"input": "hi"}, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "s3cret-key" not in wrong.text
        long_text = "word " * 600
        ok = httpx.post(f"{server.base_url}/embeddings", json={"input": [long_text], "encoding_format": "float"},
                        headers={"authorization": "Bearer s3cret-key"}, timeout=30)
        assert ok.status_code == 200, ok.text
        assert ok.json()["usage"]["prompt_tokens"] == 512
        np.testing.assert_allclose(np.array(ok.json()["data"][0]["embedding"], dtype=np.float32),
                                   local.embed_documents([long_text])[0], atol=1e-5)
        with RemoteEmbedder(server.base_url, model="tiny-qwen3", api_key="s3cret-key") as remote:
            assert remote.embed_documents(["hello"]).shape == (1, 64)
    finally:
        server.stop()


def test_remote_embedder_learns_the_servers_input_cap(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    """serve answers 400 "takes at most 64 per request" (code too_many_inputs) to 256 inputs: the client
    sets its batch cap to 64 at once and every vector still equals the in-process one."""
    texts = [f"cap text {i}" for i in range(300)]
    with RemoteEmbedder(serve_tiny.base_url, model="tiny-qwen3", batch_size=256) as emb:
        got = emb.embed_documents(texts)
        assert emb.batch_size == 64
    np.testing.assert_allclose(got, local.embed_documents(texts), atol=1e-5)


def _vectors(resp: httpx.Response) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    return np.array([d["embedding"] for d in resp.json()["data"]], dtype=np.float32)


def test_input_type_query_wraps_like_embed_queries(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    texts = TEXTS[:3]
    query = _vectors(_post(serve_tiny, {"model": "tiny-qwen3", "input": texts, "input_type": "query"}))
    np.testing.assert_allclose(query, local.embed_queries(texts), atol=1e-5)
    custom = _vectors(_post(serve_tiny, {"input": texts, "input_type": "query", "instruction": "Find the city"}))
    np.testing.assert_allclose(custom, local.embed_queries(texts, instruction="Find the city"), atol=1e-5)
    assert not np.allclose(custom, query, atol=1e-3)  # the instruction really changed what was embedded
    # usage counts the wrapped text, as embed_queries tokenises it
    resp = _post(serve_tiny, {"input": texts, "input_type": "query"})
    assert resp.json()["usage"]["prompt_tokens"] == sum(local.token_counts(local.format_queries(texts)))
    for body in ({"input": texts, "input_type": "document"}, {"input": texts}, {"input": texts, "input_type": "passage"}):
        np.testing.assert_allclose(_vectors(_post(serve_tiny, body)), local.embed_texts(texts), atol=1e-5)
    assert not np.allclose(query, local.embed_texts(texts), atol=1e-3)


@pytest.mark.parametrize(("body", "param", "needle"), [
    ({"input": "x", "input_type": "search_query"}, "input_type", "'search_query'"),  # Cohere's v3 wording
    ({"input": "x", "input_type": 3}, "input_type", "got 3"),
    ({"input": "x", "input_type": "query", "instruction": ["a"]}, "instruction", "must be a string, got list"),
    ({"input": "x", "input_type": "document", "instruction": "Find"}, "instruction", "only applies to input_type"),
])
def test_bad_input_type_or_instruction_is_400(serve_tiny: ServeProcess, body: dict[str, object], param: str,
                                              needle: str) -> None:
    resp = _post(serve_tiny, body)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["param"] == param
    assert needle in err["message"]
    assert err["type"] == "invalid_request_error"
