"""The request gatherer: requests that arrive together are embedded in one model call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class _Job:
    texts: list[str]
    tokens: int
    future: asyncio.Future[np.ndarray]


class RequestGatherer:
    """Collects concurrent requests for up to ``window_s`` (or ``max_tokens``) and embeds them in one call.

    ``embed`` is a blocking function (texts -> float32 matrix); it runs in a worker thread, so the
    event loop keeps accepting requests while the model works, and those requests form the next batch.
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], *, window_s: float, max_tokens: int) -> None:
        self._embed = embed
        self._window = max(0.0, window_s)
        self._max_tokens = max(1, max_tokens)
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

    async def submit(self, texts: list[str], tokens: int) -> np.ndarray:
        if self._queue is None:
            raise RuntimeError("the gatherer is not running")
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

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            assert first is not None
            jobs, tokens = [first], first.tokens
            deadline = loop.time() + self._window
            while tokens < self._max_tokens:
                job = await self._next(deadline - loop.time())
                if job is None:
                    break
                if tokens + job.tokens > self._max_tokens:
                    self._carry = job
                    break
                jobs.append(job)
                tokens += job.tokens
            jobs = [j for j in jobs if not j.future.done()]  # drop requests whose client went away
            if not jobs:
                continue
            texts = [t for j in jobs for t in j.texts]
            self.batches += 1
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
