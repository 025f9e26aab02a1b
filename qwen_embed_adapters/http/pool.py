"""The servers of one client: what was learnt about each, which takes the next request, and benching.

Each server is one :class:`Endpoint` (its route discovery, batch cap and load). With several,
:class:`EndpointPool` sends each request to the endpoint with the fewest in flight, and benches one that
fails (connection error, timeout, 5xx) with a doubling pause so its requests go to the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._urls import redact_url
from .routes import RouteFinder

__all__ = ["BENCH_BASE", "BENCH_MAX", "Endpoint", "EndpointPool"]

#: First and longest bench of a failed endpoint (seconds); it doubles with each failure in a row.
BENCH_BASE = 1.0
BENCH_MAX = 30.0


@dataclass
class Endpoint:
    """One server: the routes to try (``routes``), its batch cap, and its load.

    ``url`` is the route requests go to now; ``resolved`` the one that answered 200 (None before the
    first answer); ``batch_cap`` the most items per request, lowered when the server says so.
    """

    given: str
    candidates: list[str]
    batch_cap: int
    routes: RouteFinder = field(init=False, repr=False)
    # For a client of several servers: requests in flight, benched until (monotonic seconds), failures
    # in a row (the bench doubles with each), requests answered.
    outstanding: int = 0
    benched_until: float = 0.0
    failures: int = 0
    served: int = 0

    def __post_init__(self) -> None:
        self.routes = RouteFinder(list(self.candidates))

    @property
    def url(self) -> str:
        return self.routes.url

    @url.setter
    def url(self, value: str) -> None:
        self.routes.url = value

    @property
    def resolved(self) -> str | None:
        return self.routes.resolved


class EndpointPool:
    """The endpoints of one client, the lock that guards what is learnt about them, and the choice of the
    next one. ``routable`` holds back endpoints the client has not admitted yet (a first-use check)."""

    def __init__(
        self, endpoints: Sequence[Endpoint], *, log: logging.Logger, routable: Callable[[Any], bool] | None = None
    ) -> None:
        if not endpoints:
            raise ValueError("an endpoint pool needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.first = self.endpoints[0]
        self.lock = threading.Lock()
        self.log = log
        self.routable: Callable[[Any], bool] = routable or (lambda ep: True)
        self._rotation = 0

    def __len__(self) -> int:
        return len(self.endpoints)

    # ---------------------------------------------------------------- batch caps
    @property
    def batch_size(self) -> int:
        """The largest batch cap (a batch too big for the endpoint picked is split)."""
        return max(ep.batch_cap for ep in self.endpoints)

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        for ep in self.endpoints:
            ep.batch_cap = value

    def lower_batch_cap(self, ep: Endpoint, limit: int | None, n: int, status: int, item_name: str) -> int:
        """``ep`` refused ``n`` items: its new cap (a number in the refusal, else half) and the split size."""
        size = limit if limit is not None and 1 <= limit < n else max(1, n // 2)
        with self.lock:
            if size < ep.batch_cap:
                self.log.info(
                    "%s refused %d %ss per request (HTTP %d); using batches of %d from now on",
                    redact_url(ep.url), n, item_name, status, size,
                )
                ep.batch_cap = size
        return size

    # ---------------------------------------------------------------- routes
    def route_answered(self, ep: Endpoint, url: str) -> None:
        with self.lock:
            if ep.routes.answered(url) and len(ep.candidates) > 1:
                self.log.info("%s answers on %s", redact_url(ep.given), redact_url(url))

    def next_route(self, ep: Endpoint, url: str, status: int) -> str | None:
        """After a 404/405 on ``url``: the route to resend to ("" for the current one), or None to give up."""
        with self.lock:
            nxt = ep.routes.refuse(url, status)
        if nxt:
            self.log.info("%s answered HTTP %d; trying %s", redact_url(url), status, redact_url(nxt))
        return nxt

    # ---------------------------------------------------------------- choosing and benching
    def pick(self, pinned: Endpoint | None = None) -> Endpoint:
        """The endpoint for the next request, counted as in flight until ``release``: ``pinned`` if
        given, else the one with the fewest requests in flight among those not benched (ties taken in
        turn); when all are benched, the one whose bench ends first."""
        with self.lock:
            eps = self.endpoints
            if pinned is not None:
                ep = pinned
            elif len(eps) == 1:
                ep = eps[0]
            else:
                now = time.monotonic()
                ready = [e for e in eps if e.benched_until <= now and self.routable(e)]
                if ready:
                    start = self._rotation = (self._rotation + 1) % len(eps)
                    order = {id(e): (i - start) % len(eps) for i, e in enumerate(eps)}
                    ep = min(ready, key=lambda e: (e.outstanding, order[id(e)]))
                else:
                    ep = min((e for e in eps if self.routable(e)), key=lambda e: e.benched_until, default=eps[0])
            ep.outstanding += 1
            return ep

    def release(self, ep: Endpoint | None) -> None:
        """A request's answer (or failure) is in: its endpoint has one request fewer in flight."""
        if ep is not None:
            with self.lock:
                ep.outstanding = max(0, ep.outstanding - 1)

    def bench(self, ep: Endpoint, why: str) -> None:
        """Take a failed endpoint out of rotation for a while (doubling with each failure in a row)."""
        with self.lock:
            ep.failures += 1
            pause = min(BENCH_MAX, BENCH_BASE * 2 ** (ep.failures - 1))
            ep.benched_until = time.monotonic() + pause
        self.log.warning(
            "%s: %s; benched for %.1fs, its requests go to the other %d endpoint(s)",
            redact_url(ep.given), why, pause, len(self.endpoints) - 1,
        )

    def answered(self, ep: Endpoint) -> None:
        with self.lock:
            ep.served += 1
            if ep.failures:
                self.log.info("%s answers again", redact_url(ep.given))
                ep.failures = 0
                ep.benched_until = 0.0

    def wait_for_any(self, ep: Endpoint) -> float:
        """Seconds until the first bench ends among the routable endpoints (and ``ep``)."""
        now = time.monotonic()
        return max(0.0, min(e.benched_until for e in self.endpoints if self.routable(e) or e is ep) - now)

    def stats(self) -> list[dict[str, Any]]:
        """Per server: its URL (redacted), requests answered, in flight, failures in a row, benched, checked."""
        now = time.monotonic()
        return [
            {"url": redact_url(e.given), "served": e.served, "outstanding": e.outstanding, "failures": e.failures,
             "benched": e.benched_until > now, "checked": getattr(e, "checked", True)}
            for e in self.endpoints
        ]
