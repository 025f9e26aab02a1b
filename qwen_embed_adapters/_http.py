"""What RemoteEmbedder and RemoteReranker share about talking HTTP: no I/O of its own.

Following openai-python's ``_base_client`` split, this module holds the key resolution, the retry
decisions (408/409/429/5xx, timeouts, transport errors), backoff with jitter and ``Retry-After``,
scrubbing of bodies, URL redaction and the lazily built sync and per-event-loop async clients.
Each client keeps its own request body, answer parsing, fallbacks and the loops that sleep.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import threading
import time
from typing import ClassVar
from urllib.parse import urlsplit

import httpx

from ._urls import redact_url  # re-exported: remote.py, rerank.py and doctor.py import it from here
from .errors import ConfigurationError, EmbeddingServiceError

API_KEY_ENVS = ("QWEN_EMBED_API_KEY", "OPENAI_API_KEY")
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
BODY_LIMIT = 800


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


class HTTPClientBase:
    """Mixin for a client of one HTTP endpoint (``self.url``) with retries.

    A subclass calls ``_init_http`` in its constructor, sets ``max_concurrency`` and ``_log``, and
    writes its own request loops around ``_sync_client``/``_async_client``, asking
    ``_retry_delay`` whether and how long to wait after a retryable failure.
    """

    _log: ClassVar[logging.Logger]
    url: str
    max_concurrency: int

    def _init_http(
        self,
        *,
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

    def _fail(self, message: str, status: int | None = None, body: str | None = None) -> EmbeddingServiceError:
        return EmbeddingServiceError(f"{redact_url(self.url)}: {message}", status=status, body=body)

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

    def _transport_failure(self, exc: Exception, attempt: int) -> tuple[float | None, EmbeddingServiceError]:
        """After a timeout or transport error: the retry delay (None when used up) and the error to raise then."""
        delay = self._retry_delay(attempt, type(exc).__name__)
        return delay, self._fail(f"{type(exc).__name__} after {attempt + 1} attempts: {self._scrub(str(exc))}")

    def _status_failure(self, response: httpx.Response, attempt: int, body: str) -> tuple[float | None, EmbeddingServiceError]:
        """After an HTTP error no fallback handled: the retry delay (None if not retryable) and the error."""
        status = response.status_code
        delay = None
        if status in RETRY_STATUSES:
            delay = self._retry_delay(attempt, f"HTTP {status}", retry_after(response))
        retried = f" after {attempt + 1} attempts" if status in RETRY_STATUSES else ""
        return delay, self._fail(f"HTTP {status}{retried}: {body}", status=status, body=body)

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
