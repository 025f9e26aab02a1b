"""The bearer key: compared in constant time, never echoed."""

import hmac
from typing import Any

from .errors import APIError

KEY_MESSAGE = "missing or wrong API key: send 'Authorization: Bearer <key>'"


def key_ok(authorization: str, api_key: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <api_key>``."""
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode("utf-8"), api_key.encode("utf-8")
    )


def check_key(request: Any, api_key: str | None) -> None:
    """Raise APIError(401) unless the request carries the key (no-op without a key)."""
    if api_key and not key_ok(request.headers.get("authorization", ""), api_key):
        raise APIError(401, KEY_MESSAGE, code="invalid_api_key")


__all__ = [
    "KEY_MESSAGE",
    "check_key",
    "key_ok",
]
