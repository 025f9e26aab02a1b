"""What RemoteEmbedder and RemoteReranker share about talking HTTP: one request loop.

Following openai-python's ``_base_client`` split, the decisions hold no I/O: ``_exchange`` is a
generator that builds each request (``_build``), reads each answer (``_decide``: route discovery,
the client's own fallbacks, length refusals vs batch caps, retries of 408/409/429/5xx, timeouts and
transport errors with backoff, jitter and ``Retry-After``) and says what to do next. ``_send`` and
``_asend`` are the thin sync and async shells that post, sleep and recurse into sub-batches.

What is learnt about a server (the route that answered, the batch cap, ...) lives in one
``Endpoint`` object per server, so a client of several servers keeps one each. With several, ``_pick``
sends each request to the endpoint with the fewest in flight, and ``_failover`` benches one that fails
(connection error, timeout, 5xx) with a doubling pause and retries the request on another.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import re
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from ._urls import redact_url  # re-exported: remote.py, rerank.py and doctor.py import it from here
from .errors import (
    ConfigurationError,
    InvalidInputError,
    RateLimitError,
    ServiceError,
    ServiceTimeoutError,
)
from .http.engines import Refusal, classify_refusal

API_KEY_ENVS = ("QWEN_EMBED_API_KEY", "OPENAI_API_KEY")
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Answers that bench one of several endpoints (the server, not the request, is at fault).
BENCH_STATUSES = frozenset({408, 500, 502, 503, 504})
#: First and longest bench of a failed endpoint (seconds); it doubles with each failure in a row.
BENCH_BASE = 1.0
BENCH_MAX = 30.0
TIMEOUT_STATUSES = frozenset({408, 504})
BODY_LIMIT = 800
#: Resends without a pause (route, fallback or truncation changes) before a request gives up.
MAX_RESENDS = 12


#: Header names whose values are credentials: never persisted in a config, a pickle or a repr.
_SECRET_HEADER = re.compile(r"authorization|key|token|secret|password|passwd|cookie|auth|signature", re.IGNORECASE)


class Hidden:
    """Stands for a secret in a repr: shows as ``***``."""

    def __repr__(self) -> str:
        return "***"


HIDDEN = Hidden()


def is_secret_header(name: str) -> bool:
    """Whether a header's value looks like a credential (``Authorization``, ``X-Api-Key``, ``X-Auth-Token``)."""
    return bool(_SECRET_HEADER.search(name))


def split_headers(headers: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """``headers`` as (plain ones, credential ones); only the plain ones are settings."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError(f"headers must map str to str, got {name!r:.60}: {type(value).__name__}")
        (secret if is_secret_header(name) else plain)[name] = value
    return plain, secret


def env_headers(header_envs: Mapping[str, str] | None) -> dict[str, str]:
    """The headers whose values are read from environment variables (``{"X-Api-Key": "MY_KEY_VAR"}``);
    a variable that is not set is left out."""
    out: dict[str, str] = {}
    for name, env in (header_envs or {}).items():
        value = os.environ.get(env)
        if value:
            out[name] = value
    return out


def check_headers(headers: Any, header_envs: Any) -> None:
    """Settings check: ``headers`` holds no credential (those go by env var name in ``header_envs``)."""
    for label, value in (("headers", headers), ("header_envs", header_envs)):
        if value is None:
            continue
        if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigurationError(f"{label} must map str to str, got {value!r:.60}" if label == "header_envs"
                                     else f"{label} must map str to str")
    for name in headers or {}:
        if is_secret_header(name):
            raise ConfigurationError(
                f"header {name!r} holds a credential: it is not kept in settings; pass "
                f"header_envs={{{name!r}: 'ENV_VAR'}} to read it from an environment variable"
            )


def resolve_api_key(api_key: str | None, api_key_env: str | None) -> tuple[str | None, str | None]:
    """(the key, the name of the variable a rebuilt client reads it from).

    The key is ``api_key``, else ``$api_key_env``, else the first of ``API_KEY_ENVS`` that is set. A key
    given directly with no variable named keeps ``API_KEY_ENVS[0]`` as its variable: the rebuilt client
    reads the key from there (the key itself is never persisted).
    """
    if api_key is None:
        for name in (api_key_env,) if api_key_env else API_KEY_ENVS:
            if os.environ.get(name):
                return os.environ[name], name
        return None, api_key_env
    return api_key or None, api_key_env or (API_KEY_ENVS[0] if api_key else None)


def check_base_url(base_url: str) -> str:
    """``base_url`` stripped of white space and trailing slashes; an error unless it is http(s) with a host."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ConfigurationError(f"base_url must be a non-empty URL, got {base_url!r}")
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"base_url must start with http:// or https://, got {redact_url(url)!r}")
    return url


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked to wait (``Retry-After`` as seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


# ============================================================================ routes
def route_candidates(base_url: str, leaf: str, *, swap: tuple[str, ...] = (), v1_root: bool = False) -> list[str]:
    """The full URLs to try, in order, for the route ``leaf`` ("embeddings", "rerank") of ``base_url``.

    A URL with a path is used as given: ``.../v1`` -> ``.../v1/{leaf}``, ``.../{leaf}`` as it is (a path
    ending in one of ``swap`` has that last segment replaced). A bare ``http://host:port`` tries
    ``/v1/{leaf}`` (vLLM, SGLang, TEI, Ollama) and then ``/{leaf}`` (Infinity's default). With
    ``v1_root``, a path ending in ``/v1`` also tries the same path without it.
    """
    url = check_base_url(base_url)
    path = urlsplit(url).path
    if path.endswith("/" + leaf):
        return [url]
    for other in swap:
        if path.endswith("/" + other):
            url = url[: -len(other) - 1]
            path = urlsplit(url).path
            break
    if not path:
        return [f"{url}/v1/{leaf}", f"{url}/{leaf}"]
    urls = [f"{url}/{leaf}"]
    if v1_root and path.endswith("/v1"):
        urls.append(f"{url[: -len('/v1')]}/{leaf}")
    return urls


@dataclass
class Endpoint:
    """One server: the routes to try, the one that answered, and what was learnt about it.

    ``url`` is the route requests go to now; ``resolved`` the one that answered 200 (None before the
    first answer); ``batch_cap`` the most items per request, lowered when the server says so.
    """

    given: str
    candidates: list[str]
    batch_cap: int
    url: str = ""
    resolved: str | None = None
    refused: dict[str, int] = field(default_factory=dict)  # route -> HTTP status that refused it
    # For a client of several servers: requests in flight, benched until (monotonic seconds), failures
    # in a row (the bench doubles with each), requests answered.
    outstanding: int = 0
    benched_until: float = 0.0
    failures: int = 0
    served: int = 0

    def __post_init__(self) -> None:
        self.url = self.url or self.candidates[0]


# Refusals are read with each engine's wordings: see http/engines.py.


# ============================================================================ client-side rate limits
class RateLimiter:
    """Requests and tokens per minute for every call of one client, sync and async alike.

    Each request reserves its slot: it starts no sooner than one request interval after the one
    before it and once the tokens sent before it are paid for at the allowed rate (no bursts, so
    any minute holds at most the limit). Token counts are estimated before sending and corrected
    with the server's ``usage`` afterwards.
    """

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None) -> None:
        for label, value in (("max_requests_per_minute", requests_per_minute),
                             ("max_tokens_per_minute", tokens_per_minute)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ConfigurationError(f"{label} must be a positive number or None, got {value!r}")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._next_request = 0.0
        self._next_token = 0.0
        self._lock = threading.Lock()

    def reserve(self, tokens: int) -> float:
        """Book the next request (of about ``tokens`` tokens); returns the seconds to wait before sending it."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_request, self._next_token)
            if self.requests_per_minute:
                self._next_request = start + 60.0 / self.requests_per_minute
            if self.tokens_per_minute:
                self._next_token = start + max(tokens, 0) * 60.0 / self.tokens_per_minute
            return start - now

    def adjust(self, extra_tokens: int) -> None:
        """The server counted ``extra_tokens`` more (or fewer, if negative) than the estimate booked."""
        if self.tokens_per_minute and extra_tokens:
            with self._lock:
                self._next_token += extra_tokens * 60.0 / self.tokens_per_minute


# ============================================================================ the request loop
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

    kind: str  # "done", "retry", "resend", "replace", "split", "raise"
    value: Any = None  # "done": the result; "replace": the items to send instead
    delay: float = 0.0  # "retry": the pause
    error: BaseException | None = None  # "raise"
    size: int = 0  # "split": items per sub-request


Op = tuple[str, Any]  # ("post", Request) | ("sleep", seconds) | ("sub", (items, offset))


class HTTPClientBase:
    """Mixin for a client of one HTTP endpoint with retries, sharing one request loop.

    A subclass calls ``_init_http`` in its constructor, sets ``max_concurrency``, ``_log``,
    ``_error_classes`` and ``_route_hint``, and implements ``_build`` (items -> Request), ``_parse``
    (a 200 answer -> result), ``_join`` (results of sub-batches -> one) and optionally
    ``_refusal_step`` (its own fallbacks) and ``_truncate_step``. ``_send``/``_asend`` run a request
    for a list of items, splitting it where the server asks.
    """

    _log: ClassVar[logging.Logger]
    #: (any failure, timeout, rate limit) classes raised by this client
    _error_classes: ClassVar[tuple[type[ServiceError], type[ServiceError], type[ServiceError]]] = (
        ServiceError, ServiceTimeoutError, RateLimitError,
    )
    #: which engines serve which route, said when no route answers
    _route_hint: ClassVar[str] = ""
    #: what one item is called in errors ("input", "document")
    _item_name: ClassVar[str] = "input"
    #: added to the error for an input the server finds too long
    _too_long_hint: ClassVar[str] = ""
    max_concurrency: int
    _endpoint: Endpoint
    #: every server of the client (one, unless it was given several URLs); ``_endpoint`` is the first
    _endpoints: list[Endpoint]
    #: set by a client that takes rate limits
    _limiter: RateLimiter | None = None

    def _init_http(
        self,
        *,
        endpoint: Endpoint,
        api_key: str | None,
        api_key_env: str | None,
        headers: dict[str, str] | None,
        max_retries: int,
        timeout: float,
        backoff_base: float,
        backoff_max: float,
        max_retry_after: float,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._endpoint = endpoint
        if not getattr(self, "_endpoints", None):
            self._endpoints = [endpoint]
        self._rotation = 0
        self.max_retries = max_retries
        self.timeout = float(timeout)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        # Configs keep only the variable's name, never the key.
        self.api_key_env = api_key_env
        if api_key is None:
            for name in (api_key_env,) if api_key_env else API_KEY_ENVS:
                if os.environ.get(name):
                    api_key, self.api_key_env = os.environ[name], name
                    break
        self._api_key = api_key or None
        self._headers = {"User-Agent": "qwen-embed-adapters", **(headers or {})}
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"
        self._client: httpx.Client | None = None
        self._aclients: dict[int, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}
        self._client_lock = threading.Lock()

    # ---------------------------------------------------------------- the endpoint
    @property
    def url(self) -> str:
        """The route requests go to now (the first candidate until one has answered)."""
        return self._endpoint.url

    @url.setter
    def url(self, value: str) -> None:
        self._endpoint.url = value

    @property
    def batch_size(self) -> int:
        """Items per request: the given ``batch_size``, lowered when the server refuses as many (with
        several servers, the largest of their caps; a batch too big for the one picked is split)."""
        return max(ep.batch_cap for ep in self._all_endpoints())

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        for ep in self._all_endpoints():
            ep.batch_cap = value

    def _all_endpoints(self) -> list[Endpoint]:
        return self.__dict__.get("_endpoints") or [self._endpoint]

    # ---------------------------------------------------------------- several endpoints
    def _pick(self, pinned: Endpoint | None = None) -> Endpoint:
        """The endpoint for the next request, counted as in flight until ``_release``: ``pinned`` if
        given, else the one with the fewest requests in flight among those not benched (ties taken in
        turn); when all are benched, the one whose bench ends first."""
        with self._client_lock:
            eps = self._endpoints
            if pinned is not None:
                ep = pinned
            elif len(eps) == 1:
                ep = eps[0]
            else:
                now = time.monotonic()
                ready = [e for e in eps if e.benched_until <= now and self._routable(e)]
                if ready:
                    start = self._rotation = (self._rotation + 1) % len(eps)
                    order = {id(e): (i - start) % len(eps) for i, e in enumerate(eps)}
                    ep = min(ready, key=lambda e: (e.outstanding, order[id(e)]))
                else:
                    ep = min((e for e in eps if self._routable(e)), key=lambda e: e.benched_until, default=eps[0])
            ep.outstanding += 1
            return ep

    def _routable(self, ep: Endpoint) -> bool:
        """Whether ``ep`` may take requests (a subclass holds back endpoints it has not checked yet)."""
        return True

    def _release(self, request: Request) -> None:
        """``request``'s answer (or failure) is in: its endpoint has one request fewer in flight."""
        ep = request.endpoint
        if ep is not None:
            with self._client_lock:
                ep.outstanding = max(0, ep.outstanding - 1)

    def _bench(self, ep: Endpoint, why: str) -> None:
        """Take a failed endpoint out of rotation for a while (doubling with each failure in a row)."""
        with self._client_lock:
            ep.failures += 1
            pause = min(BENCH_MAX, BENCH_BASE * 2 ** (ep.failures - 1))
            ep.benched_until = time.monotonic() + pause
        self._log.warning(
            "%s: %s; benched for %.1fs, its requests go to the other %d endpoint(s)",
            redact_url(ep.given), why, pause, len(self._endpoints) - 1,
        )

    def _answered(self, ep: Endpoint) -> None:
        with self._client_lock:
            ep.served += 1
            if ep.failures:
                self._log.info("%s answers again", redact_url(ep.given))
                ep.failures = 0
                ep.benched_until = 0.0

    def _failover(self, request: Request | None, why: str, attempt: int) -> Step | None:
        """With several endpoints: bench ``ep`` after a failure and retry the request on another (at
        once, or when the first bench ends if all are benched); None to fall back to the one-server
        rules. A request gives up after ``max_retries`` plus one try per other endpoint."""
        ep = request.endpoint if request is not None else None
        if request is None or ep is None or len(self._endpoints) < 2:
            return None
        self._bench(ep, why)
        if request.pinned:
            return Step("raise", error=self._fail(why, url=request.url))
        if attempt >= self.max_retries + len(self._endpoints) - 1:
            return None
        now = time.monotonic()
        wait = min(e.benched_until for e in self._endpoints if self._routable(e) or e is ep) - now
        return Step("retry", delay=max(0.0, wait))

    @property
    def endpoint_url(self) -> str | None:
        """The full URL of the route that answered (e.g. ``http://host:7997/embeddings``); None before
        the first successful request."""
        return self._endpoint.resolved

    # ---------------------------------------------------------------- hooks
    def _build(self, items: list[Any], ctx: Any) -> Request:
        raise NotImplementedError

    def _parse(self, response: httpx.Response, items: list[Any], request: Request) -> Any:
        raise NotImplementedError

    def _join(self, parts: list[Any]) -> Any:
        raise NotImplementedError

    def _cost(self, request: Request) -> int:
        """Estimated tokens of a request, for ``max_tokens_per_minute``."""
        return 0

    def _refusal_step(self, status: int, lowered: str, items: list[Any], request: Request) -> Step | None:
        """The client's own fallbacks for a refused request (dimensions, base64, body shape)."""
        return None

    def _truncate_step(self, refusal: Refusal, items: list[Any], request: Request, offset: int) -> Step | None:
        """With truncation on: how to resend what the server found too long; None to bisect or raise."""
        return None

    # ---------------------------------------------------------------- decisions (no I/O)
    def _scrub(self, text: str) -> str:
        # Replace before cutting: a key that straddles the cut would otherwise show in part.
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text[:BODY_LIMIT]

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.backoff_max, self.backoff_base * (2**attempt))
        return base * (0.5 + random.random() / 2)

    def _fail(
        self, message: str, status: int | None = None, body: str | None = None, *, kind: str = "", url: str | None = None
    ) -> ServiceError:
        """The client's error class for ``kind`` ("", "timeout", "rate_limit"), its message naming the URL."""
        base, timeout_cls, rate_cls = self._error_classes
        cls = {"timeout": timeout_cls, "rate_limit": rate_cls}.get(kind, base)
        return cls(f"{redact_url(url or self.url)}: {message}", status=status, body=body)

    def _retry_delay(self, attempt: int, what: str, retry_after: float | None = None) -> float | None:
        """The pause before the next attempt after a retryable failure, or None once retries are used up."""
        if attempt >= self.max_retries:
            return None
        delay = self._backoff(attempt, retry_after)
        self._log.warning(
            "%s: %s (attempt %d/%d), retrying in %.2fs",
            redact_url(self.url), what, attempt + 1, self.max_retries + 1, delay,
        )
        return delay

    def _transport_failure(
        self, exc: Exception, attempt: int, url: str | None = None
    ) -> tuple[float | None, ServiceError]:
        """After a timeout or transport error: the retry delay (None when used up) and the error to raise then."""
        delay = self._retry_delay(attempt, type(exc).__name__)
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else ""
        return delay, self._fail(
            f"{type(exc).__name__} after {attempt + 1} attempts: {self._scrub(str(exc))}", kind=kind, url=url
        )

    def _status_failure(
        self, response: httpx.Response, attempt: int, body: str, url: str | None = None
    ) -> tuple[float | None, ServiceError]:
        """After an HTTP error no fallback handled: the retry delay (None if not retryable) and the error."""
        status = response.status_code
        delay = None
        wait = retry_after(response)
        if status in RETRY_STATUSES:
            delay = self._retry_delay(attempt, f"HTTP {status}", wait)
        retried = f" after {attempt + 1} attempts" if status in RETRY_STATUSES else ""
        kind = "rate_limit" if status == 429 else "timeout" if status in TIMEOUT_STATUSES else ""
        error = self._fail(f"HTTP {status}{retried}: {body}", status=status, body=body, kind=kind, url=url)
        if isinstance(error, RateLimitError):
            error.retry_after = wait
        return delay, error

    def _decide_exception(self, exc: Exception, attempt: int, request: Request | None = None) -> Step:
        step = self._failover(request, f"{type(exc).__name__}: {self._scrub(str(exc))}", attempt)
        if step is not None:
            return step
        delay, error = self._transport_failure(exc, attempt, request.url if request else None)
        return Step("raise", error=error) if delay is None else Step("retry", delay=delay)

    def _decide(self, response: httpx.Response, items: list[Any], request: Request, attempt: int, offset: int) -> Step:
        """What to do after an answer: done, resend (after a learnt fallback), split, retry or raise."""
        status = response.status_code
        ep = request.endpoint or self._endpoint
        if status == 200:
            value = self._parse(response, items, request)
            self._route_answered(ep, request.url)
            self._answered(ep)
            return Step("done", value=value)
        body = self._scrub(response.text)
        lowered = body.lower()
        # A 404 about the model (vLLM: "The model `x` does not exist.") is an answer, not a missing route.
        if status in (404, 405) and "model" not in lowered:
            step = self._next_route(ep, request.url, status, body)
            if step is not None:
                return step
        step = self._refusal_step(status, lowered, items, request)
        if step is not None:
            return step
        refusal = classify_refusal(status, lowered)
        if refusal is not None and refusal.kind == "length":
            return self._too_long(refusal, items, request, offset, status, body)
        if refusal is not None and len(items) > 1:
            return self._lower_batch_cap(ep, refusal, len(items), status)
        if status in BENCH_STATUSES and request.endpoint is not None:
            step = self._failover(request, f"HTTP {status}: {body}", attempt)
            if step is not None:
                return step
        delay, error = self._status_failure(response, attempt, body, request.url)
        return Step("raise", error=error) if delay is None else Step("retry", delay=delay)

    def _route_answered(self, ep: Endpoint, url: str) -> None:
        if ep.resolved is None:
            with self._client_lock:
                if ep.resolved is None:
                    if len(ep.candidates) > 1:
                        self._log.info("%s answers on %s", redact_url(ep.given), redact_url(url))
                    ep.resolved = ep.url = url

    def _next_route(self, ep: Endpoint, url: str, status: int, body: str) -> Step | None:
        """After a 404/405: resend to the next candidate route, or raise naming every route tried."""
        with self._client_lock:
            if ep.resolved is not None:
                return None  # this route answered before: the 404 is the server's answer
            ep.refused[url] = status
            if url != ep.url:
                return Step("resend")  # another request moved on already
            i = ep.candidates.index(url) if url in ep.candidates else len(ep.candidates)
            if i + 1 < len(ep.candidates):
                ep.url = ep.candidates[i + 1]
                self._log.info("%s answered HTTP %d; trying %s", redact_url(url), status, redact_url(ep.url))
                return Step("resend")
        tried = ", ".join(f"{redact_url(u)} (HTTP {s})" for u, s in ep.refused.items())
        error = self._fail(
            f"no route answered: tried {tried}: {body}. {self._route_hint}", status=status, body=body, url=url
        )
        return Step("raise", error=error)

    def _lower_batch_cap(self, ep: Endpoint, refusal: Refusal, n: int, status: int) -> Step:
        # A number in the message is the server's cap: use it at once; else halve.
        limit = refusal.limit or 0
        size = limit if 1 <= limit < n else max(1, n // 2)
        with self._client_lock:
            if size < ep.batch_cap:
                self._log.info(
                    "%s refused %d %ss per request (HTTP %d); using batches of %d from now on",
                    redact_url(ep.url), n, self._item_name, status, size,
                )
                ep.batch_cap = size
        return Step("split", size=size)

    def _too_long(
        self, refusal: Refusal, items: list[Any], request: Request, offset: int, status: int, body: str
    ) -> Step:
        """An input is over the model's length: never a batch cap. Truncate, bisect, or name the input."""
        step = self._truncate_step(refusal, items, request, offset)
        if step is not None:
            return step
        if len(items) > 1:
            return Step("split", size=(len(items) + 1) // 2)
        tokens = f"{refusal.tokens} tokens" if refusal.tokens else "too many tokens"
        limit = f", the server takes at most {refusal.limit}" if refusal.limit else ""
        error = InvalidInputError(
            f"{self._item_name} {offset}: {tokens}{limit}{self._too_long_hint} "
            f"({redact_url(request.url)}: HTTP {status}: {body})",
            index=offset, tokens=refusal.tokens, limit=refusal.limit,
        )
        return Step("raise", error=error)

    def _exchange(self, items: list[Any], ctx: Any, offset: int) -> Generator[Op, Any, Any]:
        """The request loop with no I/O: yields what to do (post, sleep, send a sub-batch), gets the outcome."""
        attempt = resends = 0
        while True:
            request = self._build(items, ctx)
            try:
                ep = request.endpoint
                if ep is not None and len(self._endpoints) > 1 and len(items) > max(1, ep.batch_cap):
                    # Several servers: this one takes fewer items per request than the batch holds.
                    step = Step("split", size=max(1, ep.batch_cap))
                else:
                    if self._limiter is not None:
                        pause = self._limiter.reserve(self._cost(request))
                        if pause > 0:
                            yield ("sleep", pause)
                    outcome = yield ("post", request)
                    if isinstance(outcome, Exception):
                        step = self._decide_exception(outcome, attempt, request)
                    else:
                        step = self._decide(outcome, items, request, attempt, offset)
            finally:
                # Runs when the generator is closed mid-request too (a cancelled task).
                self._release(request)
            if step.kind == "done":
                return step.value
            if step.kind == "raise":
                assert step.error is not None
                raise step.error
            if step.kind == "split":
                parts = []
                for i in range(0, len(items), step.size):
                    parts.append((yield ("sub", (items[i : i + step.size], offset + i))))
                return self._join(parts)
            if step.kind == "retry":
                attempt += 1
                yield ("sleep", step.delay)
                continue
            if step.kind == "replace":
                items = step.value
            resends += 1
            if resends > MAX_RESENDS:
                raise self._fail(f"gave up after {resends} resends with changed settings")

    # ---------------------------------------------------------------- the thin shells
    def _send(self, items: list[Any], ctx: Any = None, offset: int = 0) -> Any:
        """Run one request for ``items`` to the end (sync): retries, fallbacks and splits included."""
        client, loop = self._sync_client(), self._exchange(items, ctx, offset)
        outcome: Any = None
        while True:
            try:
                kind, arg = loop.send(outcome)
            except StopIteration as stop:
                return stop.value
            if kind == "post":
                try:
                    outcome = client.post(arg.url, json=arg.body)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    outcome = exc
            elif kind == "sleep":
                time.sleep(arg)
                outcome = None
            else:
                outcome = self._send(arg[0], ctx, arg[1])

    async def _asend(self, items: list[Any], ctx: Any = None, offset: int = 0) -> Any:
        """Async twin of ``_send``."""
        client, loop = self._async_client(), self._exchange(items, ctx, offset)
        outcome: Any = None
        while True:
            try:
                kind, arg = loop.send(outcome)
            except StopIteration as stop:
                return stop.value
            if kind == "post":
                try:
                    outcome = await client.post(arg.url, json=arg.body)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    outcome = exc
            elif kind == "sleep":
                await asyncio.sleep(arg)
                outcome = None
            else:
                outcome = await self._asend(arg[0], ctx, arg[1])

    # ---------------------------------------------------------------- clients
    def _limits(self) -> httpx.Limits:
        return httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)

    def _sync_client(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, limits=self._limits(), headers=self._headers)
            return self._client

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(id(loop))
        if entry is None or entry[0] is not loop or loop.is_closed():
            client = httpx.AsyncClient(timeout=self.timeout, limits=self._limits(), headers=self._headers)
            # Clients bound to loops that have closed are dropped (they cannot be awaited any more).
            self._aclients = {k: v for k, v in self._aclients.items() if not v[0].is_closed()}
            self._aclients[id(loop)] = (loop, client)
            return client
        return entry[1]

    def _close_sync_client(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _aclose_async_client(self) -> None:
        """Close the async client of the running loop (others belong to loops that must close their own)."""
        entry = self._aclients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].aclose()
