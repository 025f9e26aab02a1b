"""The bundled sample corpus that ``demo``, ``bench`` and ``doctor`` read (defined once, in ``diagnostics``,
the lowest layer that reads it)."""

from __future__ import annotations

from ..diagnostics import cycled_texts, load_corpus

__all__ = ["cycled_texts", "load_corpus"]
