"""What every ``qwen-embed`` command shares on the way out: the hit table, quiet closing, and the
wrapper that turns the library's errors into one ``error: ...`` line and an exit code."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import DimensionMismatchError, QwenEmbedError, VectorSpaceMismatchError

if TYPE_CHECKING:
    from ..adapters.base import Hit

logger = logging.getLogger(__name__)


def format_hits(hits: list[Hit], width: int = 100) -> str:
    """A ranked table: rank, score, id, one line of text."""
    if not hits:
        return "(no hits)"
    id_w = min(max(len(h.id) for h in hits), 24)
    lines = [f"{'#':>2}  {'score':>6}  {'id':<{id_w}}  text"]
    for rank, h in enumerate(hits, 1):
        text = " ".join((h.text or "").split())
        if len(text) > width:
            text = text[: width - 1] + "…"
        hid = h.id if len(h.id) <= id_w else h.id[: id_w - 1] + "…"
        lines.append(f"{rank:>2}  {h.score:6.3f}  {hid:<{id_w}}  {text}")
    return "\n".join(lines)


def close_quietly(*things: Any) -> None:
    """Close stores and embedders that have a ``close``; never raise while exiting."""
    for t in things:
        close = getattr(t, "close", None)
        if close is None:
            continue
        try:
            close()
        except Exception as exc:  # closing must not hide the command's own outcome
            logger.debug("closing %r failed: %s", t, exc)


#: exit code of a command refused because the embedder does not fit the collection (width or vector space)
EXIT_MISMATCH = 3


def friendly(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the library's errors into one ``error: ...`` line and exit code 1 (3 when the embedder does not fit
    the collection: EXIT_MISMATCH; 130 on Ctrl-C)."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except VectorSpaceMismatchError as exc:
            # One line naming the fix: the collection is fine, the embedder gives other vectors.
            print(f"error: {exc.args[0].split(' (')[0]}. The embedder gives other vectors than the collection "
                  "holds; run `qwen-embed doctor --reference MODEL_DIR` against it (docs/space.md)", file=sys.stderr)
            return EXIT_MISMATCH
        except DimensionMismatchError as exc:
            print(f"error: {exc}. Use the embedder and --dimensions the collection was made with", file=sys.stderr)
            return EXIT_MISMATCH
        except QwenEmbedError as exc:  # IngestError included: its message counts what was not written
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except (OSError, ImportError) as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1

    return wrapper


__all__ = [
    "EXIT_MISMATCH",
    "close_quietly",
    "format_hits",
    "friendly",
]
