"""One input record of ``ingest``: a str, or ``{"id", "text", "metadata"}`` with ``id`` and ``metadata``
optional. Checked here and given its id (the content hash unless it has one)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..adapters.base import content_id
from ..errors import InvalidInputError
from ..vectors import check_unicode

Record = str | Mapping[str, Any]
#: the keys a dict record may have; other fields belong in its metadata
RECORD_KEYS = frozenset({"id", "text", "metadata"})


def normalise_record(record: Any, pos: int) -> tuple[str, Any, Any]:
    """(id, text, metadata) of one record; the id defaults to the content hash."""
    if isinstance(record, str):
        if not record:
            raise InvalidInputError(f"record {pos} is an empty string", index=pos)
        check_unicode(record, f"record {pos}", index=pos)
        return content_id(record), record, None
    if isinstance(record, Mapping):
        unknown = set(record) - RECORD_KEYS
        if unknown:
            raise InvalidInputError(
                f"record {pos} has unknown keys {sorted(map(str, unknown))}; expected 'text' and optional "
                "'id' and 'metadata' (put other fields in 'metadata')", index=pos,
            )
        if "text" not in record:
            raise InvalidInputError(f"record {pos} has no 'text'", index=pos)
        text = record["text"]
        if text is None or not isinstance(text, str):
            raise InvalidInputError(
                f"record {pos}: 'text' is {type(text).__name__}, not str: {text!r:.60}", index=pos
            )
        check_unicode(text, f"record {pos}: 'text'", index=pos)
        rid = record.get("id")
        if rid is None:
            rid = content_id(text) if text else ""
        elif not isinstance(rid, str) or not rid:
            raise InvalidInputError(f"record {pos}: 'id' must be a non-empty str, got {rid!r}", index=pos)
        return rid, text, record.get("metadata")
    raise InvalidInputError(
        f"record {pos} is {type(record).__name__}; expected a str or a dict with 'text'", index=pos
    )


def name_record(message: str, pos: int) -> str:
    # prepare_records names items "texts[0]"/"metadatas[0]" of a one-record call: name the record instead.
    message = re.sub(r"\b(texts|ids|metadatas)\[0\]", lambda m: f"record {pos} {m.group(1)[:-1]}", message)
    return message if message.startswith("record ") else f"record {pos}: {message}"


__all__ = ["RECORD_KEYS", "Record", "name_record", "normalise_record"]
