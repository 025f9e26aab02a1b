"""Cutting text into chunks that fit the model: paragraphs, then sentences, then characters, measured by
a tokenizer-free token estimate that counts CJK characters one by one."""

from __future__ import annotations

import math
import re

from ..errors import InvalidInputError

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_WORD = re.compile(r"[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_SENTENCE = re.compile(r"(?<=[。！？!?；;])|(?<=[.])\s+")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free, deliberately generous estimate of Qwen3 tokens: one per CJK character,
    1.3 per word, one per other symbol."""
    cjk = len(_CJK.findall(text))
    words = len(_WORD.findall(text))
    rest = _CJK.sub("", _WORD.sub("", text))
    symbols = sum(1 for ch in rest if not ch.isspace())
    return cjk + math.ceil(words * 1.3) + symbols


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs; a fenced code block (```) stays one paragraph."""
    out: list[str] = []
    current: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                out.append("\n".join(current).strip("\n"))
                current = []
            continue
        current.append(line.rstrip())
    if current:
        out.append("\n".join(current).strip("\n"))
    return [p for p in out if p.strip()]


def _split_long(piece: str, max_tokens: int) -> list[str]:
    if estimate_tokens(piece) <= max_tokens:
        return [piece]
    sentences = [s for s in _SENTENCE.split(piece) if s and s.strip()]
    if len(sentences) > 1:
        out: list[str] = []
        for s in sentences:
            out.extend(_split_long(s.strip(), max_tokens))
        return _merge(out, max_tokens, " ")
    # One very long sentence: cut it by characters, proportionally to the estimate.
    n = max(2, math.ceil(estimate_tokens(piece) / max_tokens))
    step = max(1, math.ceil(len(piece) / n))
    parts = [piece[i : i + step] for i in range(0, len(piece), step)]
    return [q for p in parts for q in _split_long(p, max_tokens)] if step > 1 else parts


def _merge(pieces: list[str], max_tokens: int, sep: str) -> list[str]:
    out: list[str] = []
    current = ""
    for p in pieces:
        candidate = f"{current}{sep}{p}" if current else p
        if current and estimate_tokens(candidate) > max_tokens:
            out.append(current)
            current = p
        else:
            current = candidate
    if current:
        out.append(current)
    return out


def chunk_text(text: str, max_tokens: int = 512) -> list[str]:
    """Cut ``text`` into chunks of whole paragraphs, each under ``max_tokens`` (estimated).

    Consecutive short paragraphs are merged; a paragraph over the limit is split at sentence ends
    (。！？.!?), and a single over-long sentence by characters.

    >>> chunk_text("first paragraph\\n\\nsecond paragraph", max_tokens=100)
    ['first paragraph\\n\\nsecond paragraph']
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 8:
        raise InvalidInputError(f"max_tokens must be an int >= 8, got {max_tokens!r}")
    pieces: list[str] = []
    for para in _paragraphs(text):
        pieces.extend(_split_long(para, max_tokens))
    return _merge(pieces, max_tokens, "\n\n")


__all__ = ["chunk_text", "estimate_tokens"]
