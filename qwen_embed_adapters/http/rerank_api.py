"""The ``/rerank`` APIs as a policy of the request loop: Cohere's shape (vLLM, Infinity, llama.cpp,
``qwen-embed serve``: ``{"model","query","documents","top_n"}`` -> ``{"results":[{"index","relevance_score"}]}``)
and TEI's (``{"query","texts"}`` -> ``[{"index","score"}]``), switching to TEI's when a server asks for ``texts``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from .._urls import redact_url
from ..errors import RateLimitError, ServiceError, ServiceTimeoutError
from ..models import DEFAULT_QWEN3_INSTRUCTION
from .engines import Refusal, rerank_route_hint
from .loop import AnswerError, ErrorClasses, Request, Step, StepKind
from .pool import Endpoint, EndpointPool

__all__ = ["API_SHAPES", "RerankEndpoint", "RerankPolicy", "Wrap"]

#: ``api=`` -> the request shape it speaks ("auto" learns it from the first answer).
API_SHAPES = {"auto": "auto", "vllm": "cohere", "infinity": "cohere", "cohere": "cohere", "tei": "tei"}

#: (query, documents, instruction) -> (query, documents) as sent, for a client-side prompt template.
Wrap = Callable[[str, list[str], str], tuple[str, list[str]]]


@dataclass
class RerankEndpoint(Endpoint):
    """One rerank server: route and batch cap (see ``Endpoint``) and the request shape it speaks
    ("auto" until its first answer tells, "cohere" or "tei")."""

    shape: str = "auto"


class RerankPolicy:
    """Request bodies and answers of one reranker; ``wrap`` applies a client-side prompt template (None:
    the server applies its own, and an explicit instruction is sent as ``"instruction"``)."""

    error_classes: ErrorClasses = (ServiceError, ServiceTimeoutError, RateLimitError)
    item_name = "document"
    too_long_hint = ""

    def __init__(self, model: str, *, api: str, wrap: Wrap | None, log: logging.Logger) -> None:
        self.model, self.api, self.wrap, self.log = model, api, wrap, log
        self.route_hint = rerank_route_hint()

    def body(self, query: str, documents: list[str], instruction: str, shape: str) -> dict[str, Any]:
        q, docs = self.wrap(query, documents, instruction) if self.wrap else (query, documents)
        if shape == "tei":
            return {"query": q, "texts": docs, "raw_scores": False, "return_text": False}
        body: dict[str, Any] = {"model": self.model, "query": q, "documents": docs, "top_n": len(docs)}
        if self.wrap is None and instruction != DEFAULT_QWEN3_INSTRUCTION:
            body["instruction"] = instruction
        return body

    def build(self, items: list[Any], ctx: Any, pool: EndpointPool) -> Request:
        query, instruction = ctx
        ep = pool.first
        assert isinstance(ep, RerankEndpoint)
        return Request(ep.url, self.body(query, items, instruction, ep.shape), ep)

    def cost(self, request: Request) -> int:
        return 0

    def truncate_step(self, refusal: Refusal, items: list[Any], request: Request, offset: int) -> Step | None:
        return None

    def refusal_step(self, status: int, lowered: str, items: list[Any], request: Request) -> Step | None:
        ep = request.endpoint
        assert isinstance(ep, RerankEndpoint)
        if status in (400, 422) and self.api == "auto" and "texts" not in request.body and "texts" in lowered:
            if ep.shape != "tei":  # else another request already switched
                self.log.info("%s wants TEI's request shape (query + texts); using it from now on",
                              redact_url(request.url))
                ep.shape = "tei"
            return Step(StepKind.RESEND)
        return None

    def parse(self, response: httpx.Response, items: list[Any], request: Request) -> np.ndarray:
        n = len(items)
        ep = request.endpoint
        assert isinstance(ep, RerankEndpoint)
        try:
            payload = response.json()
        except ValueError:
            raise AnswerError("malformed answer (not JSON)", status=200, body=response.text) from None
        if isinstance(payload, list):  # TEI: [{"index", "score"}]
            results, key = payload, "score"
            if ep.shape == "auto":
                ep.shape = "tei"
        elif isinstance(payload, dict) and isinstance(payload.get("results"), list):  # vLLM, Infinity, Cohere
            results, key = payload["results"], "relevance_score"
            if ep.shape == "auto":
                ep.shape = "cohere"
        else:
            raise AnswerError("malformed answer (no results list)", status=200, body=response.text)
        if len(results) != n:
            raise AnswerError(f"asked for the scores of {n} documents, the server returned {len(results)}")
        out = np.full(n, np.nan, dtype=np.float32)
        for j, item in enumerate(results):
            if not isinstance(item, dict):
                raise AnswerError(f"result {j} is {type(item).__name__}, not an object")
            idx = item.get("index")
            value = item.get(key, item.get("score", item.get("relevance_score")))
            if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < n:
                raise AnswerError(f"result {j} has index {idx!r}, expected 0..{n - 1}")
            if not np.isnan(out[idx]):
                raise AnswerError(f"index {idx} appears twice in the answer")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise AnswerError(f"result {j} (document {idx}) has score {value!r}, not a finite number")
            out[idx] = value
        return out

    def join(self, parts: list[Any]) -> np.ndarray:
        return np.concatenate(parts)
