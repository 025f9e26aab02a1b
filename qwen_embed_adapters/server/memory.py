"""Keep the server's resident memory flat under load on glibc.

Every worker thread that allocates gets its own malloc arena by default (up to 8 per core), and large
request bodies, tokenised batches and answers freed in one arena are not reused by another. Measured with
benchmarks/serve_load.py (16 clients, 4 s): RSS grew by 64-93 MB with glibc's defaults, by 18-19 MB with
``MALLOC_ARENA_MAX=2`` or ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment. ``run`` sets both with
mallopt unless a ``MALLOC_*`` variable is already set.

The pinned threshold has a price: torch frees and reallocates its activations (megabytes each) on every
forward pass, and each one is a fresh mmap whose pages the kernel faults in and zeroes again (400,000 minor
faults and 0.57-0.66 s of system time per 256 short texts with all-MiniLM-L6-v2, against 178,000-203,000 and
0.30-0.32 s with glibc's sliding threshold). Unpinned, the same serve_load run (16 clients, 4 s, 8,192-token
passes) answered 99-113 requests instead of 85-87 but grew RSS by 140-166 MB instead of 10 MB: a server
facing a network keeps its memory flat, so the threshold stays pinned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

logger = logging.getLogger("qwen_embed_adapters.server")

_M_ARENA_MAX = -8  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3


def limit_malloc_arenas(arenas: int = 2, mmap_threshold: int | None = 128 * 1024) -> bool:
    """Cap glibc's malloc arenas (for threads started from now on) and, when ``mmap_threshold`` is given, fix
    the size above which a block is mapped on its own and returned to the system when freed (glibc otherwise
    raises that threshold up to 32 MB after the first large free). False where it does not apply."""
    if not sys.platform.startswith("linux") or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_ARENA_MAX, arenas))
        if mmap_threshold is not None:
            ok = ok and bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    logger.debug("malloc arenas capped at %d, mmap threshold %d: %s", arenas, mmap_threshold, ok)
    return ok


__all__ = [
    "limit_malloc_arenas",
]
