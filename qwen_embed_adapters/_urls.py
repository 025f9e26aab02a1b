"""URLs safe to show: credentials in a URL never reach a repr, a log line or an exception."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_PARAM = re.compile(r"key|token|secret|password|passwd|pwd|auth|signature|sig", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with ``user:password@`` replaced by ``***@`` and secret-looking query values by ``***``.

    Works for http(s), grpc, tcp and unix URIs alike; anything that does not parse is shown as
    ``<unparsable url>`` rather than echoed.

    >>> redact_url("https://user:s3cret@in01.example.com:19538/db?api_key=k&x=1")
    'https://***@in01.example.com:19538/db?api_key=***&x=1'
    >>> redact_url("http://localhost:19530")
    'http://localhost:19530'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except (ValueError, TypeError):
        return "<unparsable url>"
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        if port:
            host = f"{host}:{port}"
        netloc = f"***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(k) for k, _ in pairs):
            query = urlencode([(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


__all__ = ["redact_url"]
