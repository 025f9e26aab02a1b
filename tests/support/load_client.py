"""Closed-loop HTTP load for the serving benchmarks (benchmarks/serve_load.py, serve_peers.py).

``clients`` coroutines share one keep-alive ``httpx.AsyncClient`` (one connection each, as long-lived
callers have) and each sends its next request as soon as its previous answer is in, until ``seconds``
have passed. Every answer is tallied by status; connection errors are tallied by exception name.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import numpy as np


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (NaN when there are none)."""
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class LoadTally:
    """What one closed-loop run saw: statuses, latencies of the good answers (ms), and how much work they held.

    ``steady_ms`` leaves out each client's first request: the start-up wave, every client sending at the same
    instant, whose last request waits for all the others' texts (benchmarks/serve_peers.py, issue 30).
    """

    statuses: Counter[str] = field(default_factory=Counter)
    ok_ms: list[float] = field(default_factory=list)
    steady_ms: list[float] = field(default_factory=list)
    texts: int = 0
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        """Answers that were not 200, and requests that got no answer."""
        return sum(n for s, n in self.statuses.items() if s != "200")

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.ok_ms, q)

    def p_steady(self, q: float) -> float:
        """The ``q``-th percentile of the answers after each client's first (``steady_ms``)."""
        return percentile(self.steady_ms, q)

    def add(self, other: LoadTally) -> None:
        """Pool ``other`` (another run of the same load) into this tally: its answers, texts and seconds."""
        self.statuses.update(other.statuses)
        self.ok_ms.extend(other.ok_ms)
        self.steady_ms.extend(other.steady_ms)
        self.texts += other.texts
        self.seconds += other.seconds


#: One request: (client, client number, request number) -> (texts it carried if it succeeded, else 0, status).
Request = Callable[[httpx.AsyncClient, int, int], Awaitable[tuple[int, str]]]


async def closed_loop(base_url: str, clients: int, seconds: float, request: Request, *,
                      timeout: float = 120.0) -> LoadTally:
    """Run ``clients`` closed loops of ``request`` against ``base_url`` for ``seconds``; see the module docstring.

    The clock stops when the last request started before the deadline is answered, so every request sent
    is counted (no request is cut off mid-flight and counted as lost).
    """
    tally = LoadTally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    start = time.perf_counter()
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:

        async def loop(i: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                try:
                    texts, status = await request(client, i, n)
                except httpx.HTTPError as exc:
                    tally.statuses[f"error:{type(exc).__name__}"] += 1
                else:
                    tally.statuses[status] += 1
                    if status == "200":
                        ms = (time.perf_counter() - t0) * 1000
                        tally.ok_ms.append(ms)
                        if n:
                            tally.steady_ms.append(ms)
                        tally.texts += texts
                n += 1

        await asyncio.gather(*[loop(i) for i in range(clients)])
    tally.seconds = time.perf_counter() - start
    return tally


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


__all__ = [
    "LoadTally",
    "Request",
    "closed_loop",
    "load_average",
    "percentile",
]
