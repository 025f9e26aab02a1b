"""RemoteEmbedder: one client for every OpenAI-compatible ``/v1/embeddings`` server.

RemoteEmbedder holds its HTTP half instead of inheriting it: a ``http.Session`` (clients, the request
loop, the endpoint pool) and an ``http.embeddings_api.EmbeddingsPolicy`` (request bodies, answer parsing,
the fallbacks a refusal teaches). What it adds is the Embedder contract and its settings.

Routes as users write them: a URL with a path is used as given (``http://h/v1`` ->
``http://h/v1/embeddings``, ``https://gateway/openai/v1``, ``.../embeddings``); a bare ``http://h:p``
tries ``/v1/embeddings`` and, on a 404, Infinity's default ``/embeddings``, then keeps what answered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from ._urls import redact_url
from .embedder import Embedder
from .errors import ConfigurationError
from .http.embeddings_api import EmbeddingEndpoint, EmbeddingsPolicy, ReplicaCheck
from .http.limits import Backoff, RateLimiter
from .http.loop import RequestLoop
from .http.pool import EndpointPool
from .http.routes import check_base_url, route_candidates
from .http.routes import (
    normalise_base_url as normalise_base_url,  # still importable from here (cli/doctor.py)
)
from .http.session import HIDDEN, Session, check_headers, resolve_api_key, session_headers, split_headers
from .settings import Configurable, Settings, check_bool, check_choice, check_int, check_number, check_str

logger = logging.getLogger(__name__)

__all__ = ["RemoteEmbedder", "RemoteEmbedderSettings"]


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


def _setting(name: str) -> property:
    return property(lambda self: getattr(self.settings, name), doc=f"The ``{name}`` setting.")


class RemoteEmbedder(Configurable, Embedder):
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
    appears in repr, logs, exceptions or ``to_config()`` (which keeps only the variable's name). Headers
    whose values are credentials (``Authorization``, ``*key*``, ``*token*``) are sent but never persisted;
    ``header_envs={"X-Api-Key": "MY_VAR"}`` persists them by the name of their variable.

    ``http_client`` / ``http_async_client`` (an ``httpx.Client`` / ``AsyncClient``: proxies, TLS, hooks)
    or ``transport`` (e.g. ``httpx.MockTransport(handler)`` in tests) replace the clients it would make;
    like a key given directly, they are not settings and are not pickled.
    """

    engine = "remote"
    settings_class = RemoteEmbedderSettings
    config_kind = ("engine", "remote")

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
        http_client: httpx.Client | None = None,
        http_async_client: httpx.AsyncClient | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(base_url, str) and not (isinstance(base_url, Sequence) and base_url):
            raise ConfigurationError(f"base_url must be a URL or a non-empty list of URLs, got {base_url!r:.200}")
        urls = base_url if isinstance(base_url, str) else tuple(base_url)
        plain, _ = split_headers(headers)
        key, key_env = resolve_api_key(api_key, api_key_env)
        self.settings: RemoteEmbedderSettings = RemoteEmbedderSettings(
            base_url=urls, model=model, dimensions=dimensions, query_instruction=query_instruction,
            batch_size=batch_size, max_concurrency=max_concurrency, max_retries=max_retries, timeout=timeout,
            api_key_env=key_env, send_dimensions=send_dimensions, encoding_format=encoding_format,
            truncate=truncate, max_requests_per_minute=max_requests_per_minute,
            max_tokens_per_minute=max_tokens_per_minute, backoff_base=backoff_base, backoff_max=backoff_max,
            max_retry_after=max_retry_after, headers=plain or None,
            header_envs=dict(header_envs) if header_envs else None,
        )
        #: the URLs as given (stripped of trailing slashes); ``endpoint_url`` is the route that answered.
        self.base_urls = self.settings.urls()
        self.base_url = self.base_urls[0]
        self._api_key = key
        super().__init__(model, dimensions=dimensions, query_instruction=query_instruction, batch_size=batch_size,
                         max_concurrency=max_concurrency)
        # What each server turned out to support lives in its endpoint; learnt once, kept for later calls.
        endpoints = [
            EmbeddingEndpoint(url, route_candidates(url, "embeddings"), batch_cap=batch_size,
                              send_dimensions=send_dimensions and dimensions is not None,
                              encoding_format=encoding_format, checked=len(self.base_urls) == 1)
            for url in self.base_urls
        ]
        limiter = None
        if max_requests_per_minute is not None or max_tokens_per_minute is not None:
            # One limiter for every call of this embedder: sync, async, LightRAG's and ingest's through it.
            limiter = RateLimiter(max_requests_per_minute, max_tokens_per_minute)
        self._policy = EmbeddingsPolicy(model, dimensions, truncate=truncate, limiter=limiter, log=logger)
        pool = EndpointPool(endpoints, log=logger, routable=ReplicaCheck.routable)
        self._replicas = ReplicaCheck(pool, dimensions)
        self._session = Session(
            RequestLoop(self._policy, pool, max_retries=max_retries, limiter=limiter, api_key=key,
                        backoff=Backoff(backoff_base, backoff_max, max_retry_after)),
            headers=session_headers(key, headers, header_envs), timeout=timeout, max_concurrency=max_concurrency,
            http_client=http_client, http_async_client=http_async_client, transport=transport,
        )

    # ------------------------------------------------------------------ settings and learnt state
    max_retries = _setting("max_retries")
    timeout = _setting("timeout")
    truncate = _setting("truncate")
    backoff_base = _setting("backoff_base")
    backoff_max = _setting("backoff_max")
    max_retry_after = _setting("max_retry_after")
    api_key_env = _setting("api_key_env")

    @property
    def batch_size(self) -> int:
        """Items per request: the given ``batch_size``, lowered when the server refuses as many (with
        several servers, the largest of their caps; a batch too big for the one picked is split)."""
        session = self.__dict__.get("_session")
        return session.pool.batch_size if session is not None else self.settings.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        session = self.__dict__.get("_session")
        if session is not None:  # Embedder.__init__ sets it before the session exists: the settings hold it
            session.pool.batch_size = value

    @property
    def _endpoint(self) -> EmbeddingEndpoint:
        return self._session.pool.first  # type: ignore[return-value]

    @property
    def url(self) -> str:
        """The route requests go to now (the first candidate until one has answered)."""
        return self._endpoint.url

    @property
    def endpoint_url(self) -> str | None:
        """The full URL of the route that answered (e.g. ``http://host:7997/embeddings``); None before
        the first successful request."""
        return self._endpoint.resolved

    @property
    def openai_base_url(self) -> str:
        """The base URL an OpenAI SDK client would take for this server (the route without
        ``/embeddings``): the route that answered, else the first one to be tried."""
        route = self._endpoint.resolved or self._endpoint.candidates[0]
        return route[: -len("/embeddings")] if route.endswith("/embeddings") else route

    @property
    def send_dimensions(self) -> bool:
        """Whether ``dimensions`` is sent (False once the server refused or ignored it)."""
        return self._endpoint.send_dimensions

    @property
    def encoding_format(self) -> str:
        """"base64" until the server refuses it, then "float"."""
        return self._endpoint.encoding_format

    @property
    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per server: its URL (redacted), requests answered, in flight, failures in a row, and whether it
        is benched and checked."""
        return self._session.pool.stats()

    def _repr_fields(self) -> dict[str, Any]:
        shown = self.settings.shown()
        shown["base_url"] = self.settings.to_config()["base_url"]  # credentials in URLs redacted
        shown["dimension"] = self._dimension if self._dimension is not None else "unknown"
        if self._api_key:
            shown["api_key"] = HIDDEN
        return shown

    def _body(self, texts: list[str]) -> dict[str, Any]:
        """The request body the first server would get for ``texts`` now."""
        return self._policy.body(texts, self._endpoint)

    # ------------------------------------------------------------------ the raw batch call
    def _error(self, message: str) -> Exception:
        return self._session.loop.fail(message)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self._replicas.run(self._session.send, self._session.loop.fail)
        return self._session.send(texts)  # type: ignore[no-any-return]

    async def _aembed_batch(self, texts: list[str]) -> np.ndarray:
        await self._replicas.arun(self._session.asend, self._session.loop.fail)
        return await self._session.asend(texts)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        super().close()
        self._session.close()

    async def aclose(self) -> None:
        await self._session.aclose()
        self.close()
