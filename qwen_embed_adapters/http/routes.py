"""Where a server's route is: URL checks, the routes to try for a base URL, and route discovery.

A URL with a path is used as given; a bare ``http://host:port`` tries ``/v1/{leaf}`` and then ``/{leaf}``
(see :data:`engines.PROFILES` for which engine answers where). :class:`RouteFinder` keeps, per server,
the route requests go to now, the one that answered, and the routes that were refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .._urls import redact_url
from ..errors import ConfigurationError

__all__ = ["RouteFinder", "check_base_url", "normalise_base_url", "route_candidates"]


def check_base_url(base_url: str) -> str:
    """``base_url`` stripped of white space and trailing slashes; an error unless it is http(s) with a host."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ConfigurationError(f"base_url must be a non-empty URL, got {base_url!r}")
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"base_url must start with http:// or https://, got {redact_url(url)!r}")
    return url


def route_candidates(base_url: str, leaf: str, *, swap: tuple[str, ...] = (), v1_root: bool = False) -> list[str]:
    """The full URLs to try, in order, for the route ``leaf`` ("embeddings", "rerank") of ``base_url``.

    A URL with a path is used as given: ``.../v1`` -> ``.../v1/{leaf}``, ``.../{leaf}`` as it is (a path
    ending in one of ``swap`` has that last segment replaced). A bare ``http://host:port`` tries
    ``/v1/{leaf}`` (vLLM, SGLang, TEI, Ollama) and then ``/{leaf}`` (Infinity's default). With
    ``v1_root``, a path ending in ``/v1`` also tries the same path without it.

    >>> route_candidates("http://h:7997", "embeddings")
    ['http://h:7997/v1/embeddings', 'http://h:7997/embeddings']
    """
    url = check_base_url(base_url)
    path = urlsplit(url).path
    if path.endswith("/" + leaf):
        return [url]
    for other in swap:
        if path.endswith("/" + other):
            url = url[: -len(other) - 1]
            path = urlsplit(url).path
            break
    if not path:
        return [f"{url}/v1/{leaf}", f"{url}/{leaf}"]
    urls = [f"{url}/{leaf}"]
    if v1_root and path.endswith("/v1"):
        urls.append(f"{url[: -len('/v1')]}/{leaf}")
    return urls


def normalise_base_url(base_url: str) -> str:
    """``http://h:p`` and ``http://h:p/`` become ``http://h:p/v1``; a trailing ``/embeddings`` is dropped.

    The most likely OpenAI-style base of a URL, for tools that need one before any request
    (RemoteEmbedder itself tries the routes: see ``route_candidates``).
    """
    url = check_base_url(base_url)
    if url.endswith("/embeddings"):
        url = url[: -len("/embeddings")]
    if not url.split("://", 1)[1].count("/"):
        url += "/v1"
    return url


@dataclass
class RouteFinder:
    """Route discovery for one server: try ``candidates`` in order until one answers, then keep it.

    ``url`` is the route requests go to now; ``resolved`` the one that answered 200 (None before the
    first answer); ``refused`` the routes that answered 404/405, with their status.
    """

    candidates: list[str]
    url: str = ""
    resolved: str | None = None
    refused: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.url = self.url or self.candidates[0]

    def answered(self, url: str) -> bool:
        """``url`` answered 200: keep it. True when this is news (the first answer)."""
        if self.resolved is not None:
            return False
        self.resolved = self.url = url
        return True

    def refuse(self, url: str, status: int) -> str | None:
        """``url`` answered 404/405: the route to try next, ``""`` when another request moved on already
        (resend), or None when every route was tried or this one had answered before."""
        if self.resolved is not None:
            return None  # this route answered before: the 404 is the server's answer
        self.refused[url] = status
        if url != self.url:
            return ""
        i = self.candidates.index(url) if url in self.candidates else len(self.candidates)
        if i + 1 < len(self.candidates):
            self.url = self.candidates[i + 1]
            return self.url
        return None

    def tried(self) -> str:
        """Every refused route with its status, redacted, for the error."""
        return ", ".join(f"{redact_url(u)} (HTTP {s})" for u, s in self.refused.items())
