"""The request gatherer: requests that arrive together are embedded in one model call, and a large
request is served in pieces so that small requests arriving meanwhile wait for one piece, not all of it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: A model idle this long after its last call counts as idle (``on_idle`` is told once).
IDLE_AFTER_S = 1.0


#: A call runs its texts in arrival order unless that pads this much more than sorting them by length: in
#: order, every request waits its turn (all-MiniLM-L6-v2, 16 clients x 1 chunk: p99 694 ms in order against
#: 1,260 sorted, beside 857 for Infinity's server), but short texts of 10-40 words in arrival order pad about
#: 1.4 times as much as sorted.
IN_ORDER_PADDING = 1.1


@dataclass
class _Job:
    texts: list[str]
    counts: list[int]  # tokens per text
    future: asyncio.Future[np.ndarray]
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def tokens(self) -> int:
        return sum(self.counts)


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

    ``plan(token_counts, keep_order=False)`` (when given) says which forward passes the embedder makes of a
    call's texts (lists of indices, as ``LocalEmbedder.plan_passes``). A gathered call is then run one pass at
    a time, in arrival order or by length (``IN_ORDER_PADDING``), and each request is answered as soon as its last text is done:
    the clients answered by the first passes send their next requests while the later passes run, so they
    are waiting when the call ends and the model does not idle through their round trip (all-MiniLM-L6-v2,
    64 clients x 1 text: issue 30, benchmarks/serve_peers.py). A call run in arrival order is a line:
    requests arriving while it runs join its end between passes (``_join``), so no request waits for a call to
    end before its turn. Without ``plan`` a call is one pass. ``on_idle()`` is called once the model has had
    nothing to do for ``IDLE_AFTER_S`` (the server hands freed memory back to the system then).
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], *, window_s: float, max_tokens: int,
                 gap_s: float | None = None,
                 plan: Callable[..., list[list[int]]] | None = None,
                 on_batch: Callable[[int], None] | None = None,
                 on_queue: Callable[[float], None] | None = None,
                 on_idle: Callable[[], object] | None = None) -> None:
        self._embed = embed
        self._window = max(0.0, window_s)
        self._gap = None if gap_s is None else max(0.0, gap_s)
        self._max_tokens = max(1, max_tokens)
        self._plan = plan
        self._on_idle = on_idle
        self._on_batch = on_batch
        self._on_queue = on_queue
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._carry: list[_Job] = []  # taken from the queue and put back: they go first, in this order
        self._waiting = 0  # requests submitted and not yet answered (``_share``)
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
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        if isinstance(tokens, int):
            each = -(-tokens // max(1, len(texts)))
            return await self._submit_one(texts, [each] * len(texts))
        counts = list(tokens)
        parts = [await self._submit_one(texts[a:b], counts[a:b]) for a, b in split_by_tokens(counts, self._max_tokens)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    async def _submit_one(self, texts: list[str], counts: list[int]) -> np.ndarray:
        assert self._queue is not None
        fut: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(texts, counts, fut))
        self._waiting += 1
        try:
            return await fut
        finally:
            self._waiting -= 1

    def _take_now(self) -> _Job | None:
        """The next waiting request without waiting: a carried one first, then the queue's; None if there is none."""
        assert self._queue is not None
        if self._carry:
            return self._carry.pop(0)
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def _next(self, timeout: float | None) -> _Job | None:
        assert self._queue is not None
        job = self._take_now()
        if job is not None:
            return job
        if timeout is not None and timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _gather(self) -> list[_Job]:
        """The next batch: the first waiting job and whatever follows within the window and token budget."""
        loop = asyncio.get_running_loop()
        first = await self._next(None if self._on_idle is None else IDLE_AFTER_S)
        if first is None:  # idle: say so once, then wait as long as it takes
            assert self._on_idle is not None
            self._on_idle()
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
                self._carry.insert(0, job)
                break
            jobs.append(job)
            tokens += job.tokens
        if self._carry or tokens >= self._max_tokens:  # the budget stopped it, not the window
            self._share(jobs)
        return [j for j in jobs if not j.future.done()]  # drop requests whose client went away

    def _share(self, jobs: list[_Job]) -> None:
        """Cut a call that the token budget stopped at ``len(jobs)`` requests down to its even share of the
        requests waiting: they need ``ceil(waiting / len(jobs))`` calls, and each call takes as many of them as
        the others (64 waiting, 9 fit: eight calls of 8, not seven of 9 and one of 1). The rest go back to the
        head of the queue. Under a closed loop of clients (each sends its next request once answered, and the
        ones just answered count as waiting: they are about to come back) every request then waits the same
        number of calls. With uneven calls some wait one call more than the rest, and those set p99
        (all-MiniLM-L6-v2, 64 clients x 32 short texts, calls of 9: one request in nine waited eight calls of
        about 1.1 s instead of seven; issue 30, benchmarks/serve_peers.py)."""
        if self._waiting <= len(jobs):
            return
        calls = -(-self._waiting // len(jobs))
        keep = -(-self._waiting // calls)
        self._carry[:0] = jobs[keep:]
        del jobs[keep:]

    async def _run(self) -> None:
        while True:
            jobs = await self._gather()
            if not jobs:
                continue
            self._started(jobs)
            try:
                if self._plan is not None and self._keeps_order([c for j in jobs for c in j.counts]):
                    await self._embed_in_line(jobs)
                else:
                    await self._embed_passes(jobs, [t for j in jobs for t in j.texts], self._passes(jobs))
            except Exception as exc:  # handed to every request still waiting
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)

    def _started(self, jobs: list[_Job]) -> None:
        """Count a gathering of ``jobs`` as one model call and tell the metrics."""
        self.batches += 1
        now = time.perf_counter()
        if self._on_queue is not None:
            for j in jobs:
                self._on_queue(now - j.enqueued)
        if self._on_batch is not None:
            self._on_batch(sum(len(j.texts) for j in jobs))

    def _keeps_order(self, counts: list[int]) -> bool:
        """Whether passes cut in arrival order pad at most ``IN_ORDER_PADDING`` times what length-sorted passes
        pad (texts of like length: chunks)."""
        assert self._plan is not None

        def padded(passes: list[list[int]]) -> int:
            return sum(len(p) * max(counts[i] for i in p) for p in passes)

        return padded(self._plan(counts, keep_order=True)) <= IN_ORDER_PADDING * padded(self._plan(counts))

    def _passes(self, jobs: list[_Job]) -> list[list[int]]:
        """The forward passes of a call that does not keep arrival order (``_keeps_order``): length-sorted, the
        pass holding the oldest request first (one pass without ``plan``)."""
        counts = [c for j in jobs for c in j.counts]
        if self._plan is None:
            return [list(range(len(counts)))]
        owner = [k for k, j in enumerate(jobs) for _ in j.texts]
        return sorted(self._plan(counts), key=lambda p: min(owner[i] for i in p))

    async def _embed_in_line(self, jobs: list[_Job]) -> None:
        """Embed the call's texts first come, first served, one pass at a time from the head of the line,
        answering each request once its last text is done. Between passes, requests that arrived meanwhile
        join the end of the line (``_join``): a client answered by one pass sends its next request while the
        next pass runs, and that request waits for the texts ahead of it, not for the whole call to end and
        a new one to gather (all-MiniLM-L6-v2, 16 clients x 1 chunk: issue 30, benchmarks/serve_peers.py)."""
        assert self._plan is not None
        line = [(j, i) for j in jobs for i in range(len(j.texts))]
        rows: dict[int, np.ndarray] = {}  # id(job) -> its vectors so far
        left = {id(j): len(j.texts) for j in jobs}
        while line:
            take = len(self._plan([j.counts[i] for j, i in line], keep_order=True)[0])
            now, line = line[:take], line[take:]
            vectors = await asyncio.to_thread(self._embed, [j.texts[i] for j, i in now])
            for row, (j, i) in zip(vectors, now, strict=True):
                out = rows.get(id(j))
                if out is None:
                    out = rows[id(j)] = np.empty((len(j.texts), vectors.shape[1]), dtype=np.float32)
                out[i] = row
                left[id(j)] -= 1
                if left[id(j)] == 0:  # done: forget it (a later request may get its id)
                    del left[id(j)]
                    done = rows.pop(id(j))
                    if not j.future.done():
                        j.future.set_result(done)
            joined = self._join(line)
            for j in joined:
                left[id(j)] = len(j.texts)
            # the requests still waiting, so that a failure reaches them: a line under steady load never ends
            jobs[:] = [j for j in jobs if not j.future.done()] + joined

    def _join(self, line: list[tuple[_Job, int]]) -> list[_Job]:
        """Move the waiting requests (those carried from earlier first, then the queue's) to the end of
        ``line``, in arrival order, while the line stays within ``max_tokens`` and in arrival order
        (``_keeps_order``). The first that does not fit is carried and tried again after the next pass, when
        the line is shorter; if the line runs out first, it starts the next call. Returns the requests that
        joined (told to the metrics as one gathering)."""
        assert self._queue is not None
        joined: list[_Job] = []
        counts = [j.counts[i] for j, i in line]
        while (job := self._take_now()) is not None:
            if job.future.done():  # its client went away
                continue
            if sum(counts) + job.tokens > self._max_tokens or not self._keeps_order(counts + job.counts):
                self._carry.insert(0, job)
                break
            joined.append(job)
            counts += job.counts
            line.extend((job, i) for i in range(len(job.texts)))
        if joined:
            self._started(joined)
        return joined

    async def _embed_passes(self, jobs: list[_Job], texts: list[str], passes: list[list[int]]) -> None:
        """Embed ``texts`` pass by pass, answering each request once its last text is done."""
        owner = [k for k, j in enumerate(jobs) for _ in j.texts]
        starts = np.cumsum([0] + [len(j.texts) for j in jobs]).tolist()
        left = [len(j.texts) for j in jobs]
        out: np.ndarray | None = None
        for p in passes:
            vectors = await asyncio.to_thread(self._embed, [texts[i] for i in p])
            if p == list(range(len(texts))):  # one pass, in order
                out = vectors
            else:
                if out is None:
                    out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
                out[p] = vectors
            for i in p:
                k = owner[i]
                left[k] -= 1
                if left[k] == 0 and not jobs[k].future.done():
                    jobs[k].future.set_result(out[starts[k] : starts[k + 1]])


__all__ = [
    "IDLE_AFTER_S",
    "IN_ORDER_PADDING",
    "RequestGatherer",
    "split_by_tokens",
]
