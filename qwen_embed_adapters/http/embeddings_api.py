"""The OpenAI embeddings API as a policy of the request loop: request bodies, answer parsing, and the
fallbacks a server's refusal teaches (no ``dimensions``, floats instead of base64, the engine's truncate
switch, a client-side cut). What is learnt is kept per server on its :class:`EmbeddingEndpoint`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from .._urls import redact_url
from ..errors import (
    ConfigurationError,
    EmbeddingRateLimitError,
    EmbeddingServiceError,
    EmbeddingTimeoutError,
    InvalidInputError,
)
from ..vectors import decode_base64
from .engines import Refusal, profile, route_hint
from .limits import RateLimiter
from .loop import AnswerError, ErrorClasses, Request, Step, StepKind
from .pool import Endpoint, EndpointPool
from .session import LoopClients

__all__ = [
    "CHARS_PER_TOKEN_ESTIMATE", "PROBE_MIN_COSINE", "PROBE_TEXT", "SILENT_CUT_CHARS_PER_TOKEN",
    "SILENT_CUT_MIN_CHARS", "EmbeddingEndpoint", "EmbeddingsPolicy", "ReplicaCheck", "cut_text",
    "decode_answer",
]

#: The text every server of a several-server RemoteEmbedder embeds on first use, to compare their answers.
PROBE_TEXT = "qwen-embed-adapters: the same model behind every endpoint?"
#: Two servers whose probe vectors (compared on their common prefix) are less alike than this serve
#: different models or weights.
PROBE_MIN_COSINE = 0.99

#: Characters per token assumed before the server counts (for ``max_tokens_per_minute``).
CHARS_PER_TOKEN_ESTIMATE = 4
#: A request whose ``usage.prompt_tokens`` times this is below its characters was cut silently ...
SILENT_CUT_CHARS_PER_TOKEN = 12
#: ... when its inputs hold at least this many characters.
SILENT_CUT_MIN_CHARS = 4096


@dataclass
class EmbeddingEndpoint(Endpoint):
    """One embedding server and what was learnt about it: route, batch cap, ``dimensions`` and
    base64 support, and the switch that makes it truncate (None: unknown; "" : none works)."""

    send_dimensions: bool = True
    encoding_format: str = "base64"
    truncate_switch: str | None = None
    truncate_to: int = -1  # the token count sent with vLLM's truncate_prompt_tokens
    warned_truncation: bool = False  # warned once that the server seems to truncate silently
    # Several servers: whether this one was checked against the others, and the model its answers name.
    checked: bool = False
    served_model: str | None = None


def cut_text(text: str, refusal: Refusal) -> str:
    """A conservative client-side cut of ``text`` to fit ``refusal.limit`` tokens."""
    if refusal.limit and refusal.tokens and refusal.tokens > refusal.limit:
        keep = int(len(text) * refusal.limit / refusal.tokens * 0.9)
    else:
        keep = len(text) // 2
    return text[: max(1, min(keep, len(text) - 1))]


class EmbeddingsPolicy:
    """``POST {"model", "input", "encoding_format"[, "dimensions"][, truncate switch]}`` ->
    ``{"data": [{"index", "embedding"}], "usage"}``, for one model at one width."""

    error_classes: ErrorClasses = (EmbeddingServiceError, EmbeddingTimeoutError, EmbeddingRateLimitError)
    item_name = "input"
    too_long_hint = " (pass truncate=True to embed it cut, or split the text)"

    def __init__(
        self, model: str, dimensions: int | None, *, truncate: bool, limiter: RateLimiter | None,
        log: logging.Logger,
    ) -> None:
        self.model, self.dimensions, self.truncate, self.limiter, self.log = model, dimensions, truncate, limiter, log
        self.route_hint = route_hint()
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- requests
    def body(self, texts: list[str], ep: EmbeddingEndpoint) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": ep.encoding_format}
        if ep.send_dimensions and self.dimensions is not None:
            body["dimensions"] = self.dimensions
        if self.truncate and ep.truncate_switch:
            body[ep.truncate_switch] = True if ep.truncate_switch == "truncate" else ep.truncate_to
        return body

    def build(self, items: list[Any], ctx: Any, pool: EndpointPool) -> Request:
        pinned = ctx if isinstance(ctx, EmbeddingEndpoint) else None
        ep = pool.pick(pinned)
        assert isinstance(ep, EmbeddingEndpoint)
        return Request(ep.url, self.body(items, ep), ep, pinned=pinned is not None)

    def cost(self, request: Request) -> int:
        # About 4 characters a token in English; corrected with the answer's usage.prompt_tokens.
        return max(1, sum(len(t) for t in request.body["input"]) // CHARS_PER_TOKEN_ESTIMATE)

    @staticmethod
    def endpoint(request: Request) -> EmbeddingEndpoint:
        assert isinstance(request.endpoint, EmbeddingEndpoint)
        return request.endpoint

    # ---------------------------------------------------------------- refusals
    def refusal_step(self, status: int, lowered: str, items: list[Any], request: Request) -> Step | None:
        sent, ep = request.body, self.endpoint(request)
        if status not in (400, 422):
            return None
        # Decide from what this request sent: concurrent requests may have switched the flags already.
        if "dimensions" in sent and ("dimension" in lowered or "matryoshka" in lowered):
            if ep.send_dimensions:
                self.log.info(
                    "%s refused dimensions=%s (HTTP %d); truncating client-side from now on",
                    redact_url(request.url), self.dimensions, status,
                )
                ep.send_dimensions = False
            return Step(StepKind.RESEND)
        if sent.get("encoding_format") == "base64" and ("encoding_format" in lowered or "base64" in lowered):
            if ep.encoding_format == "base64":
                self.log.info("%s refused base64 encoding; asking for floats from now on", redact_url(request.url))
                ep.encoding_format = "float"
            return Step(StepKind.RESEND)
        switch = ep.truncate_switch
        if switch and switch in sent and switch in lowered:
            # The server does not know the switch: cut client-side from now on.
            self.log.info("%s refused %r; cutting long inputs client-side from now on", redact_url(request.url), switch)
            ep.truncate_switch = ""
            return Step(StepKind.RESEND)
        return None

    def truncate_step(self, refusal: Refusal, items: list[Any], request: Request, offset: int) -> Step | None:
        if not self.truncate:
            return None
        ep = self.endpoint(request)
        switch = profile(refusal.engine).truncate_switch if refusal.engine else ""
        if switch and ep.truncate_switch is None:
            with self._lock:
                if ep.truncate_switch is None:
                    self.log.warning(
                        "%s: an input is over the model's %s tokens; asking the server to truncate (%s) from now on",
                        redact_url(request.url), refusal.limit or "maximum", switch,
                    )
                    ep.truncate_switch = switch
                    ep.truncate_to = refusal.limit or -1
        if ep.truncate_switch and ep.truncate_switch not in request.body:
            return Step(StepKind.RESEND)
        if len(items) > 1:
            return None  # bisect down to the long input, then cut it
        text = items[0]
        cut = cut_text(text, refusal)
        tokens = f"{refusal.tokens} tokens" if refusal.tokens else "too many tokens"
        limit = f" of {refusal.limit}" if refusal.limit else ""
        self.log.warning(
            "%s: input %d of its batch has %s, over the server's limit%s; cut client-side from %d to %d characters",
            redact_url(request.url), offset, tokens, limit, len(text), len(cut),
        )
        return Step(StepKind.REPLACE, value=[cut])

    # ---------------------------------------------------------------- answers
    def _check_usage(self, payload: Any, texts: list[str], request: Request) -> None:
        """Warn once when ``usage.prompt_tokens`` shows the server read far fewer tokens than the texts
        hold: it truncated silently (Ollama cuts at ``num_ctx``)."""
        ep = self.endpoint(request)
        usage = payload.get("usage") if isinstance(payload, dict) else None
        counted = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if isinstance(counted, bool) or not isinstance(counted, int) or counted <= 0:
            return
        if self.limiter is not None:
            self.limiter.adjust(counted - self.cost(request))
        if ep.warned_truncation:
            return
        chars = sum(len(t) for t in texts)
        # No tokenizer here: even English code or prose averages well under 12 characters a token,
        # so fewer tokens than chars/12 means the server did not read everything.
        if chars >= SILENT_CUT_MIN_CHARS and counted * SILENT_CUT_CHARS_PER_TOKEN < chars:
            ep.warned_truncation = True
            self.log.warning(
                "%s counted %d tokens for %d inputs of %d characters in all: it seems to truncate long inputs "
                "silently. Raise the server's context length (%s; TEI: --max-input-length; vLLM: --max-model-len) "
                "or split long texts into smaller chunks",
                redact_url(request.url), counted, len(texts), chars,
                "Ollama: the num_ctx option, e.g. PARAMETER num_ctx 8192 in a Modelfile",
            )

    def _wider_than_asked(self, width: int, request: Request) -> None:
        ep = self.endpoint(request)
        if self.dimensions is not None and "dimensions" in request.body and width > self.dimensions:
            with self._lock:
                if ep.send_dimensions:
                    self.log.info(
                        "%s ignored dimensions=%s (answered %d-d); truncating client-side from now on",
                        redact_url(request.url), self.dimensions, width,
                    )
                    ep.send_dimensions = False

    def parse(self, response: httpx.Response, items: list[Any], request: Request) -> np.ndarray:
        n = len(items)
        try:
            payload = response.json()
            data = payload["data"]
            if not isinstance(data, list):
                raise TypeError("'data' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise AnswerError(f"malformed answer ({exc})", status=response.status_code, body=response.text) from None
        if len(data) != n:
            raise AnswerError(f"asked for {n} embeddings, the server returned {len(data)}")
        self._check_usage(payload, items, request)
        model = payload.get("model") if isinstance(payload, dict) else None
        if isinstance(model, str) and model:
            self.endpoint(request).served_model = model
        rows = [self._row(i, item) for i, item in enumerate(self._in_order(data, n))]
        widths = {r.shape for r in rows}
        if len(widths) != 1 or rows[0].ndim != 1:
            shapes = [r.shape[0] if r.ndim == 1 else r.shape for r in rows]
            raise AnswerError(f"the answer mixes vector widths: {sorted(set(map(str, shapes)))}")
        self._wider_than_asked(rows[0].shape[0], request)
        return np.stack(rows)

    @staticmethod
    def _in_order(data: list[Any], n: int) -> list[Any]:
        indexed = [isinstance(d, dict) and "index" in d for d in data]
        if any(indexed) and not all(indexed):
            raise AnswerError(f"the answer gives an 'index' for {sum(indexed)} of {n} embeddings only")
        try:
            items = sorted(data, key=lambda d: d["index"]) if all(indexed) else data
        except TypeError:
            raise AnswerError("the answer's 'index' fields are not comparable") from None
        if all(indexed) and [d["index"] for d in items] != list(range(n)):
            raise AnswerError(f"the answer's indices are {[d['index'] for d in items][:10]}..., expected 0..{n - 1}")
        return items

    @staticmethod
    def _row(i: int, item: Any) -> np.ndarray:
        emb = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(emb, str):
            try:
                return decode_base64(emb, where=f"embedding {i}")
            except InvalidInputError as exc:
                raise AnswerError(str(exc)) from None
        if isinstance(emb, list):
            try:
                return np.asarray(emb, dtype=np.float32)
            except (TypeError, ValueError):
                raise AnswerError(f"embedding {i} is not a list of numbers") from None
        raise AnswerError(f"embedding {i} is missing or of type {type(emb).__name__}")

    def join(self, parts: list[Any]) -> np.ndarray:
        # A part answered before a dimensions fallback is narrower than one answered after it;
        # both are prefixes of the same native vectors, so cut all to the narrowest.
        width = min(p.shape[1] for p in parts)
        return np.concatenate([p[:, :width] for p in parts])


def decode_answer(response: httpx.Response, n: int) -> np.ndarray:
    """The (n, width) float32 rows of one embeddings answer (floats or base64), checked as RemoteEmbedder
    checks them; AnswerError when it is wrong. For benchmarks and tools that time or test the parsing."""
    ep = EmbeddingEndpoint("http://answer.invalid", ["http://answer.invalid"], batch_cap=max(1, n))
    policy = EmbeddingsPolicy("", None, truncate=False, limiter=None, log=logging.getLogger(__name__))
    return policy.parse(response, [""] * n, Request(ep.url, {"input": [""] * n}, ep))


class ReplicaCheck:
    """Several servers for one embedder: on first use (and when a server that was down comes back) each
    embeds :data:`PROBE_TEXT`; a server whose answer differs in width, model name or vector from the first
    one's raises ConfigurationError naming it. Until checked, a server takes no requests (``routable``)."""

    SAME = "every endpoint of one RemoteEmbedder must serve the same model and width"

    def __init__(self, pool: EndpointPool, dimensions: int | None) -> None:
        self.pool, self.dimensions = pool, dimensions
        self._ref: tuple[EmbeddingEndpoint, np.ndarray] | None = None
        self._lock = threading.Lock()
        self._alocks: LoopClients[asyncio.Lock] = LoopClients()

    @staticmethod
    def routable(ep: Any) -> bool:
        return bool(getattr(ep, "checked", True))

    def to_check(self) -> list[EmbeddingEndpoint]:
        if len(self.pool) == 1:
            return []
        now = time.monotonic()
        return [e for e in self.pool.endpoints
                if isinstance(e, EmbeddingEndpoint) and not e.checked and e.benched_until <= now]

    def admit(self, ep: EmbeddingEndpoint, raw: np.ndarray) -> None:
        """Compare ``ep``'s answer to the probe with the first checked endpoint's."""
        vec = np.asarray(raw, dtype=np.float32)[0]
        odd = redact_url(ep.given)
        if self.dimensions is not None and vec.shape[0] < self.dimensions:
            raise ConfigurationError(f"endpoint {odd} answers {vec.shape[0]}-d vectors, fewer than "
                                     f"dimensions={self.dimensions}; {self.SAME}")
        if self._ref is None:
            self._ref = (ep, vec)
            ep.checked = True
            return
        ref_ep, ref_vec = self._ref
        first = redact_url(ref_ep.given)
        if ep.served_model and ref_ep.served_model and ep.served_model != ref_ep.served_model:
            raise ConfigurationError(f"endpoint {odd} serves model {ep.served_model!r}, but {first} serves "
                                     f"{ref_ep.served_model!r}; {self.SAME}")
        width, ref_width = vec.shape[0], ref_vec.shape[0]
        if self.dimensions is None and width != ref_width:
            raise ConfigurationError(f"endpoint {odd} answers {width}-d vectors, but {first} answers "
                                     f"{ref_width}-d; {self.SAME}")
        k = min(width, ref_width)
        a, b = vec[:k], ref_vec[:k]
        cos = float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
        if cos < PROBE_MIN_COSINE:
            raise ConfigurationError(f"endpoint {odd} embeds the same text differently from {first} (cosine "
                                     f"{cos:.3f}): another model or other weights; {self.SAME}")
        ep.checked = True

    def _failed(self, ep: EmbeddingEndpoint, exc: EmbeddingServiceError) -> None:
        # A refusal of the request itself (401, 404 model, 400) is a configuration error, not an outage.
        if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429):
            raise ConfigurationError(f"endpoint {redact_url(ep.given)} refused the check request: {exc}") from None
        if ep.benched_until <= time.monotonic():
            self.pool.bench(ep, f"check request failed ({exc})")

    def _none_left(self, error: Exception | None, fail: Callable[[str], Exception]) -> None:
        if not any(getattr(e, "checked", True) for e in self.pool.endpoints):
            raise error or fail("no endpoint could be checked yet: all are benched")

    def run(self, send: Callable[[list[str], Any], Any], fail: Callable[[str], Exception]) -> None:
        """Probe the unchecked endpoints with ``send(texts, endpoint)`` (sync)."""
        if not self.to_check():
            return
        with self._lock:
            error: Exception | None = None
            for ep in self.to_check():
                try:
                    self.admit(ep, send([PROBE_TEXT], ep))
                except EmbeddingServiceError as exc:
                    self._failed(ep, exc)
                    error = error or exc
            self._none_left(error, fail)

    async def arun(self, asend: Callable[[list[str], Any], Awaitable[Any]], fail: Callable[[str], Exception]) -> None:
        """Async twin of ``run``."""
        if not self.to_check():
            return
        async with self._alocks.get(asyncio.Lock):
            error: Exception | None = None
            for ep in self.to_check():
                try:
                    self.admit(ep, await asend([PROBE_TEXT], ep))
                except EmbeddingServiceError as exc:
                    self._failed(ep, exc)
                    error = error or exc
            self._none_left(error, fail)
