"""Keep the server's resident memory flat on glibc without slowing its forward passes.

Every worker thread that allocates gets its own malloc arena by default (up to 8 per core), and large
request bodies, tokenised batches and answers freed in one arena are not reused by another. Measured with
benchmarks/serve_load.py (16 clients, 4 s): RSS grew by 64-93 MB with glibc's defaults, by 18-19 MB with
``MALLOC_ARENA_MAX=2`` in the environment. ``run`` caps the arenas at 2 with mallopt unless a ``MALLOC_*``
variable is already set.

The mmap threshold is left to glibc. Pinned at 128 KB (as it was until 2026-12-06), every activation torch
frees and reallocates on each forward pass is a fresh mmap whose pages the kernel faults in and zeroes again:
400,000 minor faults and 0.57-0.66 s of system time per 256 short texts with all-MiniLM-L6-v2, against
178,000-203,000 and 0.30-0.32 s with glibc's sliding threshold. Served, that was a quarter of the
throughput: 16 clients x 32 short texts, 179 texts/s pinned against 235 unpinned (Infinity's server, which
leaves glibc alone, did 224-233 in the same run; issue 30). What the sliding threshold keeps instead is the
heap a forward pass needs, reused from pass to pass; ``trim_malloc`` hands it back once the model has been
idle a second (``RequestGatherer(on_idle=...)``), so between bursts the server shrinks back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import sys

logger = logging.getLogger("qwen_embed_adapters.server")

_M_ARENA_MAX = -8  # from glibc's malloc.h


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, looked up once: ``find_library`` runs ``ldconfig -p`` in a subprocess (about 1.5 ms),
    and ``trim_malloc`` is called from the event loop."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (for threads started from now on); the mmap threshold is left to glibc (the
    module docstring says why). False where it does not apply."""
    if not sys.platform.startswith("linux") or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        libc = _libc()
        ok = bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    logger.debug("malloc arenas capped at %d: %s", arenas, ok)
    return ok


def trim_malloc() -> bool:
    """Return the free memory at the heap's top and in its arenas to the system (glibc ``malloc_trim(0)``).
    False where it does not apply (not Linux, not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(_libc().malloc_trim(0))
    except (OSError, AttributeError):
        return False


__all__ = [
    "limit_malloc_arenas",
    "trim_malloc",
]
