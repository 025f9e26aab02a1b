"""The request gatherer: requests that arrive together are embedded in one model call, and a large
request is served in pieces so that small requests arriving meanwhile wait for one piece, not all of it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Job:
    texts: list[str]
    tokens: int
    future: asyncio.Future[np.ndarray]
    enqueued: float = field(default_factory=time.perf_counter)


def split_by_tokens(counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of consecutive texts holding at most ``budget`` tokens each (a text over
    the budget is a range of its own)."""
    ranges: list[tuple[int, int]] = []
    start, total = 0, 0
    for i, n in enumerate(counts):
        if i > start and total + n > budget:
            ranges.append((start, i))
            start, total = i, 0
        total += n
    if counts:
        ranges.append((start, len(counts)))
    return ranges


class RequestGatherer:
    """Collects concurrent requests for up to ``window_s`` (or ``max_tokens``) and embeds them in one call.

    ``gap_s`` (when set) closes the batch early once no request has arrived for that long: a burst of
    requests is taken whole (the clients answered by the previous batch send their next requests one
    event-loop turn apart, so a short fixed window cut them into a batch and a straggler batch), while a
    lone request waits ``gap_s`` rather than the whole window.

    ``embed`` is a blocking function (texts -> float32 matrix); it runs in a worker thread, so the
    event loop keeps accepting requests while the model works, and those requests form the next batch.
    A request of more than ``max_tokens`` tokens is queued one piece at a time, each piece after the
    previous one is done: requests arriving meanwhile join the queue ahead of its next piece.
    ``on_batch(texts)`` and ``on_queue(seconds)`` are told of each model call and each wait (metrics).
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], *, window_s: float, max_tokens: int,
                 gap_s: float | None = None,
                 on_batch: Callable[[int], None] | None = None,
                 on_queue: Callable[[float], None] | None = None) -> None:
        self._embed = embed
        self._window = max(0.0, window_s)
        self._gap = None if gap_s is None else max(0.0, gap_s)
        self._max_tokens = max(1, max_tokens)
        self._on_batch = on_batch
        self._on_queue = on_queue
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._carry: _Job | None = None
        self.batches = 0  # how many model calls were made (for tests and benchmarks)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="qwen-embed-gatherer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, texts: list[str], tokens: int | Sequence[int]) -> np.ndarray:
        """The vectors of ``texts``; ``tokens`` is their total or, to allow serving in pieces, one count per text."""
        if self._queue is None:
            raise RuntimeError("the gatherer is not running")
        if isinstance(tokens, int):
            return await self._submit_one(texts, tokens)
        parts = [await self._submit_one(texts[a:b], sum(tokens[a:b]))
                 for a, b in split_by_tokens(tokens, self._max_tokens)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    async def _submit_one(self, texts: list[str], tokens: int) -> np.ndarray:
        assert self._queue is not None
        fut: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(texts, tokens, fut))
        return await fut

    async def _next(self, timeout: float | None) -> _Job | None:
        assert self._queue is not None
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        if timeout is not None and timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _gather(self) -> list[_Job]:
        """The next batch: the first waiting job and whatever follows within the window and token budget."""
        loop = asyncio.get_running_loop()
        first = await self._next(None)
        assert first is not None
        jobs, tokens = [first], first.tokens
        deadline = loop.time() + self._window
        while tokens < self._max_tokens:
            wait = deadline - loop.time()
            if self._gap is not None:
                wait = min(wait, self._gap)
            job = await self._next(wait)
            if job is None:
                break
            if tokens + job.tokens > self._max_tokens:
                self._carry = job
                break
            jobs.append(job)
            tokens += job.tokens
        return [j for j in jobs if not j.future.done()]  # drop requests whose client went away

    async def _run(self) -> None:
        while True:
            jobs = await self._gather()
            if not jobs:
                continue
            texts = [t for j in jobs for t in j.texts]
            self.batches += 1
            now = time.perf_counter()
            if self._on_queue is not None:
                for j in jobs:
                    self._on_queue(now - j.enqueued)
            if self._on_batch is not None:
                self._on_batch(len(texts))
            try:
                vectors = await asyncio.to_thread(self._embed, texts)
            except Exception as exc:  # handed to every waiting request
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
                continue
            start = 0
            for j in jobs:
                part = vectors[start : start + len(j.texts)]
                start += len(j.texts)
                if not j.future.done():
                    j.future.set_result(part)


__all__ = [
    "RequestGatherer",
    "split_by_tokens",
]
