"""The one fan-out helper (embedder.run_batches / arun_batches) used by every embedder and RemoteReranker:
results in job order, and on the first failure the jobs not yet started never run."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from qwen_embed_adapters.embedder import arun_batches, caller_index, run_batches
from qwen_embed_adapters.errors import InvalidInputError


def test_results_in_job_order_and_inline_without_a_pool() -> None:
    with ThreadPoolExecutor(3) as pool:
        jobs = [lambda i=i: (time.sleep(0.01 * (5 - i)), i)[1] for i in range(6)]
        assert run_batches(jobs, lambda: pool) == list(range(6))
    seen: list[str] = []
    assert run_batches([lambda: seen.append(threading.current_thread().name) or 1], None) == [1]
    assert seen == [threading.current_thread().name]


def test_first_failure_cancels_the_jobs_not_started() -> None:
    """Bad job: job 0 fails at once; with two workers, at most the job already running besides it
    (and none of the 8 queued ones) runs."""
    ran: list[int] = []

    def job(i: int) -> int:
        if i == 0:
            raise ValueError("job 0 failed")
        time.sleep(0.1)
        ran.append(i)
        return i

    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(ValueError, match="job 0 failed"):
            run_batches([lambda i=i: job(i) for i in range(10)], lambda: pool)
    assert len(ran) <= 2


def test_async_first_failure_cancels_the_rest() -> None:
    started: list[int] = []

    async def job(i: int) -> int:
        started.append(i)
        if i == 1:
            raise ValueError("job 1 failed")
        await asyncio.sleep(0.2)
        return i

    async def main() -> None:
        with pytest.raises(ValueError, match="job 1 failed"):
            await arun_batches([lambda i=i: job(i) for i in range(10)], 2)
        await asyncio.sleep(0.3)

    asyncio.run(main())
    # At most the slot freed by job 1 went to job 2 before everything stopped; jobs 3..9 never started.
    assert {0, 1} <= set(started) <= {0, 1, 2}


def test_caller_index_reaims_a_batch_relative_error() -> None:
    exc = InvalidInputError("input 2: 600 tokens, the server takes at most 512", index=2, tokens=600, limit=512)
    out = caller_index(exc, [10, 11, 12, 13])
    assert str(out).startswith("input 12: 600 tokens") and (out.index, out.tokens, out.limit) == (12, 600, 512)
    assert caller_index(exc, [0, 1, 2]) is exc
