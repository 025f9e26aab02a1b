"""The Embedder base class.

A backend implements one raw batch call, ``_embed_batch`` (and, where its I/O is natively async,
``_aembed_batch``). The base class owns everything else: input validation, Qwen3 query wrapping,
batching, concurrency, ordering, response checks, MRL truncation, normalisation, float32 output and
the async twins.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, ClassVar, TypeVar

import numpy as np

from . import models
from .errors import EmbeddingServiceError, InvalidInputError
from .settings import Configurable, Settings, check_int, check_str
from .vectors import as_text_list, l2_normalize

logger = logging.getLogger(__name__)

Batch = list[int]  # indices into the caller's list of texts
T = TypeVar("T")


def run_batches(jobs: Sequence[Callable[[], T]], pool: Callable[[], ThreadPoolExecutor] | None) -> list[T]:
    """Run ``jobs`` (one per batch) on the pool ``pool()`` gives (inline when None or one job);
    results in job order. On the first failure the jobs not yet started are cancelled, the running
    ones are waited for, and that failure is raised."""
    if pool is None or len(jobs) <= 1:
        return [job() for job in jobs]
    futures = [pool().submit(job) for job in jobs]
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for f in futures:
        if f in done and f.exception() is not None:
            for p in pending:
                p.cancel()
            wait(pending)
            raise f.exception()  # type: ignore[misc]
    return [f.result() for f in futures]


async def arun_batches(jobs: Sequence[Callable[[], Awaitable[T]]], max_concurrency: int) -> list[T]:
    """Async twin of ``run_batches``: at most ``max_concurrency`` jobs at once; on the first failure
    every other job is cancelled (and awaited) before the failure is raised."""
    sem = asyncio.Semaphore(max_concurrency)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await job()

    tasks = [asyncio.ensure_future(run(job)) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def caller_index(exc: InvalidInputError, batch: Sequence[int], what: str = "input") -> InvalidInputError:
    """``exc`` (naming an item by its place in ``batch``) re-aimed at the caller's index of that item."""
    k = exc.index
    if k is None or not 0 <= k < len(batch) or batch[k] == k:
        return exc
    message = str(exc)
    prefix = f"{what} {k}:"
    if message.startswith(prefix):
        message = f"{what} {batch[k]}:" + message[len(prefix):]
    return InvalidInputError(message, index=batch[k], item_id=exc.item_id, tokens=exc.tokens, limit=exc.limit)


@dataclasses.dataclass(frozen=True)
class EmbedderSettings(Settings):
    """The settings every embedder has. An engine's settings class derives from it and adds its own.

    ``query_instruction`` None means the model's default instruction (models.py), "" no wrapping.
    """

    model: str
    dimensions: int | None = None
    query_instruction: str | None = None
    batch_size: int = 64

    def validate(self) -> None:
        check_common(self.model, self.dimensions, self.query_instruction, self.batch_size)


def check_common(model: Any, dimensions: Any, query_instruction: Any, batch_size: Any,
                 max_concurrency: Any = 1) -> None:
    """The checks of the settings every embedder has (ConfigurationError naming the setting)."""
    check_str("model", model)
    check_int("dimensions", dimensions, minimum=1, optional=True)
    check_str("query_instruction", query_instruction, optional=True, empty=True)
    check_int("batch_size", batch_size, minimum=1)
    check_int("max_concurrency", max_concurrency, minimum=1)


class Embedder(ABC):
    """Texts in, float32 (n, dimension) L2-normalised rows out; row i always belongs to input i.

    An engine derives from :class:`SettingsEmbedder` to have its ``to_config`` / ``from_config``,
    ``repr`` and pickling derived from one frozen settings dataclass.

    Example::

        with RemoteEmbedder("http://localhost:30000/v1", dimensions=512) as emb:
            docs = emb.embed_documents(["Beijing is the capital of China", "机器学习"])
            q = emb.embed_query("capital of China")
            scores = docs @ q
    """

    engine: ClassVar[str] = "abstract"

    def __init__(
        self,
        model: str,
        *,
        dimensions: int | None = None,
        query_instruction: str | None = None,
        batch_size: int = 64,
        max_concurrency: int = 4,
        native_dim: int | None = None,
    ) -> None:
        check_common(model, dimensions, query_instruction, batch_size, max_concurrency)
        models.check_dimensions(model, dimensions, native_dim)
        self.model = model
        self.dimensions = dimensions
        self.query_instruction = (
            models.default_instruction(model) if query_instruction is None else query_instruction
        )
        self._explicit_instruction = query_instruction
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        info = models.lookup(model)
        self._native_dim: int | None = native_dim if native_dim is not None else (
            info.native_dim if info else None
        )
        # The output width. Fixed at construction when known, else learnt from the first answer.
        self._dimension: int | None = dimensions if dimensions is not None else self._native_dim
        self._dim_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed one batch; return raw vectors (n, width), any float dtype, not necessarily normalised."""

    async def _aembed_batch(self, texts: list[str]) -> np.ndarray:
        """Async twin of ``_embed_batch``; by default runs it in a worker thread."""
        return await asyncio.to_thread(self._embed_batch, texts)

    def _plan_batches(self, texts: list[str]) -> list[Batch]:
        """Cut the inputs into batches of indices. Backends may sort by length or budget tokens."""
        n, size = len(texts), max(1, self.batch_size)
        return [list(range(i, min(i + size, n))) for i in range(0, n, size)]

    def _error(self, message: str) -> Exception:
        """The exception for a malformed backend answer (wrong count, width, NaN)."""
        return EmbeddingServiceError(message)

    def _on_wider_answer(self, width: int) -> None:
        """Called when the backend returned wider vectors than asked; truncation happens client-side."""
        return None

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """Plain-JSON settings that ``embedder_from_config`` turns back into the same embedder."""

    # ------------------------------------------------------------------ public API
    @property
    def dimension(self) -> int:
        """The width of every vector this embedder returns (after MRL truncation)."""
        if self._dimension is None:
            # An unknown model behind an endpoint: one probe request fixes the dimension.
            self.embed_documents(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    @property
    def dimension_if_known(self) -> int | None:
        """The dimension without a probe request: None until learnt."""
        return self._dimension

    @property
    def native_dimension(self) -> int | None:
        """The model's full output width (before MRL truncation), or None while it is unknown."""
        return self._native_dim

    @property
    def max_input_tokens(self) -> int | None:
        """The longest input, in tokens, this engine embeds; None when the engine does not say."""
        return None

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        """Tokens per text as the model would see them (before truncation); None when the engine
        cannot count locally (a remote endpoint)."""
        return None

    def embed_texts(self, texts: Iterable[str]) -> np.ndarray:
        """Embed texts exactly as given: no instruction, no prompt (what ``qwen-embed serve`` does)."""
        return self._encode(as_text_list(texts))

    def format_queries(self, texts: Iterable[str], instruction: str | None = None) -> list[str]:
        """Wrap queries in Qwen3's ``Instruct: {task}\\nQuery:{query}`` (no wrapping for "")."""
        items = as_text_list(texts, what="queries")
        task = self.query_instruction if instruction is None else instruction
        return [models.format_query(t, task) for t in items]

    def embed_documents(self, texts: Iterable[str]) -> np.ndarray:
        """Embed documents (no instruction). Returns float32 (n, dimension), rows of unit norm."""
        return self._encode(as_text_list(texts))

    def embed_queries(self, texts: Iterable[str], instruction: str | None = None) -> np.ndarray:
        """Embed queries with the query instruction (``instruction=""`` for none)."""
        return self._encode(self.format_queries(texts, instruction))

    def embed_query(self, text: str, instruction: str | None = None) -> np.ndarray:
        """Embed one query; returns a 1-D float32 vector."""
        return self.embed_queries([text], instruction)[0]

    async def aembed_documents(self, texts: Iterable[str]) -> np.ndarray:
        """Async twin of ``embed_documents``."""
        return await self._aencode(as_text_list(texts))

    async def aembed_queries(self, texts: Iterable[str], instruction: str | None = None) -> np.ndarray:
        """Async twin of ``embed_queries``."""
        return await self._aencode(self.format_queries(texts, instruction))

    async def aembed_query(self, text: str, instruction: str | None = None) -> np.ndarray:
        """Async twin of ``embed_query``."""
        return (await self.aembed_queries([text], instruction))[0]

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release threads and connections. The embedder can still be used; it reopens lazily."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    async def aclose(self) -> None:
        """Async twin of ``close``."""
        self.close()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Embedder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _repr_fields(self) -> dict[str, Any]:
        """The model, the settings that differ from their defaults, and the dimension (learnt or not)."""
        settings = getattr(self, "settings", None)
        shown = {k: v for k, v in settings.shown().items() if k != "model"} if settings is not None else {}
        dim = self._dimension if self._dimension is not None else "unknown"
        return {"model": self.model, **shown, "dimension": dim}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._repr_fields().items())
        return f"{type(self).__name__}({inner})"

    # ------------------------------------------------------------------ machinery
    def _empty(self) -> np.ndarray:
        return np.empty((0, self._dimension or 0), dtype=np.float32)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_concurrency, thread_name_prefix=f"{type(self).__name__}"
                )
            return self._pool

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return self._empty()
        batches = self._plan_batches(texts)

        def job(b: Batch) -> Callable[[], np.ndarray]:
            def run() -> np.ndarray:
                try:
                    raw = self._embed_batch([texts[i] for i in b])
                except InvalidInputError as exc:
                    raise caller_index(exc, b) from None
                return self._finish(raw, b)
            return run

        pool = None if self.max_concurrency == 1 else self._executor
        parts = run_batches([job(b) for b in batches], pool)
        return self._assemble(len(texts), batches, parts)

    async def _aencode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return self._empty()
        batches = self._plan_batches(texts)

        def job(b: Batch) -> Callable[[], Awaitable[np.ndarray]]:
            async def run() -> np.ndarray:
                try:
                    raw = await self._aembed_batch([texts[i] for i in b])
                except InvalidInputError as exc:
                    raise caller_index(exc, b) from None
                return self._finish(raw, b)
            return run

        parts = await arun_batches([job(b) for b in batches], self.max_concurrency)
        return self._assemble(len(texts), batches, parts)

    def _assemble(self, n: int, batches: Sequence[Batch], parts: Sequence[np.ndarray]) -> np.ndarray:
        if len(batches) == 1 and batches[0] == list(range(n)):
            return parts[0]
        out = np.empty((n, parts[0].shape[1]), dtype=np.float32)
        for b, p in zip(batches, parts, strict=True):
            out[b] = p
        return out

    def _finish(self, raw: Any, batch: Batch) -> np.ndarray:
        """Check one raw answer and turn it into float32 unit rows of the embedder's dimension."""
        first, last = batch[0], batch[-1]
        span = f"inputs {first}..{last}" if len(batch) > 1 else f"input {first}"
        try:
            arr = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise self._error(f"{span}: answer is not a numeric matrix ({exc})") from None
        if arr.ndim != 2 or arr.shape[0] != len(batch):
            got = arr.shape[0] if arr.ndim >= 1 else 0
            raise self._error(f"{span}: asked for {len(batch)} vectors, got {got}")
        bad_rows = ~np.isfinite(arr).all(axis=1)
        if bad_rows.any():
            bad = batch[int(np.argmax(bad_rows))]
            raise self._error(f"input {bad}: the answer holds NaN or infinite values")
        width = arr.shape[1]
        target = self._learn_dimension(width)
        if width != target:
            native = self._native_dim
            if width < target or (native is not None and width != native):
                raise self._error(
                    f"{span}: answer has {width}-d vectors, expected {target}"
                    + (f" (or the native {native})" if native and native != target else "")
                )
            if self._native_dim is None:
                self._native_dim = width
            self._on_wider_answer(width)
            arr = arr[:, :target]
        norms = np.linalg.norm(arr, axis=1)
        if (norms == 0).any():
            raise self._error(f"input {batch[int(np.argmax(norms == 0))]}: the answer is a zero vector")
        return l2_normalize(arr)

    def _learn_dimension(self, width: int) -> int:
        if self._dimension is not None:
            return self._dimension
        with self._dim_lock:
            if self._dimension is None:
                logger.info("%s: learnt dimension %d from the first answer", self.model, width)
                self._dimension = width
                if self._native_dim is None:
                    self._native_dim = width
            return self._dimension

    def _config_common(self) -> dict[str, Any]:
        """The common settings as config keys, for an engine that writes its ``to_config`` by hand."""
        return {
            "model": self.model,
            "dimensions": self.dimensions,
            "query_instruction": self._explicit_instruction,
        }


class SettingsEmbedder(Configurable, Embedder):
    """An Embedder whose settings are one frozen dataclass (``settings_class``, derived from
    :class:`EmbedderSettings`) kept at ``self.settings``.

    ``to_config`` / ``from_config``, ``repr`` and pickling derive from it
    (:class:`~qwen_embed_adapters.settings.Configurable`): a subclass sets ``settings_class``,
    ``config_kind = ("engine", name)`` and ``self.settings`` in its constructor, before ``super().__init__``.
    Pickling sends the class and the settings: the copy is built afresh from them (new threads and
    connections; for LocalEmbedder a model loaded again in the receiving process).
    """

    _repr_fields = Embedder._repr_fields
    __repr__ = Embedder.__repr__


__all__ = [
    "Batch",
    "Embedder",
    "EmbedderSettings",
    "SettingsEmbedder",
    "arun_batches",
    "caller_index",
    "check_common",
    "run_batches",
]
