"""The request loop, with no I/O: build a request, read its answer, decide what to do next.

Following openai-python's ``_base_client`` split, :meth:`RequestLoop.exchange` is a generator that yields
what to do (:class:`OpKind`: post a request, sleep, send a sub-batch) and receives the outcome; the
decisions (route discovery, the client's own fallbacks, length refusals vs batch caps, retries of
408/409/429/5xx, timeouts and transport errors with backoff, jitter and ``Retry-After``, failover between
servers) are plain methods returning a :class:`Step`. ``session.Session`` runs it, sync or async.

What differs between clients (the embeddings and rerank APIs) is a :class:`Policy`: how a request body is
built, how a 200 answer is parsed, and the client's own fallbacks for a refused request.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .._urls import redact_url
from ..errors import InvalidInputError, RateLimitError, ServiceError
from .engines import Refusal, classify_refusal
from .limits import Backoff, RateLimiter, retry_after
from .pool import Endpoint, EndpointPool

__all__ = [
    "BENCH_STATUSES", "BODY_LIMIT", "MAX_RESENDS", "RETRY_STATUSES", "TIMEOUT_STATUSES", "AnswerError",
    "ErrorClasses", "Op", "OpKind", "Policy", "Request", "RequestLoop", "Step", "StepKind",
]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Answers that bench one of several endpoints (the server, not the request, is at fault).
BENCH_STATUSES = frozenset({408, 500, 502, 503, 504})
TIMEOUT_STATUSES = frozenset({408, 504})
BODY_LIMIT = 800
#: Resends without a pause (route, fallback or truncation changes) before a request gives up.
MAX_RESENDS = 12


class StepKind(enum.Enum):
    """What to do after one attempt."""

    DONE = "done"  # the answer is the result
    RETRY = "retry"  # pause, then send again
    RESEND = "resend"  # send again at once (a route, fallback or truncation changed)
    REPLACE = "replace"  # send other items instead (a client-side cut)
    SPLIT = "split"  # send the items in smaller requests
    RAISE = "raise"  # give up with an error


class OpKind(enum.Enum):
    """What the loop asks its runner to do."""

    POST = "post"  # post a Request; the outcome is an httpx.Response or the exception it raised
    SLEEP = "sleep"  # pause for the given seconds
    SUB = "sub"  # run (items, offset) as a request of its own; the outcome is its result


Op = tuple[OpKind, Any]
#: (any failure, timeout, rate limit) classes raised by a client
ErrorClasses = tuple[type[ServiceError], type[ServiceError], type[ServiceError]]


@dataclass
class Request:
    """One request as built: where it goes, its JSON body, and the endpoint (server) it is for; what the
    answer teaches (route, batch cap, ...) is kept on that endpoint."""

    url: str
    body: dict[str, Any]
    endpoint: Endpoint | None = None  # None: the client's only endpoint
    pinned: bool = False  # must go to this endpoint (a probe): a failure is not retried elsewhere


@dataclass
class Step:
    """What to do after one attempt, decided with no I/O."""

    kind: StepKind
    value: Any = None  # DONE: the result; REPLACE: the items to send instead
    delay: float = 0.0  # RETRY: the pause
    error: BaseException | None = None  # RAISE
    size: int = 0  # SPLIT: items per sub-request


class AnswerError(Exception):
    """Raised by a policy's ``parse`` for a 200 answer that is wrong; the loop turns it into the client's
    error class, naming the URL. ``body`` (the raw answer) is shown scrubbed and cut."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.body = message, status, body


class Policy(Protocol):
    """What one API adds to the loop: request bodies, answer parsing, and its own fallbacks."""

    log: logging.Logger
    error_classes: ErrorClasses
    #: which engines serve which route, said when no route answers
    route_hint: str
    #: what one item is called in errors ("input", "document")
    item_name: str
    #: added to the error for an input the server finds too long
    too_long_hint: str

    def build(self, items: list[Any], ctx: Any, pool: EndpointPool) -> Request:
        """The request for ``items`` (``pool.pick`` chooses its endpoint)."""

    def parse(self, response: httpx.Response, items: list[Any], request: Request) -> Any:
        """The result of a 200 answer; AnswerError when it is wrong."""

    def join(self, parts: list[Any]) -> Any:
        """The results of sub-requests as one."""

    def cost(self, request: Request) -> int:
        """Estimated tokens of a request, for ``max_tokens_per_minute``."""

    def refusal_step(self, status: int, lowered: str, items: list[Any], request: Request) -> Step | None:
        """The client's own fallbacks for a refused request (dimensions, base64, body shape)."""

    def truncate_step(self, refusal: Refusal, items: list[Any], request: Request, offset: int) -> Step | None:
        """With truncation on: how to resend what the server found too long; None to bisect or raise."""


class RequestLoop:
    """The decisions for one client: a policy, its endpoints, its retry and rate settings, and its key
    (only to scrub it from what is shown)."""

    def __init__(
        self,
        policy: Policy,
        pool: EndpointPool,
        *,
        max_retries: int,
        backoff: Backoff,
        limiter: RateLimiter | None = None,
        api_key: str | None = None,
    ) -> None:
        self.policy, self.pool, self.max_retries, self.backoff = policy, pool, max_retries, backoff
        self.limiter = limiter
        self._api_key = api_key

    # ---------------------------------------------------------------- errors
    def scrub(self, text: str) -> str:
        # Replace before cutting: a key that straddles the cut would otherwise show in part.
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text[:BODY_LIMIT]

    def fail(
        self, message: str, status: int | None = None, body: str | None = None, *, kind: str = "", url: str | None = None
    ) -> ServiceError:
        """The client's error class for ``kind`` ("", "timeout", "rate_limit"), its message naming the URL."""
        base, timeout_cls, rate_cls = self.policy.error_classes
        cls = {"timeout": timeout_cls, "rate_limit": rate_cls}.get(kind, base)
        return cls(f"{redact_url(url or self.pool.first.url)}: {message}", status=status, body=body)

    def _answer_error(self, exc: AnswerError, url: str) -> ServiceError:
        if exc.body is None:
            return self.fail(exc.message, status=exc.status, url=url)
        shown = self.scrub(exc.body)
        return self.fail(f"{exc.message}: {shown}", status=exc.status, body=shown, url=url)

    # ---------------------------------------------------------------- retries
    def _retry_delay(self, attempt: int, what: str, wait: float | None = None) -> float | None:
        """The pause before the next attempt after a retryable failure, or None once retries are used up."""
        if attempt >= self.max_retries:
            return None
        delay = self.backoff.delay(attempt, wait)
        self.policy.log.warning(
            "%s: %s (attempt %d/%d), retrying in %.2fs",
            redact_url(self.pool.first.url), what, attempt + 1, self.max_retries + 1, delay,
        )
        return delay

    def _failover(self, request: Request | None, why: str, attempt: int) -> Step | None:
        """With several endpoints: bench the request's endpoint after a failure and retry the request on
        another (at once, or when the first bench ends if all are benched); None to fall back to the
        one-server rules. A request gives up after ``max_retries`` plus one try per other endpoint."""
        ep = request.endpoint if request is not None else None
        if request is None or ep is None or len(self.pool) < 2:
            return None
        self.pool.bench(ep, why)
        if request.pinned:
            return Step(StepKind.RAISE, error=self.fail(why, url=request.url))
        if attempt >= self.max_retries + len(self.pool) - 1:
            return None
        return Step(StepKind.RETRY, delay=self.pool.wait_for_any(ep))

    @staticmethod
    def _retry_or_raise(delay: float | None, error: ServiceError) -> Step:
        return Step(StepKind.RAISE, error=error) if delay is None else Step(StepKind.RETRY, delay=delay)

    def decide_exception(self, exc: Exception, attempt: int, request: Request | None = None) -> Step:
        """After a timeout or transport error: fail over, retry, or raise."""
        step = self._failover(request, f"{type(exc).__name__}: {self.scrub(str(exc))}", attempt)
        if step is not None:
            return step
        delay = self._retry_delay(attempt, type(exc).__name__)
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else ""
        error = self.fail(f"{type(exc).__name__} after {attempt + 1} attempts: {self.scrub(str(exc))}", kind=kind,
                          url=request.url if request else None)
        return self._retry_or_raise(delay, error)

    def _status_failure(self, response: httpx.Response, attempt: int, body: str, url: str) -> Step:
        """After an HTTP error no fallback handled: retry (408/409/429/5xx) or raise."""
        status = response.status_code
        delay = None
        wait = retry_after(response.headers)
        if status in RETRY_STATUSES:
            delay = self._retry_delay(attempt, f"HTTP {status}", wait)
        retried = f" after {attempt + 1} attempts" if status in RETRY_STATUSES else ""
        kind = "rate_limit" if status == 429 else "timeout" if status in TIMEOUT_STATUSES else ""
        error = self.fail(f"HTTP {status}{retried}: {body}", status=status, body=body, kind=kind, url=url)
        if isinstance(error, RateLimitError):
            error.retry_after = wait
        return self._retry_or_raise(delay, error)

    # ---------------------------------------------------------------- one answer
    def decide(self, response: httpx.Response, items: list[Any], request: Request, attempt: int, offset: int) -> Step:
        """What to do after an answer: done, resend (after a learnt fallback), split, retry or raise."""
        status = response.status_code
        ep = request.endpoint or self.pool.first
        if status == 200:
            try:
                value = self.policy.parse(response, items, request)
            except AnswerError as exc:
                return Step(StepKind.RAISE, error=self._answer_error(exc, request.url))
            self.pool.route_answered(ep, request.url)
            self.pool.answered(ep)
            return Step(StepKind.DONE, value=value)
        body = self.scrub(response.text)
        lowered = body.lower()
        # A 404 about the model (vLLM: "The model `x` does not exist.") is an answer, not a missing route.
        if status in (404, 405) and "model" not in lowered:
            step = self._next_route(ep, request.url, status, body)
            if step is not None:
                return step
        step = self.policy.refusal_step(status, lowered, items, request)
        if step is not None:
            return step
        refusal = classify_refusal(status, lowered)
        if refusal is not None and refusal.kind == "length":
            return self._too_long(refusal, items, request, offset, status, body)
        if refusal is not None and len(items) > 1:
            size = self.pool.lower_batch_cap(ep, refusal.limit, len(items), status, self.policy.item_name)
            return Step(StepKind.SPLIT, size=size)
        if status in BENCH_STATUSES and request.endpoint is not None:
            step = self._failover(request, f"HTTP {status}: {body}", attempt)
            if step is not None:
                return step
        return self._status_failure(response, attempt, body, request.url)

    def _next_route(self, ep: Endpoint, url: str, status: int, body: str) -> Step | None:
        """After a 404/405: resend to the next candidate route, or raise naming every route tried."""
        nxt = self.pool.next_route(ep, url, status)
        if nxt is not None:
            return Step(StepKind.RESEND)
        if ep.resolved is not None:
            return None  # this route answered before: the 404 is the server's answer
        error = self.fail(f"no route answered: tried {ep.routes.tried()}: {body}. {self.policy.route_hint}",
                          status=status, body=body, url=url)
        return Step(StepKind.RAISE, error=error)

    def _too_long(
        self, refusal: Refusal, items: list[Any], request: Request, offset: int, status: int, body: str
    ) -> Step:
        """An input is over the model's length: never a batch cap. Truncate, bisect, or name the input."""
        step = self.policy.truncate_step(refusal, items, request, offset)
        if step is not None:
            return step
        if len(items) > 1:
            return Step(StepKind.SPLIT, size=(len(items) + 1) // 2)
        tokens = f"{refusal.tokens} tokens" if refusal.tokens else "too many tokens"
        limit = f", the server takes at most {refusal.limit}" if refusal.limit else ""
        error = InvalidInputError(
            f"{self.policy.item_name} {offset}: {tokens}{limit}{self.policy.too_long_hint} "
            f"({redact_url(request.url)}: HTTP {status}: {body})",
            index=offset, tokens=refusal.tokens, limit=refusal.limit,
        )
        return Step(StepKind.RAISE, error=error)

    # ---------------------------------------------------------------- the loop
    def exchange(self, items: list[Any], ctx: Any, offset: int) -> Generator[Op, Any, Any]:
        """The request loop with no I/O: yields what to do (post, sleep, send a sub-batch), gets the outcome."""
        attempt = resends = 0
        while True:
            request = self.policy.build(items, ctx, self.pool)
            try:
                ep = request.endpoint
                if ep is not None and len(self.pool) > 1 and len(items) > max(1, ep.batch_cap):
                    # Several servers: this one takes fewer items per request than the batch holds.
                    step = Step(StepKind.SPLIT, size=max(1, ep.batch_cap))
                else:
                    if self.limiter is not None:
                        pause = self.limiter.reserve(self.policy.cost(request))
                        if pause > 0:
                            yield (OpKind.SLEEP, pause)
                    outcome = yield (OpKind.POST, request)
                    if isinstance(outcome, Exception):
                        step = self.decide_exception(outcome, attempt, request)
                    else:
                        step = self.decide(outcome, items, request, attempt, offset)
            finally:
                # Runs when the generator is closed mid-request too (a cancelled task).
                self.pool.release(request.endpoint)
            if step.kind is StepKind.DONE:
                return step.value
            if step.kind is StepKind.RAISE:
                assert step.error is not None
                raise step.error
            if step.kind is StepKind.SPLIT:
                parts = []
                for i in range(0, len(items), step.size):
                    parts.append((yield (OpKind.SUB, (items[i : i + step.size], offset + i))))
                return self.policy.join(parts)
            if step.kind is StepKind.RETRY:
                attempt += 1
                yield (OpKind.SLEEP, step.delay)
                continue
            if step.kind is StepKind.REPLACE:
                items = step.value
            resends += 1
            if resends > MAX_RESENDS:
                raise self.fail(f"gave up after {resends} resends with changed settings")
