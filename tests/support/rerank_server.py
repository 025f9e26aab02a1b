"""A real HTTP server on 127.0.0.1 speaking the ``/rerank`` API of vLLM, TEI or Infinity, misbehaving on demand.

Scores come from a ``score(query, documents) -> list[float]`` function the test passes (usually a
LocalReranker on the tiny model), so a client's answer can be compared with the in-process one.

    with RerankServer("tei", reranker.score, max_batch=4) as srv:
        RemoteReranker(srv.base_url).score("q", docs)
        srv.requests   # (path, body) of every request, in order

Engines:
- ``vllm``: ``/rerank``, ``/v1/rerank`` and ``/v2/rerank``; ``{"model","query","documents","top_n"}`` ->
  ``{"id","model","usage","results":[{"index","document":{"text"},"relevance_score"}]}``, best first;
  a missing ``documents`` is a 400 from pydantic.
- ``tei``: ``/rerank`` only; ``{"query","texts"}`` -> ``[{"index","score"}]`` best first; a body without
  ``texts`` is TEI's 422 "Json deserialize error: missing field `texts`"; more than ``max_batch`` texts is
  TEI's 422 "batch size N > maximum allowed batch size M".
- ``infinity``: ``/rerank``; ``{"query","documents","model","top_n"}`` -> ``{"object":"rerank","results":[...],
  "model","usage","id","created"}``.
- ``vllm-qwen3-original``: like ``vllm``, but the score is computed on ``query + document`` as one raw text,
  as vLLM's ``is_original_qwen3_reranker`` mode does (the client must send the prompt template).

Sources, engine by engine:
- ``infinity``: checked against the real Infinity 0.0.78 in
  tests/engines/test_infinity.py::test_rerank_wire_shape_and_order (shape, sigmoid scores, best first).
- ``vllm`` (not run here: vLLM needs a GPU): vLLM >= 0.8's Re-rank API serves ``/rerank``, ``/v1/rerank``
  and ``/v2/rerank``, compatible with Jina's and Cohere's rerank interfaces (vLLM docs, OpenAI-Compatible
  Server, "Re-rank API": vllm-project/vllm docs/serving/openai_compatible_server.md).
- ``vllm-qwen3-original``: vLLM >= 0.9.2 serves Qwen3-Reranker as a sequence classifier with
  ``--hf_overrides '{"architectures": ["Qwen3ForSequenceClassification"], "classifier_from_token": ["no",
  "yes"], "is_original_qwen3_reranker": true}'`` and scores the raw text it is given, so the client must
  send Qwen3's prompt template (vllm-project/vllm examples/offline_inference/qwen3_reranker.py).
- ``tei`` (not run here: a Rust binary shipped as a Docker image; no registry reachable):
  text-embeddings-inference v1.9.3 ``POST /rerank`` takes ``{"query", "texts"}`` and answers
  ``[{"index", "score"}]`` sorted best first (router/src/http/server.rs sorts by score and reverses);
  more than ``--max-client-batch-size`` texts is ``batch size N > maximum allowed batch size M``
  (router/src/http/server.rs), a validation error: 422 since v1.9 (huggingface/text-embeddings-inference#818).
  A body without ``texts`` fails axum's ``Json<RerankRequest>`` extractor (router/src/http/server.rs;
  ``RerankRequest`` in router/src/http/types.rs has ``query`` and ``texts``), a 422 naming the missing
  field; the stand-in's exact wording is its own and no client here parses it.

``faults`` is consumed one per request: "503" / "429" (with Retry-After 0), "500", "drop" (close without
answering), "wrong_count", "dup_index", "nan", "bad_index", "not_json", "no_results", "too_long" (TEI's
413 "Input validation error: `inputs` must have less than 512 tokens. Given: 600", from TEI's
core/src/tokenization.rs validation), "ok". ``delay``: seconds every request waits before its answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ScoreFn = Callable[[str, list[str]], Any]

_ROUTES = {
    "vllm": {"/rerank", "/v1/rerank", "/v2/rerank"},
    "vllm-qwen3-original": {"/rerank", "/v1/rerank", "/v2/rerank"},
    "tei": {"/rerank"},
    "infinity": {"/rerank"},
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class RerankServer:
    """A fake rerank engine in a background thread on 127.0.0.1."""

    def __init__(
        self,
        engine: str,
        score: ScoreFn,
        *,
        raw_score: Callable[[list[str]], Any] | None = None,
        model: str = "Qwen3-Reranker-0.6B",
        max_batch: int | None = None,
        faults: Iterable[str] = (),
        api_key: str | None = None,
        delay: float = 0.0,
    ) -> None:
        if engine not in _ROUTES:
            raise ValueError(f"unknown engine {engine!r}")
        self.engine = engine
        self.score = score
        self.raw_score = raw_score
        self.model = model
        self.max_batch = max_batch
        self.faults = list(faults)
        self.api_key = api_key
        self.delay = delay
        self.requests: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def __enter__(self) -> RerankServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> str:
        with self._lock:
            return self.faults.pop(0) if self.faults else "ok"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: Any, raw: bytes | None = None,
                      headers: dict[str, str] | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with srv._lock:
                    srv.requests.append((self.path, body))
                if self.path not in _ROUTES[srv.engine]:
                    self._send(404, {"detail": "Not Found"} if srv.engine != "tei" else {"error": "not found"})
                    return
                if srv.api_key is not None and self.headers.get("authorization") != f"Bearer {srv.api_key}":
                    self._send(401, {"error": "Unauthorized", "error_type": "Unauthorized"})
                    return
                fault = srv._next_fault()
                time.sleep(srv.delay)
                if fault == "too_long":
                    self._send(413, {"error": "Input validation error: `inputs` must have less than 512 tokens. "
                                              "Given: 600", "error_type": "Validation"})
                    return
                if fault in ("503", "429", "500"):
                    self._send(int(fault), {"error": f"injected {fault}"}, headers={"Retry-After": "0"})
                    return
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._answer(body if isinstance(body, dict) else {}, fault)

            def _answer(self, body: dict[str, Any], fault: str) -> None:
                query = body.get("query")
                if srv.engine == "tei":
                    if "texts" not in body:
                        self._send(422, {"error": "Json deserialize error: missing field `texts` at line 1 column 90",
                                         "error_type": "Validation"})
                        return
                    docs = body["texts"]
                else:
                    if "documents" not in body:
                        self._send(400, {"object": "error", "message": "documents: Field required", "code": 400})
                        return
                    docs = [d["text"] if isinstance(d, dict) else d for d in body["documents"]]
                if srv.max_batch is not None and len(docs) > srv.max_batch:
                    self._send(422, {"error": f"batch size {len(docs)} > maximum allowed batch size {srv.max_batch}",
                                     "error_type": "Validation"})
                    return
                if srv.engine == "vllm-qwen3-original":
                    assert srv.raw_score is not None
                    scores = [float(s) for s in srv.raw_score([query + d for d in docs])]
                else:
                    scores = [float(s) for s in srv.score(query, list(docs))]
                order = sorted(range(len(docs)), key=lambda i: -scores[i])
                top_n = body.get("top_n")
                if top_n:
                    order = order[:top_n]
                if fault == "wrong_count":
                    order = order[:-1]
                key = "score" if srv.engine == "tei" else "relevance_score"
                items: list[dict[str, Any]] = [{"index": i, key: scores[i]} for i in order]
                if fault == "dup_index" and len(items) > 1:
                    items[1]["index"] = items[0]["index"]
                if fault == "bad_index":
                    items[0]["index"] = len(docs) + 3
                if fault == "nan":
                    items[0][key] = float("nan")
                if fault == "not_json":
                    self._send(200, None, raw=b"<html>gateway</html>")
                    return
                if srv.engine == "tei":
                    payload: Any = items
                else:
                    if srv.engine.startswith("vllm"):
                        for it in items:
                            it["document"] = {"text": docs[it["index"]] if it["index"] < len(docs) else ""}
                    payload = {"id": "rerank-1", "model": srv.model, "usage": {"total_tokens": 1}, "results": items}
                    if srv.engine == "infinity":
                        payload.update(object="rerank", created=int(time.time()))
                if fault == "no_results":
                    payload = {"object": "error", "message": "nothing"}
                self._send(200, payload)

        return Handler
