"""The outermost layer of the app, as plain ASGI: every request gets an id, and before any route runs

- a draining server (SIGTERM) answers 503,
- ``/v1/*`` without the key answers 401,
- more than ``max_concurrent`` requests at once answers 429 with ``Retry-After``,
- a body over ``payload_limit`` answers 413 before the rest is read (at once when ``Content-Length``
  says so, else as soon as the count passes the limit); the rest is never buffered,
- an exception nobody handled answers 500 JSON naming the request id, which is logged with the traceback.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from .auth import KEY_MESSAGE, key_ok
from .errors import APIError
from .metrics import ServerMetrics
from .settings import ServerSettings

logger = logging.getLogger("qwen_embed_adapters.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: After a 413 for a body that declared at most this many bytes, the server reads and discards the rest so
#: the client (still sending) can read the answer; past it, or without a length, it closes the connection.
DISCARD_LIMIT = 64 * 2**20

#: Paths that stay cheap and open under load (still 503 while draining, so balancers stop sending).
UNLIMITED_PATHS = frozenset({"/health", "/metrics"})


@dataclass
class GuardState:
    """What the guard shares with ``run`` (draining on SIGTERM) and the tests."""

    in_flight: int = 0
    draining: bool = False


class _ClientGone(Exception):
    pass


async def send_error(send: Send, err: APIError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer ``err`` in OpenAI's shape straight over ASGI."""
    payload = json.dumps(err.body()).encode("utf-8")
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if err.status == 401:
        head.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": err.status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int, size: int | None = None) -> APIError:
    said = f" ({size} bytes)" if size is not None else ""
    return APIError(413, f"the request body{said} is over this server's limit of {limit} bytes "
                    "(send fewer or shorter inputs per request, or start the server with a larger --payload-limit)",
                    code="payload_too_large")


class Guard:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: Any, *, settings: ServerSettings, state: GuardState, metrics: ServerMetrics) -> None:
        self.app = app
        self.settings = settings
        self.state = state
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        answer = {"status": 500, "started": False}

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.update(status=message["status"], started=True)
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self._serve(scope, receive, tracked_send)
        except _ClientGone:
            answer["status"] = 499
        except Exception:
            logger.exception("request %s (%s %s) failed", rid, scope.get("method"), scope.get("path"))
            if not answer["started"]:
                await send_error(tracked_send, APIError(
                    500, f"internal server error; request id {rid} (the server log has the details)",
                    type="server_error", code="internal_error"))
        finally:
            self.metrics.observe_request(scope["path"], int(answer["status"]), time.perf_counter() - started)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if self.state.draining:
            await send_error(send, APIError(503, "the server is shutting down; retry on another replica",
                                            type="server_error", code="shutting_down"),
                             [(b"connection", b"close"), (b"retry-after", b"1")])
            return
        if path in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.settings.api_key and path.startswith("/v1/") and not key_ok(
            _header(scope, b"authorization"), self.settings.api_key
        ):
            await send_error(send, APIError(401, KEY_MESSAGE, code="invalid_api_key"))
            return
        if self.state.in_flight >= self.settings.max_concurrent:
            await send_error(send, APIError(
                429, f"the server is busy ({self.settings.max_concurrent} requests in progress); retry shortly",
                type="rate_limit_error", code="too_many_requests"), [(b"retry-after", b"1")])
            return
        self.state.in_flight += 1
        self.metrics.set_in_flight(self.state.in_flight)
        try:
            await self._serve_limited(scope, receive, send)
        finally:
            self.state.in_flight -= 1
            self.metrics.set_in_flight(self.state.in_flight)

    async def _serve_limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.settings.payload_limit
        close = [(b"connection", b"close")]
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            await send_error(send, _too_large(limit, int(declared)), None if int(declared) <= DISCARD_LIMIT else close)
            return
        body = await _read_body(receive, limit)
        if body is None:
            await send_error(send, _too_large(limit), close)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


__all__ = [
    "DISCARD_LIMIT",
    "Guard",
    "GuardState",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "UNLIMITED_PATHS",
    "send_error",
]
