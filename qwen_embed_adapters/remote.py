"""RemoteEmbedder: one client for every OpenAI-compatible ``/v1/embeddings`` server.

The request building and the retry decisions live in plain methods with no I/O; the sync path
(``httpx.Client`` on a thread pool) and the async path (``httpx.AsyncClient``) add only the loop
and the sleep, so both behave the same.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from ._http import API_KEY_ENVS, HTTPClientBase, check_base_url, redact_url
from ._http import RETRY_STATUSES as RETRY_STATUSES  # re-exported: it was defined here
from .embedder import Embedder
from .errors import ConfigurationError, InvalidInputError
from .vectors import decode_base64

logger = logging.getLogger(__name__)

_LIMIT_RE = re.compile(r"(?:maximum|max)[a-z_ ]{0,40}?(?:batch[a-z_ ]{0,20}?)?(?:of |is |= ?|: ?)?(\d+)")


def normalise_base_url(base_url: str) -> str:
    """``http://h:p`` and ``http://h:p/`` become ``http://h:p/v1``; a trailing ``/embeddings`` is dropped."""
    url = check_base_url(base_url)
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


class RemoteEmbedder(Embedder, HTTPClientBase):
    """Embeddings from an OpenAI-compatible endpoint (SGLang, vLLM, TEI, Ollama, Infinity, ``qwen-embed serve``).

    Example::

        emb = RemoteEmbedder("http://localhost:30000/v1", model="Qwen3-Embedding-0.6B", dimensions=512)
        vectors = emb.embed_documents(["今天天气真好", "阳光明媚,适合散步"])   # float32 (2, 512)

    The key comes from ``api_key``, else ``$QWEN_EMBED_API_KEY``, else ``$OPENAI_API_KEY``; it never
    appears in repr, logs, exceptions or ``to_config()`` (which keeps only the variable's name).
    """

    engine = "remote"
    _log = logger

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
        self._init_http(
            api_key=api_key, api_key_env=api_key_env, headers=headers, max_retries=max_retries, timeout=timeout,
            backoff_base=backoff_base, backoff_max=backoff_max, max_retry_after=max_retry_after,
        )
        if encoding_format not in ("base64", "float"):
            raise ConfigurationError(f"encoding_format must be 'base64' or 'float', got {encoding_format!r}")
        # What the server turned out to support; learnt once, kept for later calls.
        self.send_dimensions = send_dimensions and dimensions is not None
        self.encoding_format = encoding_format

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
            "base_url": redact_url(self.base_url),
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
        return f"RemoteEmbedder(base_url={redact_url(self.base_url)!r}, model={self.model!r}, dimension={dim}{key})"

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
                redact_url(self.base_url), self.dimensions, width,
            )
            self.send_dimensions = False

    def _error(self, message: str) -> Exception:
        return self._fail(message)

    def _decide_exception(self, exc: Exception, attempt: int) -> _Action:
        if isinstance(exc, (httpx.TimeoutException, httpx.TransportError)):
            delay, error = self._transport_failure(exc, attempt)
            return _Action("raise", error=error) if delay is None else _Action("retry", delay=delay)
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
                    redact_url(self.base_url), self.dimensions, status,
                )
                self.send_dimensions = False
            return _Action("resend")
        if status in (400, 422) and sent.get("encoding_format") == "base64" and (
            "encoding_format" in lowered or "base64" in lowered
        ):
            if self.encoding_format == "base64":
                logger.info("%s refused base64 encoding; asking for floats from now on", redact_url(self.base_url))
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
                        redact_url(self.base_url), len(texts), status, new_size,
                    )
                    self.batch_size = new_size
            return _Action("split", size=new_size)
        delay, error = self._status_failure(response, attempt, body)
        return _Action("raise", error=error) if delay is None else _Action("retry", delay=delay)

    def _parse(self, response: httpx.Response, n: int) -> np.ndarray:
        try:
            payload = response.json()
            data = payload["data"]
            if not isinstance(data, list):
                raise TypeError("'data' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise self._fail(
                f"malformed answer ({exc}): {self._scrub(response.text)}",
                status=response.status_code, body=self._scrub(response.text),
            ) from None
        if len(data) != n:
            raise self._error(f"asked for {n} embeddings, the server returned {len(data)}")
        indexed = [isinstance(d, dict) and "index" in d for d in data]
        if any(indexed) and not all(indexed):
            raise self._error(f"the answer gives an 'index' for {sum(indexed)} of {n} embeddings only")
        try:
            items = sorted(data, key=lambda d: d["index"]) if all(indexed) else data
        except TypeError:
            raise self._error("the answer's 'index' fields are not comparable") from None
        if all(indexed) and [d["index"] for d in items] != list(range(n)):
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
        self._close_sync_client()

    async def aclose(self) -> None:
        await self._aclose_async_client()
        self.close()

