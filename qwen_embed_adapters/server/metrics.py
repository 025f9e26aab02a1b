"""Prometheus metrics for ``GET /metrics`` (``prometheus-client``, one registry per app).

Without ``prometheus-client`` the server still runs; ``/metrics`` then answers 503 naming the install command.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("qwen_embed_adapters.server")

#: Paths reported under their own name; anything else is ``other`` (keeps label values bounded).
KNOWN_ROUTES = frozenset({"/v1/embeddings", "/v1/rerank", "/rerank", "/v1/models", "/health", "/metrics"})

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


def route_label(path: str) -> str:
    return path if path in KNOWN_ROUTES else "other"


class ServerMetrics:
    """Counters and histograms of one app: requests by route and status, inputs, tokens, batch sizes,
    queue time and latency."""

    def __init__(self) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            self.registry: Any = None
            logger.warning('prometheus-client is not installed: /metrics is off '
                           '(pip install "qwen-embed-adapters[server]")')
            return
        self._prom = prom
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.requests = prom.Counter("qwen_embed_requests", "HTTP requests answered", ["route", "status"], registry=r)
        self.latency = prom.Histogram("qwen_embed_request_duration_seconds", "Time from request to answer",
                                      ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.queue = prom.Histogram("qwen_embed_queue_seconds", "Time a request waited before its model call",
                                    buckets=_LATENCY_BUCKETS, registry=r)
        self.inputs = prom.Counter("qwen_embed_inputs", "Texts received", ["route"], registry=r)
        self.tokens = prom.Counter("qwen_embed_tokens", "Tokens embedded (prompt tokens)", registry=r)
        self.batch = prom.Histogram("qwen_embed_batch_size", "Texts per model call", buckets=_SIZE_BUCKETS,
                                    registry=r)
        self.in_flight = prom.Gauge("qwen_embed_requests_in_flight", "Requests being served", registry=r)

    @property
    def enabled(self) -> bool:
        return self.registry is not None

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        if self.enabled:
            route = route_label(path)
            self.requests.labels(route, str(status)).inc()
            self.latency.labels(route).observe(seconds)

    def observe_inputs(self, path: str, inputs: int, tokens: int) -> None:
        if self.enabled:
            self.inputs.labels(route_label(path)).inc(inputs)
            self.tokens.inc(tokens)

    def observe_batch(self, texts: int) -> None:
        if self.enabled:
            self.batch.observe(texts)

    def observe_queue(self, seconds: float) -> None:
        if self.enabled:
            self.queue.observe(seconds)

    def set_in_flight(self, n: int) -> None:
        if self.enabled:
            self.in_flight.set(n)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format and its content type."""
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST


__all__ = [
    "KNOWN_ROUTES",
    "ServerMetrics",
    "route_label",
]
