"""RemoteEmbedder: one client for every OpenAI-compatible ``/v1/embeddings`` server.

The request building and the decisions live in plain methods with no I/O; the one request loop of
``_http.HTTPClientBase`` runs them, in a thread pool (sync) or on the event loop (async).

Routes as users write them: a URL with a path is used as given (``http://h/v1`` ->
``http://h/v1/embeddings``, ``https://gateway/openai/v1``, ``.../embeddings``); a bare ``http://h:p``
tries ``/v1/embeddings`` and, on a 404, Infinity's default ``/embeddings``, then keeps what answered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from ._http import (
    HIDDEN,
    Endpoint,
    HTTPClientBase,
    RateLimiter,
    Refusal,
    Request,
    Step,
    check_base_url,
    check_headers,
    env_headers,
    redact_url,
    resolve_api_key,
    route_candidates,
    split_headers,
)
from .embedder import Embedder
from .errors import (
    ConfigurationError,
    EmbeddingRateLimitError,
    EmbeddingServiceError,
    EmbeddingTimeoutError,
    InvalidInputError,
)
from .http.engines import profile, route_hint
from .settings import Configurable, Settings, check_bool, check_choice, check_int, check_number, check_str
from .vectors import decode_base64

logger = logging.getLogger(__name__)

#: Characters per token assumed before the server counts (for ``max_tokens_per_minute``).
CHARS_PER_TOKEN_ESTIMATE = 4
#: The text every server of a several-server RemoteEmbedder embeds on first use, to compare their answers.
PROBE_TEXT = "qwen-embed-adapters: the same model behind every endpoint?"
#: Two servers whose probe vectors (compared on their common prefix) are less alike than this serve
#: different models or weights.
PROBE_MIN_COSINE = 0.99

#: A request whose ``usage.prompt_tokens`` times this is below its characters was cut silently ...
SILENT_CUT_CHARS_PER_TOKEN = 12
#: ... when its inputs hold at least this many characters.
SILENT_CUT_MIN_CHARS = 4096


def normalise_base_url(base_url: str) -> str:
    """``http://h:p`` and ``http://h:p/`` become ``http://h:p/v1``; a trailing ``/embeddings`` is dropped.

    The most likely OpenAI-style base of a URL, for tools that need one before any request
    (RemoteEmbedder itself tries the routes: see ``route_candidates``).
    """
    url = check_base_url(base_url)
    if url.endswith("/embeddings"):
        url = url[: -len("/embeddings")]
    if not url.split("://", 1)[1].count("/"):
        url += "/v1"
    return url


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


@dataclass(frozen=True)
class RemoteEmbedderSettings(Settings):
    """Every setting of a RemoteEmbedder, written down once: the constructor, ``to_config`` /
    ``from_config``, ``repr`` and pickling derive from these fields. No secret is a field: a key is
    named by its variable (``api_key_env``), credential headers by theirs (``header_envs``)."""

    base_url: str | tuple[str, ...]
    model: str = "Qwen3-Embedding-0.6B"
    dimensions: int | None = None
    query_instruction: str | None = None
    batch_size: int = 64
    max_concurrency: int = 4
    max_retries: int = 5
    timeout: float = 60.0
    api_key_env: str | None = None
    send_dimensions: bool = True
    encoding_format: str = "base64"
    truncate: bool = False
    max_requests_per_minute: float | None = None
    max_tokens_per_minute: float | None = None
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0
    headers: dict[str, str] | None = None
    header_envs: dict[str, str] | None = None

    def validate(self) -> None:
        urls = self.urls()
        if len(set(urls)) != len(urls):
            dup = next(u for u in urls if urls.count(u) > 1)
            raise ConfigurationError(f"base_url lists {redact_url(dup)!r} twice")
        check_str("model", self.model)
        check_int("dimensions", self.dimensions, minimum=1, optional=True)
        check_str("query_instruction", self.query_instruction, optional=True, empty=True)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("max_concurrency", self.max_concurrency, minimum=1)
        check_int("max_retries", self.max_retries, minimum=0)
        check_number("timeout", self.timeout, positive=True)
        check_str("api_key_env", self.api_key_env, optional=True)
        check_bool("send_dimensions", self.send_dimensions)
        check_choice("encoding_format", self.encoding_format, ("base64", "float"))
        check_bool("truncate", self.truncate)
        for name in ("max_requests_per_minute", "max_tokens_per_minute"):
            check_number(name, getattr(self, name), positive=True, optional=True)
        for name in ("backoff_base", "backoff_max", "max_retry_after"):
            check_number(name, getattr(self, name), minimum=0)
        check_headers(self.headers, self.header_envs)

    def urls(self) -> list[str]:
        """The server URLs, checked and stripped of trailing slashes."""
        given = [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)
        if not given:
            raise ConfigurationError("base_url must be a URL or a non-empty list of URLs")
        return [check_base_url(u) for u in given]

    def to_config(self) -> dict[str, Any]:
        config = super().to_config()
        urls = [redact_url(u) for u in self.urls()]  # credentials in a URL are never persisted
        config["base_url"] = urls[0] if isinstance(self.base_url, str) else urls
        return config


def _cut(text: str, refusal: Refusal) -> str:
    """A conservative client-side cut of ``text`` to fit ``refusal.limit`` tokens."""
    if refusal.limit and refusal.tokens and refusal.tokens > refusal.limit:
        keep = int(len(text) * refusal.limit / refusal.tokens * 0.9)
    else:
        keep = len(text) // 2
    return text[: max(1, min(keep, len(text) - 1))]


class RemoteEmbedder(Configurable, Embedder, HTTPClientBase):
    """Embeddings from an OpenAI-compatible endpoint (SGLang, vLLM, TEI, Ollama, Infinity, ``qwen-embed serve``).

    Example::

        emb = RemoteEmbedder("http://localhost:30000/v1", model="Qwen3-Embedding-0.6B", dimensions=512)
        vectors = emb.embed_documents(["今天天气真好", "阳光明媚,适合散步"])   # float32 (2, 512)

    ``base_url`` with a path is used as given (``.../v1`` -> ``.../v1/embeddings``; a URL ending in
    ``/embeddings`` as it is); a bare ``http://host:port`` tries ``/v1/embeddings`` and then
    ``/embeddings``, and ``endpoint_url`` tells which answered.

    An input over the server's token limit raises InvalidInputError naming its index (it never lowers
    the batch size); with ``truncate=True`` it is embedded cut instead: with the server's own switch
    where the refusal tells which engine it is (TEI ``truncate``, vLLM ``truncate_prompt_tokens``),
    else cut client-side, and a warning says so.

    ``base_url`` may be a list of URLs of servers of the same model (replicas): each request goes to
    the one with the fewest requests in flight; each keeps what was learnt about it (route, batch cap,
    ``dimensions`` and base64 support). On first use every server embeds one probe text, and a server
    whose answer differs in width, model name or vector from the first one's raises ConfigurationError
    naming it. A server that fails (connection error, timeout, 5xx) is benched for 1 s, doubling with
    each failure in a row up to 30 s, and its batches are retried on the others.

    ``max_requests_per_minute`` / ``max_tokens_per_minute`` (hosted APIs) hold for every call of the
    embedder together, sync and async; tokens are estimated, then corrected with ``usage.prompt_tokens``.

    The key comes from ``api_key``, else ``$QWEN_EMBED_API_KEY``, else ``$OPENAI_API_KEY``; it never
    appears in repr, logs, exceptions or ``to_config()`` (which keeps only the variable's name).
    """

    engine = "remote"
    settings_class = RemoteEmbedderSettings
    config_kind = ("engine", "remote")
    _log = logger
    _error_classes = (EmbeddingServiceError, EmbeddingTimeoutError, EmbeddingRateLimitError)
    _route_hint = route_hint()
    _too_long_hint = " (pass truncate=True to embed it cut, or split the text)"
    _endpoint: EmbeddingEndpoint

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str = "Qwen3-Embedding-0.6B",
        *,
        api_key: str | None = None,
        dimensions: int | None = None,
        query_instruction: str | None = None,
        batch_size: int = 64,
        max_concurrency: int = 4,
        max_retries: int = 5,
        timeout: float = 60.0,
        api_key_env: str | None = None,
        send_dimensions: bool = True,
        encoding_format: str = "base64",
        truncate: bool = False,
        max_requests_per_minute: float | None = None,
        max_tokens_per_minute: float | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_after: float = 60.0,
        headers: Mapping[str, str] | None = None,
        header_envs: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(base_url, str):
            urls: str | tuple[str, ...] = base_url
        elif isinstance(base_url, Sequence) and base_url:
            urls = tuple(base_url)
        else:
            raise ConfigurationError(f"base_url must be a URL or a non-empty list of URLs, got {base_url!r:.200}")
        plain, secret = split_headers(headers)
        _, key_env = resolve_api_key(api_key, api_key_env)
        self.settings: RemoteEmbedderSettings = RemoteEmbedderSettings(
            base_url=urls, model=model, dimensions=dimensions, query_instruction=query_instruction,
            batch_size=batch_size, max_concurrency=max_concurrency, max_retries=max_retries, timeout=timeout,
            api_key_env=key_env, send_dimensions=send_dimensions, encoding_format=encoding_format,
            truncate=truncate, max_requests_per_minute=max_requests_per_minute,
            max_tokens_per_minute=max_tokens_per_minute, backoff_base=backoff_base, backoff_max=backoff_max,
            max_retry_after=max_retry_after, headers=plain or None,
            header_envs=dict(header_envs) if header_envs else None,
        )
        st = self.settings
        urls_list = st.urls()
        # What each server turned out to support lives in its endpoint; learnt once, kept for later calls.
        endpoints = [
            EmbeddingEndpoint(
                url, route_candidates(url, "embeddings"), batch_cap=64,
                send_dimensions=send_dimensions and dimensions is not None, encoding_format=encoding_format,
                checked=len(urls_list) == 1,
            )
            for url in urls_list
        ]
        self._endpoints = list(endpoints)
        self._endpoint = endpoints[0]
        self._check_lock = threading.Lock()
        self._acheck_locks: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
        self._probe_ref: tuple[EmbeddingEndpoint, np.ndarray] | None = None
        super().__init__(
            model,
            dimensions=dimensions,
            query_instruction=query_instruction,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
        )
        #: the URL as given (stripped of trailing slashes); ``endpoint_url`` is the route that answered.
        #: With several servers: the first one's; ``base_urls`` lists them all.
        self.base_url = urls_list[0]
        self.base_urls = urls_list
        self.truncate = truncate
        if max_requests_per_minute is not None or max_tokens_per_minute is not None:
            # One limiter for every call of this embedder: sync, async, LightRAG's and ingest's through it.
            self._limiter = RateLimiter(max_requests_per_minute, max_tokens_per_minute)
        self._init_http(
            endpoint=self._endpoint,
            api_key=api_key, api_key_env=api_key_env,
            headers={**plain, **env_headers(header_envs), **secret}, max_retries=max_retries, timeout=timeout,
            backoff_base=backoff_base, backoff_max=backoff_max, max_retry_after=max_retry_after,
        )

    @property
    def openai_base_url(self) -> str:
        """The base URL an OpenAI SDK client would take for this server (the route without
        ``/embeddings``): the route that answered, else the first one to be tried."""
        route = self._endpoint.resolved or self._endpoint.candidates[0]
        return route[: -len("/embeddings")] if route.endswith("/embeddings") else route

    # ------------------------------------------------------------------ learnt state (per endpoint)
    @property
    def send_dimensions(self) -> bool:
        """Whether ``dimensions`` is sent (False once the server refused or ignored it)."""
        return self._endpoint.send_dimensions

    @send_dimensions.setter
    def send_dimensions(self, value: bool) -> None:
        self._endpoint.send_dimensions = value

    @property
    def encoding_format(self) -> str:
        """"base64" until the server refuses it, then "float"."""
        return self._endpoint.encoding_format

    @encoding_format.setter
    def encoding_format(self, value: str) -> None:
        self._endpoint.encoding_format = value

    # ------------------------------------------------------------------ config
    def _repr_fields(self) -> dict[str, Any]:
        shown = self.settings.shown()
        shown["base_url"] = self.settings.to_config()["base_url"]  # credentials in URLs redacted
        shown["dimension"] = self._dimension if self._dimension is not None else "unknown"
        if self._api_key:
            shown["api_key"] = HIDDEN
        return shown

    # ------------------------------------------------------------------ request building and decisions (no I/O)
    def _body(self, texts: list[str], ep: EmbeddingEndpoint | None = None) -> dict[str, Any]:
        ep = ep or self._endpoint
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": ep.encoding_format}
        if ep.send_dimensions and self.dimensions is not None:
            body["dimensions"] = self.dimensions
        if self.truncate and ep.truncate_switch:
            body[ep.truncate_switch] = True if ep.truncate_switch == "truncate" else ep.truncate_to
        return body

    def _build(self, items: list[Any], ctx: Any) -> Request:
        pinned = ctx if isinstance(ctx, EmbeddingEndpoint) else None
        ep = self._pick(pinned)
        assert isinstance(ep, EmbeddingEndpoint)
        return Request(ep.url, self._body(items, ep), ep, pinned=pinned is not None)

    def _routable(self, ep: Any) -> bool:
        return bool(ep.checked)

    def _cost(self, request: Request) -> int:
        # About 4 characters a token in English; corrected with the answer's usage.prompt_tokens.
        return max(1, sum(len(t) for t in request.body["input"]) // CHARS_PER_TOKEN_ESTIMATE)

    def _endpoint_of(self, request: Request) -> EmbeddingEndpoint:
        ep = request.endpoint or self._endpoint
        assert isinstance(ep, EmbeddingEndpoint)
        return ep

    def _on_wider_answer(self, width: int) -> None:
        return None  # learnt per endpoint in _parse, where the answering endpoint is known

    def _wider_than_asked(self, width: int, request: Request) -> None:
        ep = self._endpoint_of(request)
        if self.dimensions is not None and "dimensions" in request.body and width > self.dimensions:
            with self._client_lock:
                if ep.send_dimensions:
                    logger.info(
                        "%s ignored dimensions=%s (answered %d-d); truncating client-side from now on",
                        redact_url(request.url), self.dimensions, width,
                    )
                    ep.send_dimensions = False

    # ------------------------------------------------------------------ several endpoints: the first-use check
    def _to_check(self) -> list[EmbeddingEndpoint]:
        now = time.monotonic()
        eps = [e for e in self._endpoints if isinstance(e, EmbeddingEndpoint)]
        return [e for e in eps if not e.checked and e.benched_until <= now]

    def _admit(self, ep: EmbeddingEndpoint, raw: np.ndarray) -> None:
        """Compare ``ep``'s answer to the probe with the first checked endpoint's; ConfigurationError
        naming ``ep`` when it serves another model or width."""
        vec = np.asarray(raw, dtype=np.float32)[0]
        ref = self._probe_ref
        odd = redact_url(ep.given)
        same = "every endpoint of one RemoteEmbedder must serve the same model and width"
        if self.dimensions is not None and vec.shape[0] < self.dimensions:
            raise ConfigurationError(
                f"endpoint {odd} answers {vec.shape[0]}-d vectors, fewer than dimensions={self.dimensions}; {same}"
            )
        if ref is None:
            self._probe_ref = (ep, vec)
            ep.checked = True
            return
        ref_ep, ref_vec = ref
        first = redact_url(ref_ep.given)
        if ep.served_model and ref_ep.served_model and ep.served_model != ref_ep.served_model:
            raise ConfigurationError(
                f"endpoint {odd} serves model {ep.served_model!r}, but {first} serves {ref_ep.served_model!r}; {same}"
            )
        width, ref_width = vec.shape[0], ref_vec.shape[0]
        if self.dimensions is None and width != ref_width:
            raise ConfigurationError(
                f"endpoint {odd} answers {width}-d vectors, but {first} answers {ref_width}-d; {same}"
            )
        k = min(width, ref_width)
        a, b = vec[:k], ref_vec[:k]
        cos = float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
        if cos < PROBE_MIN_COSINE:
            raise ConfigurationError(
                f"endpoint {odd} embeds the same text differently from {first} (cosine {cos:.3f}): another model "
                f"or other weights; {same}"
            )
        ep.checked = True

    def _probe_failed(self, ep: EmbeddingEndpoint, exc: EmbeddingServiceError) -> None:
        # A refusal of the request itself (401, 404 model, 400) is a configuration error, not an outage.
        if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429):
            raise ConfigurationError(f"endpoint {redact_url(ep.given)} refused the check request: {exc}") from None
        if ep.benched_until <= time.monotonic():
            self._bench(ep, f"check request failed ({exc})")

    def _no_endpoint(self, error: Exception | None) -> None:
        if not any(getattr(e, "checked", True) for e in self._endpoints):
            raise error or self._fail("no endpoint could be checked yet: all are benched")

    def _ensure_checked(self) -> None:
        """On first use (and when a server that was down comes back): probe the unchecked endpoints."""
        if len(self._endpoints) == 1 or not self._to_check():
            return
        with self._check_lock:
            error: Exception | None = None
            for ep in self._to_check():
                try:
                    raw = self._send([PROBE_TEXT], ep)
                except EmbeddingServiceError as exc:
                    self._probe_failed(ep, exc)
                    error = error or exc
                    continue
                self._admit(ep, raw)
            self._no_endpoint(error)

    async def _aensure_checked(self) -> None:
        if len(self._endpoints) == 1 or not self._to_check():
            return
        loop = asyncio.get_running_loop()
        lock = self._acheck_locks.get(id(loop))
        if lock is None or lock[0] is not loop:
            self._acheck_locks[id(loop)] = lock = (loop, asyncio.Lock())
        async with lock[1]:
            error: Exception | None = None
            for ep in self._to_check():
                try:
                    raw = await self._asend([PROBE_TEXT], ep)
                except EmbeddingServiceError as exc:
                    self._probe_failed(ep, exc)
                    error = error or exc
                    continue
                self._admit(ep, raw)
            self._no_endpoint(error)

    @property
    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per server: its URL (redacted), requests answered, in flight, failures in a row, and whether it
        is benched and checked."""
        now = time.monotonic()
        return [
            {"url": redact_url(e.given), "served": e.served, "outstanding": e.outstanding, "failures": e.failures,
             "benched": e.benched_until > now, "checked": getattr(e, "checked", True)}
            for e in self._endpoints
        ]

    def _error(self, message: str) -> Exception:
        return self._fail(message)

    def _decide_response(
        self, response: httpx.Response, texts: list[str], attempt: int, sent: dict[str, Any]
    ) -> Step:
        """What to do after one answer to ``sent`` (kept for tests and tools; the loop calls ``_decide``)."""
        return self._decide(response, texts, Request(self.url, sent), attempt, 0)

    def _refusal_step(self, status: int, lowered: str, items: list[Any], request: Request) -> Step | None:
        sent, ep = request.body, self._endpoint_of(request)
        if status not in (400, 422):
            return None
        # Decide from what this request sent: concurrent requests may have switched the flags already.
        if "dimensions" in sent and ("dimension" in lowered or "matryoshka" in lowered):
            if ep.send_dimensions:
                logger.info(
                    "%s refused dimensions=%s (HTTP %d); truncating client-side from now on",
                    redact_url(request.url), self.dimensions, status,
                )
                ep.send_dimensions = False
            return Step("resend")
        if sent.get("encoding_format") == "base64" and ("encoding_format" in lowered or "base64" in lowered):
            if ep.encoding_format == "base64":
                logger.info("%s refused base64 encoding; asking for floats from now on", redact_url(request.url))
                ep.encoding_format = "float"
            return Step("resend")
        switch = ep.truncate_switch
        if switch and switch in sent and switch in lowered:
            # The server does not know the switch: cut client-side from now on.
            logger.info("%s refused %r; cutting long inputs client-side from now on", redact_url(request.url), switch)
            ep.truncate_switch = ""
            return Step("resend")
        return None

    def _truncate_step(self, refusal: Refusal, items: list[Any], request: Request, offset: int) -> Step | None:
        if not self.truncate:
            return None
        ep = self._endpoint_of(request)
        switch = profile(refusal.engine).truncate_switch if refusal.engine else ""
        if switch and ep.truncate_switch is None:
            with self._client_lock:
                if ep.truncate_switch is None:
                    logger.warning(
                        "%s: an input is over the model's %s tokens; asking the server to truncate (%s) from now on",
                        redact_url(request.url), refusal.limit or "maximum", switch,
                    )
                    ep.truncate_switch = switch
                    ep.truncate_to = refusal.limit or -1
        if ep.truncate_switch and ep.truncate_switch not in request.body:
            return Step("resend")
        if len(items) > 1:
            return None  # bisect down to the long input, then cut it
        text = items[0]
        cut = _cut(text, refusal)
        tokens = f"{refusal.tokens} tokens" if refusal.tokens else "too many tokens"
        limit = f" of {refusal.limit}" if refusal.limit else ""
        logger.warning(
            "%s: input %d of its batch has %s, over the server's limit%s; cut client-side from %d to %d characters",
            redact_url(request.url), offset, tokens, limit, len(text), len(cut),
        )
        return Step("replace", value=[cut])

    def _check_usage(self, payload: Any, texts: list[str], request: Request) -> None:
        """Warn once when ``usage.prompt_tokens`` shows the server read far fewer tokens than the texts
        hold: it truncated silently (Ollama cuts at ``num_ctx``)."""
        ep = self._endpoint_of(request)
        usage = payload.get("usage") if isinstance(payload, dict) else None
        counted = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if isinstance(counted, bool) or not isinstance(counted, int) or counted <= 0:
            return
        if self._limiter is not None:
            self._limiter.adjust(counted - self._cost(request))
        if ep.warned_truncation:
            return
        chars = sum(len(t) for t in texts)
        # No tokenizer here: even English code or prose averages well under 12 characters a token,
        # so fewer tokens than chars/12 means the server did not read everything.
        if chars >= SILENT_CUT_MIN_CHARS and counted * SILENT_CUT_CHARS_PER_TOKEN < chars:
            ep.warned_truncation = True
            logger.warning(
                "%s counted %d tokens for %d inputs of %d characters in all: it seems to truncate long inputs "
                "silently. Raise the server's context length (Ollama: the num_ctx option, e.g. "
                "PARAMETER num_ctx 8192 in a Modelfile; TEI: --max-input-length; vLLM: --max-model-len) or "
                "split long texts into smaller chunks",
                redact_url(self.url), counted, len(texts), chars,
            )

    def _parse(self, response: httpx.Response, items: list[Any], request: Request) -> np.ndarray:
        n = len(items)

        def fail(message: str) -> Exception:
            return self._fail(message, url=request.url)

        try:
            payload = response.json()
            data = payload["data"]
            if not isinstance(data, list):
                raise TypeError("'data' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise self._fail(
                f"malformed answer ({exc}): {self._scrub(response.text)}",
                status=response.status_code, body=self._scrub(response.text), url=request.url,
            ) from None
        if len(data) != n:
            raise fail(f"asked for {n} embeddings, the server returned {len(data)}")
        self._check_usage(payload, items, request)
        model = payload.get("model") if isinstance(payload, dict) else None
        if isinstance(model, str) and model:
            self._endpoint_of(request).served_model = model
        indexed = [isinstance(d, dict) and "index" in d for d in data]
        if any(indexed) and not all(indexed):
            raise fail(f"the answer gives an 'index' for {sum(indexed)} of {n} embeddings only")
        try:
            items = sorted(data, key=lambda d: d["index"]) if all(indexed) else data
        except TypeError:
            raise fail("the answer's 'index' fields are not comparable") from None
        if all(indexed) and [d["index"] for d in items] != list(range(n)):
            raise fail(f"the answer's indices are {[d['index'] for d in items][:10]}..., expected 0..{n - 1}")
        rows: list[np.ndarray] = []
        for i, item in enumerate(items):
            emb = item.get("embedding") if isinstance(item, dict) else None
            if isinstance(emb, str):
                try:
                    rows.append(decode_base64(emb, where=f"embedding {i}"))
                except InvalidInputError as exc:
                    raise fail(str(exc)) from None
            elif isinstance(emb, list):
                try:
                    rows.append(np.asarray(emb, dtype=np.float32))
                except (TypeError, ValueError):
                    raise fail(f"embedding {i} is not a list of numbers") from None
            else:
                raise fail(f"embedding {i} is missing or of type {type(emb).__name__}")
        widths = {r.shape for r in rows}
        if len(widths) != 1 or rows[0].ndim != 1:
            shapes = [r.shape[0] if r.ndim == 1 else r.shape for r in rows]
            raise fail(f"the answer mixes vector widths: {sorted(set(map(str, shapes)))}")
        self._wider_than_asked(rows[0].shape[0], request)
        return np.stack(rows)

    # ------------------------------------------------------------------ I/O: the shared loop
    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self._ensure_checked()
        return self._send(texts)  # type: ignore[no-any-return]

    async def _aembed_batch(self, texts: list[str]) -> np.ndarray:
        await self._aensure_checked()
        return await self._asend(texts)  # type: ignore[no-any-return]

    def _join(self, parts: list[Any]) -> np.ndarray:
        # A part answered before a dimensions fallback is narrower than one answered after it;
        # both are prefixes of the same native vectors, so cut all to the narrowest.
        width = min(p.shape[1] for p in parts)
        return np.concatenate([p[:, :width] for p in parts])

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        super().close()
        self._close_sync_client()

    async def aclose(self) -> None:
        await self._aclose_async_client()
        self.close()

