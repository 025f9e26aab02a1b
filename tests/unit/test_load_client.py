"""The closed-loop load client of the serving benchmarks (tests/support/load_client.py)."""

from __future__ import annotations

import asyncio

from tests.support.load_client import LoadTally, closed_loop


def test_steady_latencies_leave_out_each_clients_first_request() -> None:
    """Each client's first request is the start-up wave: in ``ok_ms``, not in ``steady_ms``; a failed request is
    in neither, and pooling keeps both lists."""
    firsts: set[int] = set()

    async def request(client: object, i: int, n: int) -> tuple[int, str]:
        await asyncio.sleep(0.08 if n == 0 else 0.01)  # the wave is slow
        if n == 0:
            firsts.add(i)
        return (1, "200") if n != 2 else (0, "503")

    tally = asyncio.run(closed_loop("http://127.0.0.1:9", 3, 0.3, request))
    assert firsts == {0, 1, 2}
    assert tally.statuses["503"] == 3
    assert len(tally.ok_ms) == tally.texts == tally.statuses["200"]
    assert len(tally.steady_ms) == len(tally.ok_ms) - 3
    assert min(tally.ok_ms) < 60 < tally.p(99)  # the wave's 80 ms answers are the slowest
    assert tally.p_steady(99) < 60
    pooled = LoadTally()
    pooled.add(tally)
    pooled.add(tally)
    assert len(pooled.steady_ms) == 2 * len(tally.steady_ms)
