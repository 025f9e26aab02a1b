"""`qwen-embed serve`: an OpenAI-compatible embedding server over an in-process embedder.

``build_app(embedder, reranker=None)`` returns a FastAPI app with ``GET /health``, ``GET /v1/models``
and ``POST /v1/embeddings``. Requests that arrive together are embedded together: a gatherer
collects them for a few milliseconds (up to a token budget) and runs one length-sorted pass, so 32
clients sending one text each cost about one batch, not 32. Errors have OpenAI's shape
``{"error": {"message", "type", "param", "code"}}`` and name the offending input.

FastAPI and uvicorn are imported lazily (the ``server`` extra).
"""


import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from . import models
from .embedder import Embedder
from .errors import InvalidInputError, MissingDependencyError, QwenEmbedError
from .vectors import truncate_normalize

logger = logging.getLogger(__name__)

DEFAULT_MAX_INPUTS = 2048
DEFAULT_GATHER_MS = 5.0


def _import_fastapi() -> Any:
    try:
        import fastapi
    except ImportError:
        raise MissingDependencyError("fastapi", "server", "qwen-embed serve") from None
    return fastapi


class APIError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def error_response(err: APIError) -> Any:
    """The JSONResponse for an APIError (OpenAI's error shape)."""
    from fastapi.responses import JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


@dataclass
class ServerSettings:
    """What the app needs beyond the embedder; shared with routes added later (e.g. /v1/rerank)."""

    model_name: str
    api_key: str | None = None
    max_inputs: int = DEFAULT_MAX_INPUTS
    gather_ms: float = DEFAULT_GATHER_MS
    max_gather_tokens: int = 16384
    auto_truncate: bool = False
    max_length: int | None = None
    aliases: set[str] = field(default_factory=set)
    created: int = field(default_factory=lambda: int(time.time()))

    def knows_model(self, name: str) -> bool:
        return _model_key(name) in self.aliases


def _model_key(name: str) -> str:
    return PurePath(name.rstrip("/\\")).name.lower() if name else ""


# ---------------------------------------------------------------------------- request gathering
@dataclass
class _Job:
    texts: list[str]
    tokens: int
    future: asyncio.Future[np.ndarray]


class RequestGatherer:
    """Collects concurrent requests for up to ``window_s`` (or ``max_tokens``) and embeds them in one call.

    ``embed`` is a blocking function (texts -> float32 matrix); it runs in a worker thread, so the
    event loop keeps accepting requests while the model works, and those requests form the next batch.
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], *, window_s: float, max_tokens: int) -> None:
        self._embed = embed
        self._window = max(0.0, window_s)
        self._max_tokens = max(1, max_tokens)
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._carry: _Job | None = None
        self.batches = 0  # how many model calls were made (for tests and benchmarks)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="qwen-embed-gatherer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, texts: list[str], tokens: int) -> np.ndarray:
        if self._queue is None:
            raise RuntimeError("the gatherer is not running")
        fut: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(texts, tokens, fut))
        return await fut

    async def _next(self, timeout: float | None) -> _Job | None:
        assert self._queue is not None
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        if timeout is not None and timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            assert first is not None
            jobs, tokens = [first], first.tokens
            deadline = loop.time() + self._window
            while tokens < self._max_tokens:
                job = await self._next(deadline - loop.time())
                if job is None:
                    break
                if tokens + job.tokens > self._max_tokens:
                    self._carry = job
                    break
                jobs.append(job)
                tokens += job.tokens
            jobs = [j for j in jobs if not j.future.done()]  # drop requests whose client went away
            if not jobs:
                continue
            texts = [t for j in jobs for t in j.texts]
            self.batches += 1
            try:
                vectors = await asyncio.to_thread(self._embed, texts)
            except Exception as exc:  # handed to every waiting request
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
                continue
            start = 0
            for j in jobs:
                part = vectors[start : start + len(j.texts)]
                start += len(j.texts)
                if not j.future.done():
                    j.future.set_result(part)


# ---------------------------------------------------------------------------- request checks
def _parse_input(value: Any, max_inputs: int) -> list[str]:
    if value is None:
        raise APIError(400, "'input' is required: a string or a list of strings", param="input")
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise APIError(
            400, f"'input' must be a string or a list of strings, got {type(value).__name__}", param="input"
        )
    if not items:
        raise APIError(400, "'input' is an empty list; send at least one string", param="input")
    if len(items) > max_inputs:
        raise APIError(
            400, f"'input' holds {len(items)} items; this server takes at most {max_inputs} per request",
            param="input", code="too_many_inputs",
        )
    for i, item in enumerate(items):
        where = "input" if isinstance(value, str) else f"input[{i}]"
        if isinstance(item, (int, list)) and not isinstance(item, bool):
            raise APIError(
                400, f"{where} is {type(item).__name__}: token-id arrays are not supported, send text "
                "(LangChain's OpenAIEmbeddings sends token ids unless created with check_embedding_ctx_length=False)",
                param="input",
            )
        if not isinstance(item, str):
            raise APIError(400, f"{where} is {type(item).__name__}, not a string", param="input")
        if not item:
            raise APIError(400, f"{where} is an empty string", param="input")
    return items


def _dimension_range(embedder: Embedder) -> tuple[int, int]:
    top = embedder.dimension
    info = models.lookup(embedder.model)
    low = info.min_dim if info is not None and info.min_dim else 1
    return min(low, top), top


def _parse_dimensions(value: Any, embedder: Embedder) -> int | None:
    if value is None:
        return None
    low, top = _dimension_range(embedder)
    if isinstance(value, bool) or not isinstance(value, int):
        raise APIError(400, f"'dimensions' must be an integer, got {value!r:.50}", param="dimensions")
    if not low <= value <= top:
        raise APIError(
            400, f"'dimensions' must be between {low} and {top} for this model, got {value}",
            param="dimensions", code="invalid_dimensions",
        )
    return value


def _encode_vectors(vectors: np.ndarray, fmt: str) -> list[Any]:
    if fmt == "base64":
        le = np.ascontiguousarray(vectors, dtype="<f4")
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in le]
    out: list[Any] = np.asarray(vectors, dtype=np.float32).tolist()
    return out


def _served_name_str(model: str) -> str:
    return PurePath(model.rstrip("/\\")).name or model


def _served_name(embedder: Embedder) -> str:
    return _served_name_str(embedder.model)


# ---------------------------------------------------------------------------- the app
def build_app(
    embedder: Embedder,
    reranker: Any = None,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    gather_ms: float = DEFAULT_GATHER_MS,
    max_gather_tokens: int | None = None,
    auto_truncate: bool = False,
) -> Any:
    """The FastAPI app serving ``embedder`` on OpenAI's ``/v1/embeddings`` (and ``reranker``, when given).

    ``gather_ms=0`` turns request gathering off (each request is its own model call). Inputs longer
    than the embedder's ``max_length`` are refused with a 400 unless ``auto_truncate``.

    >>> app = build_app(LocalEmbedder("Qwen/Qwen3-Embedding-0.6B"), api_key="s3cret")  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=30000)  # doctest: +SKIP
    """
    fastapi = _import_fastapi()
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    name = model_name or _served_name(embedder)
    settings = ServerSettings(
        model_name=name,
        api_key=api_key or None,
        max_inputs=max_inputs,
        gather_ms=gather_ms,
        max_gather_tokens=max_gather_tokens or int(getattr(embedder, "max_batch_tokens", 16384)),
        auto_truncate=auto_truncate,
        max_length=embedder.max_input_tokens,
        aliases={_model_key(name), _model_key(embedder.model)},
    )
    embed_fn: Callable[[list[str]], np.ndarray] = embedder.embed_texts
    gatherer = (
        RequestGatherer(embed_fn, window_s=gather_ms / 1000.0, max_tokens=settings.max_gather_tokens)
        if gather_ms > 0
        else None
    )

    def count_tokens(texts: list[str]) -> list[int]:
        counts = embedder.count_tokens(texts)
        return counts if counts is not None else [max(1, len(t.split())) for t in texts]

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if gatherer is not None:
            await gatherer.start()
        try:
            yield
        finally:
            if gatherer is not None:
                await gatherer.stop()

    app = fastapi.FastAPI(title="qwen-embed serve", lifespan=lifespan)
    app.state.embedder = embedder
    app.state.reranker = reranker
    app.state.settings = settings
    app.state.gatherer = gatherer

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Any:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(APIError(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Any:
        return error_response(APIError(400, f"invalid request: {exc.errors()!s:.500}"))

    @app.middleware("http")
    async def _auth(request: Request, call_next: Any) -> Any:
        if settings.api_key and request.url.path.startswith("/v1/"):
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(
                token.strip().encode("utf-8"), settings.api_key.encode("utf-8")
            )
            if not ok:
                return error_response(
                    APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                             code="invalid_api_key")
                )
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        data = [{"id": name, "object": "model", "created": settings.created, "owned_by": "qwen-embed-adapters"}]
        if reranker is not None:
            rname = getattr(reranker, "model", None)
            if rname:
                data.append({"id": _served_name_str(str(rname)), "object": "model", "created": settings.created,
                             "owned_by": "qwen-embed-adapters"})
        return {"object": "list", "data": data}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        body = await read_json_object(request)
        model = body.get("model")
        if model is not None and (not isinstance(model, str) or not settings.knows_model(model)):
            raise APIError(
                404, f"model {model!r:.100} is not served here; this server serves {name!r}",
                param="model", code="model_not_found",
            )
        texts = _parse_input(body.get("input"), settings.max_inputs)
        fmt = body.get("encoding_format", "float")
        if fmt is None:
            fmt = "float"
        if fmt not in ("float", "base64"):
            raise APIError(
                400, f"'encoding_format' must be 'float' or 'base64', got {fmt!r:.50}", param="encoding_format"
            )
        dims = _parse_dimensions(body.get("dimensions"), embedder)
        counts = await asyncio.to_thread(count_tokens, texts)
        limit = settings.max_length
        if limit is not None:
            for i, n in enumerate(counts):
                if n > limit:
                    if settings.auto_truncate:
                        counts[i] = limit
                        continue
                    where = "input" if isinstance(body.get("input"), str) else f"input[{i}]"
                    raise APIError(
                        400, f"{where} is {n} tokens long; this model takes at most {limit} "
                        "(shorten it, or start the server with --auto-truncate)",
                        param="input", code="context_length_exceeded",
                    )
        try:
            if gatherer is not None:
                vectors = await gatherer.submit(texts, sum(counts))
            else:
                vectors = await asyncio.to_thread(embed_fn, texts)
        except InvalidInputError as exc:
            raise APIError(400, str(exc), param="input") from None
        except QwenEmbedError as exc:
            raise APIError(500, f"embedding failed: {exc}", type="server_error") from None
        if dims is not None and dims != vectors.shape[1]:
            vectors = truncate_normalize(vectors, dims)
        encoded = _encode_vectors(vectors, fmt)
        total = int(sum(counts))
        payload = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(encoded)],
            "model": name,
            "usage": {"prompt_tokens": total, "total_tokens": total},
        }
        return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")

    if reranker is not None:
        add_rerank_routes(app, reranker, settings)

    return app


async def read_json_object(request: Any) -> dict[str, Any]:
    """The request body as a JSON object, or an APIError(400) saying what is wrong with it."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def add_rerank_routes(app: Any, reranker: Any, settings: ServerSettings) -> None:
    """Register ``POST /v1/rerank`` (and ``POST /rerank``) for a ``qwen_embed_adapters.rerank.Reranker``.

    Request, as vLLM/Infinity/Cohere take it: ``{"model"?, "query", "documents": [str | {"text"}],
    "top_n"?, "return_documents"?, "instruction"?}`` -> ``{"id", "model", "results": [{"index",
    "relevance_score", "document"?}]}``, best first. TEI's shape is answered too: ``{"query", "texts",
    "raw_scores"?, "return_text"?}`` -> ``[{"index", "score", "text"?}]``. ``instruction`` replaces the
    reranker's task description for this request.
    """
    import math
    import uuid

    from fastapi import Request

    rname = _served_name_str(str(getattr(reranker, "model", "reranker")))
    aliases = {_model_key(rname), _model_key(str(getattr(reranker, "model", "")))}

    def check_key(request: Any) -> None:
        # The /v1/ paths are guarded by the app's middleware; the bare /rerank alias is checked here.
        if not settings.api_key or request.url.path.startswith("/v1/"):
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not (scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("utf-8"), settings.api_key.encode("utf-8")
        )):
            raise APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")

    def parse_documents(value: Any, param: str) -> list[str]:
        if not isinstance(value, list):
            raise APIError(400, f"'{param}' must be a list of strings, got {type(value).__name__}", param=param)
        if len(value) > settings.max_inputs:
            raise APIError(400, f"'{param}' holds {len(value)} items; this server takes at most "
                           f"{settings.max_inputs} per request", param=param)
        docs: list[str] = []
        for i, d in enumerate(value):
            if isinstance(d, dict) and isinstance(d.get("text"), str):
                d = d["text"]
            if not isinstance(d, str):
                raise APIError(400, f"{param}[{i}] must be a string, got {type(d).__name__}", param=param)
            docs.append(d)
        return docs

    async def rerank(request: Request) -> Any:
        check_key(request)
        body = await read_json_object(request)
        model = body.get("model")
        if model is not None and (not isinstance(model, str) or _model_key(model) not in aliases):
            raise APIError(404, f"model {model!r:.100} is not served here; the reranker is {rname!r}",
                           param="model", code="model_not_found")
        query = body.get("query")
        if not isinstance(query, str) or not query:
            raise APIError(400, "'query' must be a non-empty string", param="query")
        tei = "texts" in body and "documents" not in body
        if not tei and "documents" not in body:
            raise APIError(400, "missing 'documents' (or TEI's 'texts')", param="documents")
        docs = parse_documents(body["texts"] if tei else body["documents"], "texts" if tei else "documents")
        top_n = body.get("top_n")
        if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 0):
            raise APIError(400, f"'top_n' must be a non-negative integer, got {top_n!r:.50}", param="top_n")
        instruction = body.get("instruction")
        if instruction is not None and not isinstance(instruction, str):
            raise APIError(400, "'instruction' must be a string", param="instruction")
        try:
            scores = await reranker.ascore(query, docs, instruction) if docs else np.empty(0, np.float32)
        except InvalidInputError as exc:
            raise APIError(400, str(exc), param="documents") from None
        except QwenEmbedError as exc:
            raise APIError(500, f"reranking failed: {exc}", type="server_error") from None
        order = sorted(range(len(docs)), key=lambda i: (-float(scores[i]), i))
        if top_n:
            order = order[:top_n]
        if tei:
            raw = bool(body.get("raw_scores"))
            with_text = bool(body.get("return_text"))
            out: list[dict[str, Any]] = []
            for i in order:
                p = min(max(float(scores[i]), 1e-12), 1 - 1e-12)
                item: dict[str, Any] = {"index": i, "score": math.log(p / (1 - p)) if raw else float(scores[i])}
                if with_text:
                    item["text"] = docs[i]
                out.append(item)
            return out
        with_docs = bool(body.get("return_documents"))
        results = []
        for i in order:
            result: dict[str, Any] = {"index": i, "relevance_score": float(scores[i])}
            if with_docs:
                result["document"] = {"text": docs[i]}
            results.append(result)
        return {"id": f"rerank-{uuid.uuid4().hex}", "model": rname, "results": results}

    app.add_api_route("/v1/rerank", rerank, methods=["POST"])
    app.add_api_route("/rerank", rerank, methods=["POST"])


def run(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 30000,
    log_level: str = "warning",
) -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise MissingDependencyError("uvicorn", "server", "qwen-embed serve") from None
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__: Sequence[str] = [
    "APIError",
    "RequestGatherer",
    "ServerSettings",
    "add_rerank_routes",
    "build_app",
    "error_response",
    "read_json_object",
    "run",
]
