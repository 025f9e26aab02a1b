"""RemoteEmbedder: one client for every OpenAI-compatible ``/v1/embeddings`` server.

The request building and the retry decisions live in plain methods with no I/O; the sync path
(``httpx.Client`` on a thread pool) and the async path (``httpx.AsyncClient``) add only the loop
and the sleep, so both behave the same.
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
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from .embedder import Embedder
from .errors import ConfigurationError, EmbeddingServiceError, InvalidInputError
from .vectors import decode_base64

logger = logging.getLogger(__name__)

API_KEY_ENVS = ("QWEN_EMBED_API_KEY", "OPENAI_API_KEY")
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_BODY_LIMIT = 800
_LIMIT_RE = re.compile(r"(?:maximum|max)[a-z_ ]{0,40}?(?:batch[a-z_ ]{0,20}?)?(?:of |is |= ?|: ?)?(\d+)")


def _redact_url(url: str) -> str:
    """Drop any user:password@ from a URL so it can be logged and shown."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def normalise_base_url(base_url: str) -> str:
    """``http://h:p`` and ``http://h:p/`` become ``http://h:p/v1``; a trailing ``/embeddings`` is dropped."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ConfigurationError(f"base_url must be a non-empty URL, got {base_url!r}")
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"base_url must start with http:// or https://, got {_redact_url(url)!r}")
    if url.endswith("/embeddings"):
        url = url[: -len("/embeddings")]
    if not urlsplit(url).path:
        url += "/v1"
    return url


@dataclass
class _Action:
    """What to do after one attempt."""

    kind: str  # "done", "retry", "resend", "split", "raise"
    vectors: np.ndarray | None = None
    delay: float = 0.0
    error: Exception | None = None
    size: int = 0  # for "split": inputs per sub-request


class RemoteEmbedder(Embedder):
    """Embeddings from an OpenAI-compatible endpoint (SGLang, vLLM, TEI, Ollama, Infinity, ``qwen-embed serve``).

    Example::

        emb = RemoteEmbedder("http://localhost:30000/v1", model="Qwen3-Embedding-0.6B", dimensions=512)
        vectors = emb.embed_documents(["今天天气真好", "阳光明媚,适合散步"])   # float32 (2, 512)

    The key comes from ``api_key``, else ``$QWEN_EMBED_API_KEY``, else ``$OPENAI_API_KEY``; it never
    appears in repr, logs, exceptions or ``to_config()`` (which keeps only the variable's name).
    """

    engine = "remote"

    def __init__(
        self,
        base_url: str,
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
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_after: float = 60.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            model,
            dimensions=dimensions,
            query_instruction=query_instruction,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
        )
        self.base_url = normalise_base_url(base_url)
        self.url = self.base_url + "/embeddings"
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if encoding_format not in ("base64", "float"):
            raise ConfigurationError(f"encoding_format must be 'base64' or 'float', got {encoding_format!r}")
        self.max_retries = max_retries
        self.timeout = float(timeout)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
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
        # What the server turned out to support; learnt once, kept for later calls.
        self.send_dimensions = send_dimensions and dimensions is not None
        self.encoding_format = encoding_format
        self._client: httpx.Client | None = None
        self._aclients: dict[int, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}
        self._client_lock = threading.Lock()

    # ------------------------------------------------------------------ config
    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RemoteEmbedder:
        cfg = dict(config)
        cfg.pop("engine", None)
        known = {
            "base_url", "model", "dimensions", "query_instruction", "batch_size", "max_concurrency",
            "max_retries", "timeout", "api_key_env", "send_dimensions", "encoding_format",
        }
        unknown = set(cfg) - known
        if unknown:
            raise ConfigurationError(f"unknown remote embedder settings: {sorted(unknown)}")
        if "base_url" not in cfg:
            raise ConfigurationError("a remote embedder config needs 'base_url'")
        return cls(cfg.pop("base_url"), **cfg)

    def to_config(self) -> dict[str, Any]:
        return {
            "engine": "remote",
            "base_url": _redact_url(self.base_url),
            **self._config_common(),
            "batch_size": self.batch_size,
            "max_concurrency": self.max_concurrency,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "api_key_env": self.api_key_env or (API_KEY_ENVS[0] if self._api_key else None),
        }

    def __repr__(self) -> str:
        dim = self._dimension if self._dimension is not None else "unknown"
        key = ", api_key=***" if self._api_key else ""
        return f"RemoteEmbedder(base_url={_redact_url(self.base_url)!r}, model={self.model!r}, dimension={dim}{key})"

    # ------------------------------------------------------------------ request building and decisions (no I/O)
    def _body(self, texts: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": self.encoding_format}
        if self.send_dimensions and self.dimensions is not None:
            body["dimensions"] = self.dimensions
        return body

    def _on_wider_answer(self, width: int) -> None:
        if self.send_dimensions:
            logger.info(
                "%s ignored dimensions=%s (answered %d-d); truncating client-side from now on",
                _redact_url(self.base_url), self.dimensions, width,
            )
            self.send_dimensions = False

    def _error(self, message: str) -> Exception:
        return EmbeddingServiceError(f"{_redact_url(self.url)}: {message}")

    def _scrub(self, text: str) -> str:
        text = text[:_BODY_LIMIT]
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.backoff_max, self.backoff_base * (2**attempt))
        return base * (0.5 + random.random() / 2)

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
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

    def _decide_exception(self, exc: Exception, attempt: int) -> _Action:
        if isinstance(exc, (httpx.TimeoutException, httpx.TransportError)):
            if attempt < self.max_retries:
                delay = self._backoff(attempt, None)
                logger.warning(
                    "%s: %s (attempt %d/%d), retrying in %.2fs",
                    _redact_url(self.url), type(exc).__name__, attempt + 1, self.max_retries + 1, delay,
                )
                return _Action("retry", delay=delay)
            return _Action("raise", error=EmbeddingServiceError(
                f"{_redact_url(self.url)}: {type(exc).__name__} after {attempt + 1} attempts: {self._scrub(str(exc))}",
            ))
        return _Action("raise", error=exc)

    def _decide_response(
        self, response: httpx.Response, texts: list[str], attempt: int, sent: dict[str, Any]
    ) -> _Action:
        status = response.status_code
        if status == 200:
            return _Action("done", vectors=self._parse(response, len(texts)))
        body = self._scrub(response.text)
        lowered = body.lower()
        # Decide from what this request sent: concurrent requests may have switched the flags already.
        if status in (400, 422) and "dimensions" in sent and ("dimension" in lowered or "matryoshka" in lowered):
            if self.send_dimensions:
                logger.info(
                    "%s refused dimensions=%s (HTTP %d); truncating client-side from now on",
                    _redact_url(self.base_url), self.dimensions, status,
                )
                self.send_dimensions = False
            return _Action("resend")
        if status in (400, 422) and sent.get("encoding_format") == "base64" and (
            "encoding_format" in lowered or "base64" in lowered
        ):
            if self.encoding_format == "base64":
                logger.info("%s refused base64 encoding; asking for floats from now on", _redact_url(self.base_url))
                self.encoding_format = "float"
            return _Action("resend")
        too_many = status == 413 or (
            status in (400, 422)
            and any(w in lowered for w in ("batch size", "batch_size", "too many", "max_client_batch", "inputs"))
        )
        if too_many and len(texts) > 1:
            # TEI names its cap ("... maximum allowed batch size 32"): use it; else halve.
            m = _LIMIT_RE.search(lowered)
            limit = int(m.group(1)) if m else 0
            new_size = limit if 1 <= limit < len(texts) else max(1, len(texts) // 2)
            with self._client_lock:
                if new_size < self.batch_size:
                    logger.info(
                        "%s refused %d inputs per request (HTTP %d); using batches of %d from now on",
                        _redact_url(self.base_url), len(texts), status, new_size,
                    )
                    self.batch_size = new_size
            return _Action("split", size=new_size)
        if status in RETRY_STATUSES and attempt < self.max_retries:
            delay = self._backoff(attempt, self._retry_after(response))
            logger.warning(
                "%s: HTTP %d (attempt %d/%d), retrying in %.2fs",
                _redact_url(self.url), status, attempt + 1, self.max_retries + 1, delay,
            )
            return _Action("retry", delay=delay)
        retried = f" after {attempt + 1} attempts" if status in RETRY_STATUSES else ""
        return _Action("raise", error=EmbeddingServiceError(
            f"{_redact_url(self.url)}: HTTP {status}{retried}: {body}", status=status, body=body,
        ))

    def _parse(self, response: httpx.Response, n: int) -> np.ndarray:
        try:
            payload = response.json()
            data = payload["data"]
            if not isinstance(data, list):
                raise TypeError("'data' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingServiceError(
                f"{_redact_url(self.url)}: malformed answer ({exc}): {self._scrub(response.text)}",
                status=response.status_code, body=self._scrub(response.text),
            ) from None
        if len(data) != n:
            raise self._error(f"asked for {n} embeddings, the server returned {len(data)}")
        try:
            items = sorted(data, key=lambda d: d["index"]) if all("index" in d for d in data) else data
        except TypeError:
            raise self._error("the answer's 'index' fields are not comparable") from None
        if "index" in data[0] and [d["index"] for d in items] != list(range(n)):
            raise self._error(f"the answer's indices are {[d['index'] for d in items][:10]}..., expected 0..{n - 1}")
        rows: list[np.ndarray] = []
        for i, item in enumerate(items):
            emb = item.get("embedding") if isinstance(item, dict) else None
            if isinstance(emb, str):
                try:
                    rows.append(decode_base64(emb, where=f"embedding {i}"))
                except InvalidInputError as exc:
                    raise self._error(str(exc)) from None
            elif isinstance(emb, list):
                try:
                    rows.append(np.asarray(emb, dtype=np.float32))
                except (TypeError, ValueError):
                    raise self._error(f"embedding {i} is not a list of numbers") from None
            else:
                raise self._error(f"embedding {i} is missing or of type {type(emb).__name__}")
        widths = {r.shape for r in rows}
        if len(widths) != 1 or rows[0].ndim != 1:
            shapes = [r.shape[0] if r.ndim == 1 else r.shape for r in rows]
            raise self._error(f"the answer mixes vector widths: {sorted(set(map(str, shapes)))}")
        return np.stack(rows)

    # ------------------------------------------------------------------ sync I/O
    def _sync_client(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                limits = httpx.Limits(
                    max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
                )
                self._client = httpx.Client(timeout=self.timeout, limits=limits, headers=self._headers)
            return self._client

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        client = self._sync_client()
        attempt = 0
        while True:
            try:
                body = self._body(texts)
                response = client.post(self.url, json=body)
                action = self._decide_response(response, texts, attempt, body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                action = self._decide_exception(exc, attempt)
            if action.kind == "done":
                assert action.vectors is not None
                return action.vectors
            if action.kind == "split":
                parts = [self._embed_batch(texts[i : i + action.size]) for i in range(0, len(texts), action.size)]
                return self._join(parts)
            if action.kind == "raise":
                assert action.error is not None
                raise action.error
            if action.kind == "retry":
                attempt += 1
                time.sleep(action.delay)

    # ------------------------------------------------------------------ async I/O
    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(id(loop))
        if entry is None or entry[0] is not loop or loop.is_closed():
            limits = httpx.Limits(
                max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
            )
            client = httpx.AsyncClient(timeout=self.timeout, limits=limits, headers=self._headers)
            # Clients bound to loops that have closed are dropped (they cannot be awaited any more).
            self._aclients = {k: v for k, v in self._aclients.items() if not v[0].is_closed()}
            self._aclients[id(loop)] = (loop, client)
            return client
        return entry[1]

    async def _aembed_batch(self, texts: list[str]) -> np.ndarray:
        client = self._async_client()
        attempt = 0
        while True:
            try:
                body = self._body(texts)
                response = await client.post(self.url, json=body)
                action = self._decide_response(response, texts, attempt, body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                action = self._decide_exception(exc, attempt)
            if action.kind == "done":
                assert action.vectors is not None
                return action.vectors
            if action.kind == "split":
                parts = [
                    await self._aembed_batch(texts[i : i + action.size]) for i in range(0, len(texts), action.size)
                ]
                return self._join(parts)
            if action.kind == "raise":
                assert action.error is not None
                raise action.error
            if action.kind == "retry":
                attempt += 1
                await asyncio.sleep(action.delay)

    @staticmethod
    def _join(parts: list[np.ndarray]) -> np.ndarray:
        # A part answered before a dimensions fallback is narrower than one answered after it;
        # both are prefixes of the same native vectors, so cut all to the narrowest.
        width = min(p.shape[1] for p in parts)
        return np.concatenate([p[:, :width] for p in parts])

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        super().close()
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        entry = self._aclients.pop(id(loop), None)
        if entry is not None:
            await entry[1].aclose()
        self.close()


def embedder_from_env(environ: dict[str, str] | None = None) -> Embedder:
    """Build an embedder from ``QWEN_EMBED_*`` variables.

    ``QWEN_EMBED_BASE_URL`` (required for the remote engine), ``QWEN_EMBED_MODEL``,
    ``QWEN_EMBED_DIMENSIONS``, ``QWEN_EMBED_API_KEY``. With ``QWEN_EMBED_ENGINE=local`` (or no base
    URL but ``QWEN_EMBED_ENGINE`` set to local) a LocalEmbedder is built from ``QWEN_EMBED_MODEL``.
    """
    env = os.environ if environ is None else environ
    dims_raw = env.get("QWEN_EMBED_DIMENSIONS", "").strip()
    dims: int | None = None
    if dims_raw:
        try:
            dims = int(dims_raw)
        except ValueError:
            raise ConfigurationError(f"QWEN_EMBED_DIMENSIONS must be an integer, got {dims_raw!r}") from None
    engine = env.get("QWEN_EMBED_ENGINE", "").strip().lower()
    base_url = env.get("QWEN_EMBED_BASE_URL", "").strip()
    model = env.get("QWEN_EMBED_MODEL", "").strip()
    if engine == "local":
        from .local import LocalEmbedder

        return LocalEmbedder(model or "Qwen/Qwen3-Embedding-0.6B", dimensions=dims)  # type: ignore[no-any-return]
    if not base_url:
        raise ConfigurationError(
            "missing QWEN_EMBED_BASE_URL: pass base_url to RemoteEmbedder or set QWEN_EMBED_BASE_URL "
            "(e.g. http://localhost:30000/v1); set QWEN_EMBED_ENGINE=local for the in-process engine"
        )
    key = env.get("QWEN_EMBED_API_KEY") or None
    return RemoteEmbedder(
        base_url,
        model or "Qwen3-Embedding-0.6B",
        api_key=key,
        api_key_env="QWEN_EMBED_API_KEY" if key else None,
        dimensions=dims,
    )
