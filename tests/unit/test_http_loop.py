"""The HTTP layer without a server: the request loop driven by scripted answers (httpx.MockTransport),
the loop's decisions read as Enum steps, client injection, and one async client per event loop."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.errors import (
    EmbeddingRateLimitError,
    EmbeddingServiceError,
    InvalidInputError,
    ServiceError,
)
from qwen_embed_adapters.http.loop import OpKind, Request, StepKind
from qwen_embed_adapters.http.session import LoopClients
from qwen_embed_adapters.rerank import RemoteReranker

Handler = Callable[[httpx.Request], httpx.Response]


def vectors(n: int, width: int = 4, fmt: str = "float") -> list[dict[str, object]]:
    rows = [np.eye(width, dtype=np.float32)[i % width] for i in range(n)]
    if fmt == "base64":
        return [{"index": i, "embedding": base64.b64encode(r.tobytes()).decode()} for i, r in enumerate(rows)]
    return [{"index": i, "embedding": r.tolist()} for i, r in enumerate(rows)]


class Script:
    """Answers requests in turn from ``answers`` (a callable gets the request's JSON body) and records them."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, object], httpx.Headers]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((str(request.url), body, request.headers))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(body)  # type: ignore[no-any-return]
        assert isinstance(answer, httpx.Response)
        return answer

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def ok(body: dict[str, object]) -> httpx.Response:
    inputs = body["input"]
    assert isinstance(inputs, list)
    return httpx.Response(200, json={"data": vectors(len(inputs), fmt=str(body["encoding_format"]))})


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Records every pause instead of sleeping (sync and async)."""
    delays: list[float] = []

    async def fake_async_sleep(d: float) -> None:
        delays.append(d)

    monkeypatch.setattr("time.sleep", delays.append)
    monkeypatch.setattr("asyncio.sleep", fake_async_sleep)
    yield delays


def embedder(script: Script, **kw: object) -> RemoteEmbedder:
    kw.setdefault("model", "m")
    return RemoteEmbedder(str(kw.pop("url", "http://h:1/v1")), transport=script.transport, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_503_is_retried_with_backoff_then_answered(mode: str, sleeps: list[float]) -> None:
    script = Script(httpx.Response(503, text="busy"), httpx.Response(503, text="busy"), ok)
    emb = embedder(script, backoff_base=0.5)
    out = emb.embed_documents(["a", "b"]) if mode == "sync" else asyncio.run(emb.aembed_documents(["a", "b"]))
    assert out.shape == (2, 4) and len(script.requests) == 3
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # 0.5 * 2**k, jitter 50-100%


def test_429_waits_retry_after_and_gives_up_as_a_rate_limit_error(sleeps: list[float]) -> None:
    # Bad answer: the server refuses every attempt with 429 and Retry-After: 3.
    script = Script(httpx.Response(429, text="slow down", headers={"Retry-After": "3"}))
    emb = embedder(script, max_retries=2)
    with pytest.raises(EmbeddingRateLimitError) as info:
        emb.embed_documents(["a"])
    assert sleeps == [3.0, 3.0] and info.value.status == 429 and info.value.retry_after == 3.0
    assert "HTTP 429 after 3 attempts: slow down" in str(info.value)


def test_a_transport_error_is_retried_then_named(sleeps: list[float]) -> None:
    # Bad answer: the connection is refused every time.
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(EmbeddingServiceError, match=r"http://h:1/v1/embeddings: ConnectError after 2 attempts: refused"):
        embedder(script, max_retries=1).embed_documents(["a"])
    assert len(script.requests) == 2 and len(sleeps) == 1


def test_route_discovery_moves_from_v1_to_the_root_and_keeps_it() -> None:
    def infinity(body: dict[str, object]) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not Found"})

    script = Script(infinity, ok, ok)
    emb = embedder(script, url="http://h:7997")
    emb.embed_documents(["a"])
    emb.embed_documents(["b"])
    assert [u for u, _, _ in script.requests] == ["http://h:7997/v1/embeddings", "http://h:7997/embeddings",
                                                  "http://h:7997/embeddings"]
    assert emb.endpoint_url == "http://h:7997/embeddings"


def test_no_route_answering_names_every_route_and_the_engines_hint() -> None:
    # Bad answer: 404 on every route.
    script = Script(httpx.Response(404, json={"detail": "Not Found"}))
    with pytest.raises(EmbeddingServiceError) as info:
        embedder(script, url="http://h:7997").embed_documents(["a"])
    msg = str(info.value)
    assert "tried http://h:7997/v1/embeddings (HTTP 404), http://h:7997/embeddings (HTTP 404)" in msg
    assert "Infinity answers on /embeddings by default" in msg


def test_refused_dimensions_and_base64_are_learnt_once() -> None:
    def picky(body: dict[str, object]) -> httpx.Response:
        if "dimensions" in body:
            return httpx.Response(400, json={"message": "This model does not support matryoshka representation"})
        if body["encoding_format"] == "base64":
            return httpx.Response(400, json={"message": "encoding_format base64 is not supported"})
        return httpx.Response(200, json={"data": vectors(len(body["input"]), width=8)})  # type: ignore[arg-type]

    script = Script(picky)
    emb = embedder(script, dimensions=4)
    out = emb.embed_documents(["a", "b"])
    assert out.shape == (2, 4) and np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert (emb.send_dimensions, emb.encoding_format) == (False, "float")
    emb.embed_documents(["c"])
    assert len(script.requests) == 4  # two refusals, then every request is accepted at once
    assert script.requests[-1][1] == {"model": "m", "input": ["c"], "encoding_format": "float"}


def test_a_batch_cap_in_the_refusal_splits_and_is_kept() -> None:
    def tei(body: dict[str, object]) -> httpx.Response:
        n = len(body["input"])  # type: ignore[arg-type]
        if n > 2:
            return httpx.Response(413, json={"error": f"batch size {n} > maximum allowed batch size 2"})
        return ok(body)

    script = Script(tei)
    emb = embedder(script, batch_size=5)
    assert emb.embed_documents(list("abcde")).shape == (5, 4)
    assert [len(b["input"]) for _, b, _ in script.requests] == [5, 2, 2, 1]  # type: ignore[arg-type]
    assert emb.batch_size == 2


def test_an_over_long_input_is_named_or_truncated_with_the_engines_switch() -> None:
    refusal = httpx.Response(413, json={"error": "Input validation error: `inputs` must have less than 8 tokens. "
                                                 "Given: 20"})

    def tei(body: dict[str, object]) -> httpx.Response:
        too_long = any(len(t.split()) > 8 for t in body["input"])  # type: ignore[attr-defined]
        return refusal if too_long and body.get("truncate") is not True else ok(body)

    # Bad input: one input over the model's length, truncation off: InvalidInputError naming it.
    with pytest.raises(InvalidInputError, match="input 1: 20 tokens, the server takes at most 8") as info:
        embedder(Script(tei)).embed_documents(["short", "long " * 20])
    assert (info.value.index, info.value.tokens, info.value.limit) == (1, 20, 8)
    script = Script(tei)
    assert embedder(script, truncate=True).embed_documents(["short", "long " * 20]).shape == (2, 4)
    assert script.requests[-1][1]["truncate"] is True


def test_a_malformed_answer_is_a_service_error_showing_the_scrubbed_body() -> None:
    # Bad answer: 200 with HTML, echoing the key.
    script = Script(httpx.Response(200, text="<html>gateway sk-secret-777</html>"))
    with pytest.raises(EmbeddingServiceError) as info:
        embedder(script, api_key="sk-secret-777").embed_documents(["a"])
    assert "malformed answer" in str(info.value) and "<html>gateway ***</html>" in str(info.value)
    assert "sk-secret-777" not in str(info.value) and info.value.status == 200


def test_the_loop_yields_enum_ops_and_decides_enum_steps() -> None:
    emb = RemoteEmbedder("http://h:1/v1", model="m", batch_size=4)
    loop = emb._session.loop
    steps = loop.exchange(["a", "b"], None, 0)
    kind, request = next(steps)
    assert kind is OpKind.POST and isinstance(request, Request)
    assert request.body == {"model": "m", "input": ["a", "b"], "encoding_format": "base64"}
    refusal = httpx.Response(422, text="batch size 2 > maximum allowed batch size 1")
    kind, sub = steps.send(refusal)
    assert kind is OpKind.SUB and sub == (["a"], 0)
    decided = loop.decide(httpx.Response(500, text="oops"), ["a"], request, attempt=0, offset=0)
    assert decided.kind is StepKind.RETRY and decided.delay > 0
    last = loop.decide(httpx.Response(500, text="oops"), ["a"], request, attempt=5, offset=0)
    assert last.kind is StepKind.RAISE and isinstance(last.error, EmbeddingServiceError)
    steps.close()


def test_an_injected_client_is_used_and_left_open() -> None:
    script = Script(ok)
    client = httpx.Client(transport=script.transport)
    emb = RemoteEmbedder("http://h:1/v1", model="m", api_key="sk-1", http_client=client)
    emb.embed_documents(["a"])
    emb.close()
    assert not client.is_closed  # its owner closes it
    assert script.requests[0][2]["authorization"] == "Bearer sk-1"  # our headers go with each request
    with pytest.raises(TypeError, match="http_client must be an httpx.Client"):
        RemoteEmbedder("http://h:1/v1", http_client=httpx.AsyncClient())  # type: ignore[arg-type]
    client.close()


def test_one_async_client_per_event_loop() -> None:
    clients: LoopClients[object] = LoopClients()

    async def get() -> object:
        return clients.get(object)

    async def twice() -> tuple[object, object]:
        return await get(), await get()

    a, b = asyncio.run(twice())
    c = asyncio.run(get())
    assert a is b and c is not a and len(clients) == 1  # the first loop closed: its entry was dropped

    script = Script(ok)
    emb = embedder(script)
    asyncio.run(emb.aembed_documents(["a"]))
    asyncio.run(emb.aembed_documents(["b"]))
    assert len(emb._session._aclients) == 1 and len(script.requests) == 2


def test_remote_reranker_switches_to_teis_shape_through_a_mock_transport() -> None:
    def tei(body: dict[str, object]) -> httpx.Response:
        if "texts" not in body:
            return httpx.Response(422, json={"error": "Json deserialize error: missing field `texts`"})
        texts = body["texts"]
        assert isinstance(texts, list)
        return httpx.Response(200, json=[{"index": i, "score": 1.0 / (i + 1)} for i in range(len(texts))])

    script = Script(tei)
    rr = RemoteReranker("http://h:8080/rerank", transport=script.transport)
    assert rr.rerank("q", ["a", "b", "c"]) == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert rr.shape == "tei" and len(script.requests) == 2
    # Bad answer: a score that is not a number.
    bad = Script(httpx.Response(200, json={"results": [{"index": 0, "relevance_score": "high"}]}))
    with pytest.raises(ServiceError, match="result 0 \\(document 0\\) has score 'high', not a finite number"):
        RemoteReranker("http://h:8080/rerank", transport=bad.transport).score("q", ["a"])


def test_decode_answer_reads_floats_and_base64_alike() -> None:
    from qwen_embed_adapters.http.embeddings_api import decode_answer
    from qwen_embed_adapters.http.loop import AnswerError

    floats = decode_answer(httpx.Response(200, json={"data": vectors(3)}), 3)
    packed = decode_answer(httpx.Response(200, json={"data": vectors(3, fmt="base64")}), 3)
    assert floats.dtype == np.float32 and np.array_equal(floats, packed) and floats.shape == (3, 4)
    with pytest.raises(AnswerError, match="asked for 2 embeddings, the server returned 3"):  # bad answer: one too many
        decode_answer(httpx.Response(200, json={"data": vectors(3)}), 2)
