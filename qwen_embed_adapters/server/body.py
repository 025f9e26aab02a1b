"""Request bodies as JSON objects: invalid UTF-8, deep nesting and lone surrogates are 400s naming the problem."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .errors import APIError

#: Bodies above this size are decoded in a worker thread, not on the event loop.
THREAD_PARSE_BYTES = 256 * 1024


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object, or APIError(400) saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise APIError(
            400, f"the request body is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}: {exc.reason})"
        ) from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise APIError(400, "the request body is not valid JSON: it is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise APIError(400, f"the request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


async def read_json_object(request: Any) -> dict[str, Any]:
    """The request body as a JSON object, or an APIError(400) saying what is wrong with it."""
    raw = await request.body()
    if len(raw) > THREAD_PARSE_BYTES:
        return await asyncio.to_thread(parse_json_object, raw)
    return parse_json_object(raw)


def check_text(text: str, where: str, param: str) -> None:
    """APIError(400) when ``text`` holds a lone surrogate (``"\\ud800"`` in JSON), which no tokenizer takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise APIError(
            400, f"{where} holds a lone surrogate (U+{ord(text[exc.start]):04X} at character {exc.start}); "
            "send valid Unicode", param=param, code="invalid_unicode",
        ) from None


__all__ = [
    "THREAD_PARSE_BYTES",
    "check_text",
    "parse_json_object",
    "read_json_object",
]
