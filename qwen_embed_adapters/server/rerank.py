"""``POST /v1/rerank`` (and ``POST /rerank``): Cohere/vLLM/Infinity's shape and TEI's, over a Reranker."""

# No `from __future__ import annotations`: FastAPI resolves route annotations (Request) at runtime.

import math
import uuid
from typing import Any

import numpy as np

from ..errors import InvalidInputError, QwenEmbedError
from .auth import check_key
from .body import check_text, read_json_object
from .embeddings import CHARS_PER_TOKEN
from .errors import APIError
from .settings import ServerSettings, model_key, served_name


def parse_documents(value: Any, param: str, max_inputs: int) -> list[str]:
    """``documents`` (strings or ``{"text"}`` objects) as strings, or APIError(400) naming the bad item."""
    if not isinstance(value, list):
        raise APIError(400, f"'{param}' must be a list of strings, got {type(value).__name__}", param=param)
    if len(value) > max_inputs:
        raise APIError(400, f"'{param}' holds {len(value)} items; this server takes at most "
                       f"{max_inputs} per request", param=param)
    docs: list[str] = []
    for i, d in enumerate(value):
        if isinstance(d, dict) and isinstance(d.get("text"), str):
            d = d["text"]
        if not isinstance(d, str):
            raise APIError(400, f"{param}[{i}] must be a string, got {type(d).__name__}", param=param)
        check_text(d, f"{param}[{i}]", param)
        docs.append(d)
    return docs


def _parse_options(body: dict[str, Any]) -> tuple[int | None, str | None]:
    top_n = body.get("top_n")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 0):
        raise APIError(400, f"'top_n' must be a non-negative integer, got {top_n!r:.50}", param="top_n")
    instruction = body.get("instruction")
    if instruction is not None and not isinstance(instruction, str):
        raise APIError(400, "'instruction' must be a string", param="instruction")
    return top_n, instruction


def tei_answer(body: dict[str, Any], docs: list[str], scores: np.ndarray, order: list[int]) -> list[dict[str, Any]]:
    """TEI's ``[{"index", "score", "text"?}]``; ``raw_scores`` gives logits instead of probabilities."""
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


def cohere_answer(body: dict[str, Any], docs: list[str], scores: np.ndarray, order: list[int],
                  name: str) -> dict[str, Any]:
    """Cohere/vLLM/Infinity's ``{"id", "model", "results": [{"index", "relevance_score", "document"?}]}``."""
    with_docs = bool(body.get("return_documents"))
    results = []
    for i in order:
        result: dict[str, Any] = {"index": i, "relevance_score": float(scores[i])}
        if with_docs:
            result["document"] = {"text": docs[i]}
        results.append(result)
    return {"id": f"rerank-{uuid.uuid4().hex}", "model": name, "results": results}


class RerankRoute:
    """The body of the rerank routes over one reranker."""

    def __init__(self, reranker: Any, settings: ServerSettings) -> None:
        self.reranker = reranker
        self.settings = settings
        self.name = served_name(str(getattr(reranker, "model", "reranker")))
        self.aliases = {model_key(self.name), model_key(str(getattr(reranker, "model", "")))}

    def check_model(self, model: Any) -> None:
        if model is not None and (not isinstance(model, str) or model_key(model) not in self.aliases):
            raise APIError(404, f"model {model!r:.100} is not served here; the reranker is {self.name!r}",
                           param="model", code="model_not_found")

    def parse(self, body: dict[str, Any]) -> tuple[str, list[str], bool]:
        """The query, the documents, and whether the request has TEI's shape."""
        query = body.get("query")
        if not isinstance(query, str) or not query:
            raise APIError(400, "'query' must be a non-empty string", param="query")
        check_text(query, "query", "query")
        tei = "texts" in body and "documents" not in body
        if not tei and "documents" not in body:
            raise APIError(400, "missing 'documents' (or TEI's 'texts')", param="documents")
        param = "texts" if tei else "documents"
        docs = parse_documents(body[param], param, self.settings.max_inputs)
        return self.bound_chars(query), [self.bound_chars(d) for d in docs], tei

    def bound_chars(self, text: str) -> str:
        """Cut a text to ``max_length * CHARS_PER_TOKEN`` characters before the reranker tokenises it.

        The reranker truncates every pair to ``max_length`` tokens anyway (longest first), and the first
        ``max_length`` tokens of real text lie within that many characters, so the scores do not change;
        what changes is that a 2 MB document is not tokenised in full (seconds of CPU) to keep 8,192 tokens.
        """
        limit = getattr(self.reranker, "max_length", None)
        if not isinstance(limit, int) or isinstance(limit, bool):
            return text
        cap = limit * CHARS_PER_TOKEN
        return text if len(text) <= cap else text[:cap]

    async def score(self, query: str, docs: list[str], instruction: str | None) -> np.ndarray:
        try:
            if not docs:
                return np.empty(0, np.float32)
            scores: np.ndarray = await self.reranker.ascore(query, docs, instruction)
            return scores
        except InvalidInputError as exc:
            raise APIError(400, str(exc), param="documents") from None
        except QwenEmbedError as exc:
            raise APIError(500, f"reranking failed: {exc}", type="server_error") from None

    async def __call__(self, request: Any) -> Any:
        # The /v1/ paths are guarded by the app's middleware; the bare /rerank alias is checked here.
        if not request.url.path.startswith("/v1/"):
            check_key(request, self.settings.api_key)
        body = await read_json_object(request)
        self.check_model(body.get("model"))
        query, docs, tei = self.parse(body)
        top_n, instruction = _parse_options(body)
        scores = await self.score(query, docs, instruction)
        order = sorted(range(len(docs)), key=lambda i: (-float(scores[i]), i))
        if top_n:
            order = order[:top_n]
        if tei:
            return tei_answer(body, docs, scores, order)
        return cohere_answer(body, docs, scores, order, self.name)


def add_rerank_routes(app: Any, reranker: Any, settings: ServerSettings) -> None:
    """Register ``POST /v1/rerank`` (and ``POST /rerank``) for a ``qwen_embed_adapters.rerank.Reranker``.

    Request, as vLLM/Infinity/Cohere take it: ``{"model"?, "query", "documents": [str | {"text"}],
    "top_n"?, "return_documents"?, "instruction"?}`` -> ``{"id", "model", "results": [{"index",
    "relevance_score", "document"?}]}``, best first. TEI's shape is answered too: ``{"query", "texts",
    "raw_scores"?, "return_text"?}`` -> ``[{"index", "score", "text"?}]``. ``instruction`` replaces the
    reranker's task description for this request.
    """
    from fastapi import Request

    route = RerankRoute(reranker, settings)

    async def rerank(request: Request) -> Any:
        return await route(request)

    app.add_api_route("/v1/rerank", rerank, methods=["POST"])
    app.add_api_route("/rerank", rerank, methods=["POST"])


__all__ = [
    "RerankRoute",
    "add_rerank_routes",
    "cohere_answer",
    "parse_documents",
    "tei_answer",
]
