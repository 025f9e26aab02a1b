"""A real HTTP server on 127.0.0.1 speaking the OpenAI ``/v1/embeddings`` protocol, which can behave
like each serving engine below and misbehave on demand.

Vectors are FakeEmbedder's raw vectors (``qwen_embed_adapters.testing._hash_vector``) of width ``dim``,
so tests can compute the expected answer without the server.

    with EmbeddingServer(dim=64, dimensions="refuse") as srv:
        emb = RemoteEmbedder(srv.base_url, dimensions=32)
        ...
        srv.requests  # every request body received, in order

Behaviours:
- ``base64``: "support" (default) | "ignore" (floats returned, like SGLang) | "refuse" (400)
- ``dimensions``: "support" (truncate + renormalise, like TEI) | "refuse" (400 mentioning matryoshka,
  like vLLM) | "ignore" (native width returned, like SGLang without a matryoshka override) | "slice" (no
  renormalising, like Infinity)
- ``max_batch``: more inputs than this answer ``batch_status`` (413 or 422, like TEI's cap of 32)

Which real behaviour each mode copies, the engine version, and the public source (docs/compatibility.md
says, cell by cell, which claims rest on this stand-in):
- Infinity 0.0.78 ("slice", ``INFINITY_ROUTES``): not copied from a document but checked against the real
  Infinity in tests/engines/test_infinity.py (routes without ``/v1``, ``dimensions`` sliced without
  renormalising); the stand-in mode stays for fault tests.
- vLLM >= 0.8.5, ``dimensions`` "refuse": 400 ``Model "X" does not support matryoshka representation,
  changing output dimensions will lead to poor results.`` unless the model is matryoshka (``is_matryoshka``
  or ``matryoshka_dimensions`` in config.json, or ``--hf_overrides '{"is_matryoshka": true}'``). Source:
  vLLM docs, Pooling Models, "Matryoshka Embeddings" (vllm-project/vllm docs/models/pooling_models.md;
  https://docs.vllm.ai/en/v0.10.0/models/pooling_models.html), which quotes that 400 body; introduced by
  vllm-project/vllm#16331. Not run here: vLLM needs a GPU (its CPU build is not on PyPI as a wheel).
- SGLang, ``base64`` "ignore": ``/v1/embeddings`` ignores ``encoding_format`` and always returns float
  lists, as sgl-project/sglang#28803 and #30434 (2026, both closed) describe. ``dimensions`` "ignore":
  SGLang honours ``dimensions`` only for a model given ``--json-model-override-args
  '{"matryoshka_dimensions": [...]}'`` (sgl-project/sglang#11142, merged 2025-10); the native width comes
  back otherwise. Not run here: SGLang needs a GPU.
- TEI (text-embeddings-inference) >= 1.8, ``dimensions`` "support": truncates to ``dimensions``
  (core/src/infer.rs, ``response.results.truncate(mrl_dimensions)``, v1.9.3) and normalises.
  ``max_batch=32``: ``--max-client-batch-size`` defaults to 32 (router/src/main.rs, v1.9.3), and more
  inputs answer ``batch size N > maximum allowed batch size 32`` (router/src/http/server.rs) with 413 up
  to 1.8 and 422 from 1.9 (huggingface/text-embeddings-inference#818 changed ``ErrorType::Validation``
  from PAYLOAD_TOO_LARGE to UNPROCESSABLE_ENTITY). Not run here: TEI is a Rust binary shipped as a Docker
  image, and no registry is reachable.
- Ollama >= 0.13, ``dimensions`` and base64 "support" on ``/v1/embeddings``: its OpenAI compatibility
  page lists ``encoding format`` and ``dimensions`` as supported request fields, token arrays as not
  (ollama/ollama docs/api/openai-compatibility.mdx; https://docs.ollama.com/api/openai-compatibility).
  Not run here: Ollama is a Go binary not on PyPI; its GGUF embedding path is llama.cpp's, which
  tests/engines/test_llamacpp.py runs for real.
- ``faults``: a list consumed one per request: "429" (with Retry-After ``retry_after``), "503",
  "500", "drop" (close the connection without answering), "slow" (sleep ``slow_seconds``),
  "wrong_count", "nan", "wrong_width", "bad_index", "ok"
- ``fail_rate``: probability (seeded) of a random fault among 429/503/drop/slow on each request
- ``service_time`` and ``slots``: each request holds one of ``slots`` for ``service_time`` seconds
  (for throughput benchmarks)
- ``api_key``: when set, requests without ``Authorization: Bearer <key>`` get 401
- ``max_tokens`` with ``length_style``: an input of more than ``max_tokens`` tokens (here: words, split on
  white space) is refused as each engine refuses it:
  "tei" (text-embeddings-inference v1.9.3, core/src/tokenization.rs ``TextEmbeddingsError::Validation``,
  through its OpenAI route; 413 before 1.9, 422 since, see above): 413 ``Input validation error: `inputs`
  must have less than 512 tokens. Given: 600``; a body with ``"truncate": true`` is embedded truncated instead.
  "vllm" (vLLM 0.6-0.10, vllm/entrypoints/openai/serving_engine.py ``_validate_input``; the wording users
  quote in vllm-project/vllm issues): 400 ``This model's maximum context length is 512 tokens. However, you
  requested 600 tokens in the input for embedding generation. Please reduce the length of the input.``;
  ``"truncate_prompt_tokens": k`` truncates to k tokens.
  "ollama" (Ollama with ``truncate: false``, as users report it in ollama/ollama issues; no version pinned):
  400 ``the input length exceeds the context length`` (some versions answer 500 or 413); no switch on the
  OpenAI route.
  "ollama-silent" (Ollama's default: cuts at ``num_ctx`` and says nothing, except through
  ``usage.prompt_tokens``): inputs are cut to ``max_tokens`` words and embedded. Ollama's compatibility page
  (above) says the context size is set only by a Modelfile's ``num_ctx``, with no field on the OpenAI route.
- ``batch_style``: the wording of a ``max_batch`` refusal: "tei" (``batch size 64 > maximum allowed batch size
  32``, router/src/http/server.rs as above) or "dashscope" (Alibaba Cloud DashScope's OpenAI-compatible
  embeddings, text-embedding-v3/v4: 400 ``... Value error, batch size is invalid, it should not be larger
  than 10.: input.contents``, as users quote it, e.g. MemMachine/MemMachine#864, memodb-io/memobase#142)
- ``routes``: the POST paths served (default ``/v1/embeddings`` and ``/embeddings``); others get a 404
  ``{"detail": "Not Found"}``. ``INFINITY_ROUTES`` (``/embeddings`` only) is Infinity 0.0.78's default with
  no ``--url-prefix``, checked against the real one (tests/engines/test_infinity.py::
  test_default_routes_have_no_v1); ``V1_ROUTES`` is vLLM/SGLang/TEI/Ollama (``/v1/embeddings``, as each
  one's OpenAI-compatible server docs name it). ``paths`` records every
  POST path received, served or not, and ``times`` when.

Run as a process: ``python -m tests.support.openai_server --port 0 --dim 64`` prints the port.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from qwen_embed_adapters.testing import _hash_vector

DEFAULT_ROUTES = ("/v1/embeddings", "/embeddings")
INFINITY_ROUTES = ("/embeddings",)
V1_ROUTES = ("/v1/embeddings",)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class EmbeddingServer:
    """A configurable OpenAI-compatible embedding server in a background thread."""

    def __init__(
        self,
        dim: int = 64,
        *,
        model: str = "Qwen3-Embedding-0.6B",
        base64: str = "support",
        dimensions: str = "support",
        max_batch: int | None = None,
        batch_status: int = 413,
        faults: Iterable[str] = (),
        fail_rate: float = 0.0,
        seed: int = 0,
        retry_after: float | None = 0.05,
        slow_seconds: float = 0.2,
        service_time: float = 0.0,
        slots: int = 64,
        api_key: str | None = None,
        port: int = 0,
        reverse: bool = True,
        routes: Iterable[str] = DEFAULT_ROUTES,
        max_tokens: int | None = None,
        length_style: str = "tei",
        batch_style: str = "tei",
    ) -> None:
        self.dim = dim
        self.max_tokens = max_tokens
        self.length_style = length_style
        self.batch_style = batch_style
        self.routes = frozenset(routes)
        self.paths: list[str] = []
        self.times: list[float] = []  # time.monotonic() of every POST received
        self.model = model
        self.base64_mode = base64
        self.dimensions_mode = dimensions
        self.max_batch = max_batch
        self.batch_status = batch_status
        self.faults: list[str] = list(faults)
        self.fail_rate = fail_rate
        self.rng = random.Random(seed)
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.service_time = service_time
        self.slots = threading.BoundedSemaphore(slots)
        self.api_key = api_key
        self.reverse = reverse
        self._cache: dict[str, np.ndarray] = {}
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.served_inputs = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", port), self._handler())
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmbeddingServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> EmbeddingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- behaviour
    def expected(self, texts: list[str], dimensions: int | None = None) -> np.ndarray:
        """What a well-behaved server answers for ``texts``, before client-side normalisation."""
        rows = np.stack([self._vector(t) for t in texts])
        if dimensions is not None:
            rows = rows[:, :dimensions]
        return rows

    def _vector(self, text: str) -> np.ndarray:
        # Cached, so that in benchmarks the server's cost is its fixed service time, not hashing.
        vec = self._cache.get(text)
        if vec is None:
            vec = self._cache[text] = _hash_vector(text, self.dim)
        return vec

    def _next_fault(self) -> str:
        with self._lock:
            if self.faults:
                return self.faults.pop(0)
            if self.fail_rate and self.rng.random() < self.fail_rate:
                return self.rng.choice(["429", "503", "drop", "slow"])
        return "ok"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
                self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": status}}, headers)

            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/health", "/v1/health"):
                    self._send(200, {"status": "healthy"})
                elif self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                else:
                    self._error(404, f"no route {self.path}")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server._lock:
                    server.paths.append(self.path)
                    server.times.append(time.monotonic())
                if self.path.rstrip("/") not in server.routes:
                    self._send(404, {"detail": "Not Found"})  # FastAPI's (Infinity's) answer for an unknown route
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._error(400, "body is not JSON")
                    return
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                if server.api_key is not None and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._error(401, "invalid api key")
                    return
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    with server.slots:
                        if server.service_time:
                            time.sleep(server.service_time)
                        self._answer(body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _check_lengths(self, body: dict[str, Any], inputs: list[str]) -> list[str] | None:
                """The inputs as the engine embeds them, or None after refusing an over-long one."""
                limit, style = server.max_tokens, server.length_style
                assert limit is not None
                cut_to = None
                if style == "tei" and body.get("truncate") is True or style == "ollama-silent":
                    cut_to = limit
                elif style == "vllm" and isinstance(body.get("truncate_prompt_tokens"), int):
                    cut_to = body["truncate_prompt_tokens"] if body["truncate_prompt_tokens"] > 0 else limit
                if cut_to is not None:
                    return [" ".join(t.split()[:cut_to]) for t in inputs]
                for t in inputs:
                    n = len(t.split())
                    if n <= limit:
                        continue
                    if style == "tei":
                        self._send(413, {"message": f"Input validation error: `inputs` must have less than {limit} "
                                                    f"tokens. Given: {n}", "code": 413, "type": "Validation"})
                    elif style == "vllm":
                        self._send(400, {"object": "error", "message": (
                            f"This model's maximum context length is {limit} tokens. However, you requested {n} "
                            "tokens in the input for embedding generation. Please reduce the length of the input."),
                            "type": "BadRequestError", "param": None, "code": 400})
                    else:
                        self._send(400, {"error": "the input length exceeds the context length"})
                    return None
                return inputs

            def _answer(self, body: dict[str, Any]) -> None:
                inputs = body.get("input")
                if isinstance(inputs, str):
                    inputs = [inputs]
                if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
                    self._error(400, "input must be a string or array of strings")
                    return
                if server.max_batch is not None and len(inputs) > server.max_batch:
                    if server.batch_style == "dashscope":
                        self._error(400, f"batch size is invalid, it should not be larger than {server.max_batch}.")
                        return
                    self._error(
                        server.batch_status,
                        f"batch size {len(inputs)} > maximum allowed batch size {server.max_batch}",
                    )
                    return
                if server.max_tokens is not None:
                    inputs = self._check_lengths(body, inputs)
                    if inputs is None:
                        return
                fmt = body.get("encoding_format", "float")
                if fmt == "base64" and server.base64_mode == "refuse":
                    self._error(400, "encoding_format base64 is not supported")
                    return
                dims = body.get("dimensions")
                if dims is not None and server.dimensions_mode == "refuse":
                    self._error(
                        400,
                        f'Model "{server.model}" does not support matryoshka representation, '
                        "changing output dimensions will lead to poor results.",
                    )
                    return
                fault = server._next_fault()
                if fault == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fault == "429":
                    headers = {"Retry-After": str(server.retry_after)} if server.retry_after is not None else {}
                    self._error(429, "rate limited", headers)
                    return
                if fault in ("503", "500"):
                    self._error(int(fault), "server overloaded")
                    return
                if fault == "slow":
                    time.sleep(server.slow_seconds)
                rows = server.expected(inputs)
                counted = sum(len(t) for t in inputs)
                if server.length_style == "ollama-silent" and server.max_tokens is not None:
                    counted = sum(len(t.split()) for t in inputs)  # tokens after its silent cut
                if dims is not None and server.dimensions_mode in ("support", "slice"):
                    rows = rows[:, :dims]
                    if server.dimensions_mode == "support":
                        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
                if fault == "nan":
                    rows = rows.copy()
                    rows[len(rows) // 2, 0] = np.nan
                if fault == "wrong_width":
                    rows = rows[:, :-1]
                rows = rows.astype(np.float32)
                if fmt == "base64" and server.base64_mode == "support":
                    embs: list[Any] = [base64.b64encode(r.tobytes()).decode() for r in rows]
                else:
                    # JSON has no NaN; a server that leaks one sends the bare token (allow_nan below).
                    embs = rows.tolist()
                data = [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(embs)]
                if fault == "wrong_count":
                    data = data[:-1]
                if fault == "bad_index":
                    data[0]["index"] = len(data) + 5
                if server.reverse:
                    # Answer in reverse order: clients must sort by index.
                    data.reverse()
                with server._lock:
                    server.served_inputs += len(inputs)
                payload = {
                    "object": "list",
                    "data": data,
                    "model": server.model,
                    "usage": {"prompt_tokens": counted, "total_tokens": counted},
                }
                out = json.dumps(payload, allow_nan=True).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake OpenAI-compatible embedding server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--service-time", type=float, default=0.0)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--dimensions", default="support")
    parser.add_argument("--base64", default="support")
    parser.add_argument("--max-batch", type=int, default=None)
    parser.add_argument("--in-order", action="store_true", help="answer in index order (real servers do)")
    args = parser.parse_args(argv)
    srv = EmbeddingServer(
        args.dim, fail_rate=args.fail_rate, service_time=args.service_time, slots=args.slots,
        dimensions=args.dimensions, base64=args.base64, max_batch=args.max_batch, port=args.port,
        reverse=not args.in_order,
    ).start()
    print(srv.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
