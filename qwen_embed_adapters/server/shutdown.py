"""Graceful SIGTERM for ``run``: drain (new requests get 503, in-flight ones finish), then exit, within a grace period."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from ..errors import MissingDependencyError
from .guard import GuardState
from .memory import limit_malloc_arenas

logger = logging.getLogger("qwen_embed_adapters.server")

DEFAULT_GRACEFUL_TIMEOUT = 30.0


def _watchdog(seconds: float, state: GuardState) -> None:
    """Exit the process after ``seconds`` even if a model call in a worker thread is still running
    (threads cannot be cancelled, and the interpreter would wait for them on exit)."""

    def fire() -> None:
        logger.error("graceful timeout passed with %d request(s) in progress: exiting now", state.in_flight)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def _server_class(uvicorn: Any) -> Any:
    class DrainingServer(uvicorn.Server):  # type: ignore[misc,name-defined]
        """uvicorn's Server, except that the first SIGTERM/SIGINT drains before stopping; a second one stops now."""

        def __init__(self, config: Any, state: GuardState, grace: float) -> None:
            super().__init__(config)
            self.state = state
            self.grace = max(0.0, grace)
            self.drain_deadline: float | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.drain_deadline is None:
                self.drain_deadline = time.monotonic() + self.grace
                self.state.draining = True
                _watchdog(self.grace, self.state)
                logger.warning("signal %d: draining %d request(s), new ones get 503 (at most %.1f s)",
                               sig, self.state.in_flight, self.grace)
                return
            self.force_exit = True
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            if self.drain_deadline is not None and not self.should_exit:  # type: ignore[has-type]
                left = self.drain_deadline - time.monotonic()
                if self.state.in_flight == 0 or left <= 0.5:
                    self.config.timeout_graceful_shutdown = max(0.1, left - 0.3)
                    self.should_exit = True
            result: bool = await super().on_tick(counter)
            return result

    return DrainingServer


def serve_until_drained(app: Any, *, host: str, port: int, log_level: str, graceful_timeout: float) -> None:
    """Run ``app`` (built by ``build_app``) with uvicorn and the draining shutdown above."""
    try:
        import uvicorn
    except ImportError:
        raise MissingDependencyError("uvicorn", "server", "qwen-embed serve") from None
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=max(0.1, graceful_timeout))  # type: ignore[arg-type]  # a float works
    server = _server_class(uvicorn)(config, app.state.guard, graceful_timeout)
    limit_malloc_arenas()
    server.run()


__all__ = [
    "DEFAULT_GRACEFUL_TIMEOUT",
    "serve_until_drained",
]
