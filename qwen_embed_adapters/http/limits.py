"""Pauses: client-side rate limits, retry backoff with jitter, and the server's ``Retry-After``."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..settings import check_number

__all__ = ["Backoff", "RateLimiter", "retry_after"]


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked to wait (``Retry-After`` as seconds or an HTTP date), or None."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Backoff:
    """Retry pauses: ``base * 2**attempt`` (at most ``maximum``) with jitter, or the server's ``Retry-After``
    (at most ``max_retry_after``)."""

    base: float = 0.5
    maximum: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.maximum, self.base * (2**attempt))
        return base * (0.5 + random.random() / 2)


class RateLimiter:
    """Requests and tokens per minute for every call of one client, sync and async alike.

    Each request reserves its slot: it starts no sooner than one request interval after the one
    before it and once the tokens sent before it are paid for at the allowed rate (no bursts, so
    any minute holds at most the limit). Token counts are estimated before sending and corrected
    with the server's ``usage`` afterwards.
    """

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None) -> None:
        for label, value in (("max_requests_per_minute", requests_per_minute),
                             ("max_tokens_per_minute", tokens_per_minute)):
            check_number(label, value, positive=True, optional=True)
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._next_request = 0.0
        self._next_token = 0.0
        self._lock = threading.Lock()

    def reserve(self, tokens: int) -> float:
        """Book the next request (of about ``tokens`` tokens); returns the seconds to wait before sending it."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_request, self._next_token)
            if self.requests_per_minute:
                self._next_request = start + 60.0 / self.requests_per_minute
            if self.tokens_per_minute:
                self._next_token = start + max(tokens, 0) * 60.0 / self.tokens_per_minute
            return start - now

    def adjust(self, extra_tokens: int) -> None:
        """The server counted ``extra_tokens`` more (or fewer, if negative) than the estimate booked."""
        if self.tokens_per_minute and extra_tokens:
            with self._lock:
                self._next_token += extra_tokens * 60.0 / self.tokens_per_minute
