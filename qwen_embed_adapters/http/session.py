"""The I/O half: httpx clients (one sync, one async per event loop) and the thin shells that run the
request loop of ``loop.RequestLoop`` with them.

A client can be injected, as langchain-openai's ``http_client=`` / ``http_async_client=`` and httpx's
``transport=`` allow: ``Session(..., transport=httpx.MockTransport(handler))`` answers every request from
``handler`` (tests drive the whole loop that way, no server), and an injected client (proxies, TLS
settings, event hooks) is used as given and left open on ``close()``: its owner closes it.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import httpx

from ..errors import ConfigurationError
from .loop import OpKind, RequestLoop

__all__ = [
    "API_KEY_ENVS", "HIDDEN", "LoopClients", "Session", "check_headers", "env_headers", "is_secret_header",
    "resolve_api_key", "session_headers", "split_headers",
]

#: Where a key is looked for when none is given, in order.
API_KEY_ENVS = ("QWEN_EMBED_API_KEY", "OPENAI_API_KEY")


# ============================================================================ credentials
class _Hidden:
    """Stands for a secret in a repr: shows as ``***``."""

    def __repr__(self) -> str:
        return "***"


HIDDEN: Any = _Hidden()

#: Header names whose values are credentials: never persisted in a config, a pickle or a repr.
_SECRET_HEADER = re.compile(r"authorization|key|token|secret|password|passwd|cookie|auth|signature", re.IGNORECASE)


def is_secret_header(name: str) -> bool:
    """Whether a header's value looks like a credential (``Authorization``, ``X-Api-Key``, ``X-Auth-Token``)."""
    return bool(_SECRET_HEADER.search(name))


def split_headers(headers: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """``headers`` as (plain ones, credential ones); only the plain ones are settings."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError(f"headers must map str to str, got {name!r:.60}: {type(value).__name__}")
        (secret if is_secret_header(name) else plain)[name] = value
    return plain, secret


def env_headers(header_envs: Mapping[str, str] | None) -> dict[str, str]:
    """The headers whose values are read from environment variables (``{"X-Api-Key": "MY_KEY_VAR"}``);
    a variable that is not set is left out."""
    return {name: os.environ[env] for name, env in (header_envs or {}).items() if os.environ.get(env)}


def check_headers(headers: Any, header_envs: Any) -> None:
    """Settings check: both map str to str, and ``headers`` holds no credential (those go by the name of
    their environment variable, in ``header_envs``)."""
    for label, value in (("headers", headers), ("header_envs", header_envs)):
        if value is not None and (
            not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            raise ConfigurationError(f"{label} must map str to str")
    for name in headers or {}:
        if is_secret_header(name):
            raise ConfigurationError(
                f"header {name!r} holds a credential: it is not kept in settings; pass "
                f"header_envs={{{name!r}: 'ENV_VAR'}} to read it from an environment variable"
            )


def resolve_api_key(api_key: str | None, api_key_env: str | None) -> tuple[str | None, str | None]:
    """(the key, the name of the variable a rebuilt client reads it from).

    The key is ``api_key``, else ``$api_key_env``, else the first of ``API_KEY_ENVS`` that is set. A key
    given directly with no variable named keeps ``API_KEY_ENVS[0]`` as its variable: the rebuilt client
    reads the key from there (the key itself is never persisted).
    """
    if api_key is None:
        for name in (api_key_env,) if api_key_env else API_KEY_ENVS:
            if os.environ.get(name):
                return os.environ[name], name
        return None, api_key_env
    return api_key or None, api_key_env or (API_KEY_ENVS[0] if api_key else None)


def session_headers(api_key: str | None, headers: Mapping[str, str] | None, header_envs: Mapping[str, str] | None
                    ) -> dict[str, str]:
    """Every header a request carries: User-Agent, the given ones, those read from variables, the key."""
    out = {"User-Agent": "qwen-embed-adapters", **(headers or {}), **env_headers(header_envs)}
    if api_key:
        out["Authorization"] = f"Bearer {api_key}"
    return out

_C = TypeVar("_C")


class LoopClients(Generic[_C]):
    """One async client per running event loop.

    httpx async clients and grpc.aio channels belong to the loop that made them; a client used from
    several loops (``asyncio.run`` twice, a Jupyter kernel and a worker thread) keeps one for each.
    Entries of loops that have closed are dropped whenever a new one is added.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[asyncio.AbstractEventLoop, _C]] = {}

    def get(self, make: Callable[[], _C]) -> _C:
        """The running loop's client, made with ``make()`` on first use in that loop."""
        loop = asyncio.get_running_loop()
        entry = self._entries.get(id(loop))
        if entry is not None and entry[0] is loop and not loop.is_closed():
            return entry[1]
        self._entries = {k: v for k, v in self._entries.items() if not v[0].is_closed()}
        client = make()
        self._entries[id(loop)] = (loop, client)
        return client

    def pop_current(self) -> _C | None:
        """Forget the running loop's client and return it (for the caller to close), if any."""
        entry = self._entries.pop(id(asyncio.get_running_loop()), None)
        return None if entry is None else entry[1]

    def clear(self) -> None:
        """Forget every client (those of other loops cannot be closed from here)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class Session:
    """The clients of one RemoteEmbedder or RemoteReranker and the runner of its request loop.

    ``send(items, ctx)`` / ``asend`` run one request to the end: retries, fallbacks and splits included.
    """

    def __init__(
        self,
        loop: RequestLoop,
        *,
        headers: Mapping[str, str],
        timeout: float,
        max_concurrency: int,
        http_client: httpx.Client | None = None,
        http_async_client: httpx.AsyncClient | None = None,
        transport: Any = None,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError(f"http_client must be an httpx.Client, got {type(http_client).__name__}")
        if http_async_client is not None and not isinstance(http_async_client, httpx.AsyncClient):
            raise TypeError(f"http_async_client must be an httpx.AsyncClient, got {type(http_async_client).__name__}")
        self.loop = loop
        self.pool = loop.pool
        self.limiter = loop.limiter
        self.headers = dict(headers)
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self._given_client = http_client
        self._given_async_client = http_async_client
        self._transport = transport
        self._client: httpx.Client | None = None
        self._aclients: LoopClients[httpx.AsyncClient] = LoopClients()
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- clients
    def _options(self) -> dict[str, Any]:
        limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        options: dict[str, Any] = {"timeout": self.timeout, "limits": limits, "headers": self.headers}
        if self._transport is not None:
            options["transport"] = self._transport
        return options

    def client(self) -> httpx.Client:
        """The sync client (made on first use, reopened after ``close``)."""
        if self._given_client is not None:
            return self._given_client
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(**self._options())
            return self._client

    def async_client(self) -> httpx.AsyncClient:
        """The running event loop's async client."""
        if self._given_async_client is not None:
            return self._given_async_client
        return self._aclients.get(lambda: httpx.AsyncClient(**self._options()))

    def _extra_headers(self) -> dict[str, str] | None:
        # An injected client has its own headers: ours (key, User-Agent) go with each request.
        return self.headers if self._given_client is not None or self._given_async_client is not None else None

    # ---------------------------------------------------------------- the thin shells
    def send(self, items: list[Any], ctx: Any = None, offset: int = 0) -> Any:
        """Run one request for ``items`` to the end (sync)."""
        client, steps = self.client(), self.loop.exchange(items, ctx, offset)
        headers = self._extra_headers()
        outcome: Any = None
        while True:
            try:
                kind, arg = steps.send(outcome)
            except StopIteration as stop:
                return stop.value
            if kind is OpKind.POST:
                try:
                    outcome = client.post(arg.url, json=arg.body, headers=headers)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    outcome = exc
            elif kind is OpKind.SLEEP:
                time.sleep(arg)
                outcome = None
            else:
                outcome = self.send(arg[0], ctx, arg[1])

    async def asend(self, items: list[Any], ctx: Any = None, offset: int = 0) -> Any:
        """Async twin of ``send``."""
        client, steps = self.async_client(), self.loop.exchange(items, ctx, offset)
        headers = self._extra_headers()
        outcome: Any = None
        while True:
            try:
                kind, arg = steps.send(outcome)
            except StopIteration as stop:
                return stop.value
            if kind is OpKind.POST:
                try:
                    outcome = await client.post(arg.url, json=arg.body, headers=headers)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    outcome = exc
            elif kind is OpKind.SLEEP:
                await asyncio.sleep(arg)
                outcome = None
            else:
                outcome = await self.asend(arg[0], ctx, arg[1])

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close the sync client this session made (an injected one is its owner's to close)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's async client (others belong to loops that must close their own)."""
        client = self._aclients.pop_current()
        if client is not None:
            await client.aclose()
