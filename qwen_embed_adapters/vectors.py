"""Conversions and checks: float32 matrices, lists of Python floats, MRL truncation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import DimensionMismatchError, InvalidInputError


def as_float32_matrix(vectors: Any, *, dim: int | None = None, where: str = "vectors") -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 (n, d) matrix, checking width and finiteness.

    Accepts an ndarray (1-D means one vector), a list of lists, or a list of 1-D arrays.
    """
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: not a numeric matrix ({exc})") from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise InvalidInputError(f"{where}: expected a 2-D matrix, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise DimensionMismatchError(dim, arr.shape[1], where)
    check_finite(arr, where=where)
    return np.ascontiguousarray(arr)


def check_finite(matrix: np.ndarray, *, where: str = "vectors") -> None:
    """Raise InvalidInputError naming the first row that holds a NaN or an infinity."""
    finite = np.isfinite(matrix)
    if not finite.all():
        bad = int(np.argwhere(~finite.all(axis=-1) if matrix.ndim > 1 else ~finite)[0][0])
        raise InvalidInputError(f"{where}: row {bad} holds NaN or infinite values", index=bad)


def l2_normalize(matrix: np.ndarray, *, where: str = "vectors") -> np.ndarray:
    """Return float32 rows of unit L2 norm; a zero row is an error (it has no direction)."""
    m = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    zero = norms[:, 0] == 0
    if zero.any():
        bad = int(np.argmax(zero))
        raise InvalidInputError(f"{where}: row {bad} is a zero vector and cannot be normalised", index=bad)
    return np.ascontiguousarray(m / norms, dtype=np.float32)


def truncate_normalize(matrix: np.ndarray, dim: int, *, where: str = "vectors") -> np.ndarray:
    """Matryoshka (MRL): keep the first ``dim`` values of each row, then L2-normalise."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.shape[1] < dim:
        raise DimensionMismatchError(dim, m.shape[1], where, "cannot truncate to a larger dimension")
    return l2_normalize(m[:, :dim], where=where)


def to_list(vector: Any) -> list[float]:
    """One vector as a list of Python floats (never numpy scalars), as JSON and Pinecone want."""
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim != 1:
        raise InvalidInputError(f"expected one vector, got shape {arr.shape}")
    return [float(x) for x in arr.tolist()]


def to_lists(matrix: Any) -> list[list[float]]:
    """A matrix as a list of lists of Python floats (float32 values, widened exactly)."""
    arr = np.asarray(matrix, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    return arr.tolist()  # type: ignore[no-any-return]


def decode_base64(data: str, *, where: str = "embedding") -> np.ndarray:
    """Decode an OpenAI base64 embedding (little-endian float32 bytes)."""
    import base64
    import binascii

    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"{where}: invalid base64 ({exc})") from None
    if len(raw) % 4:
        raise InvalidInputError(f"{where}: base64 payload of {len(raw)} bytes is not float32")
    return np.frombuffer(raw, dtype="<f4")


def cosine_scores(query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Dot products of a unit query against unit rows (cosine similarity)."""
    return np.asarray(matrix, dtype=np.float32) @ np.asarray(query, dtype=np.float32)


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone UTF-16 surrogate (``"\\ud800"``, which no UTF-8 encoder takes), else None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_unicode(text: str, what: str, *, index: int | None = None, item_id: str | None = None) -> str:
    """``text`` unchanged, or InvalidInputError naming ``what`` when it holds a lone surrogate."""
    at = lone_surrogate(text)
    if at is not None:
        raise InvalidInputError(
            f"{what} holds a lone surrogate {text[at]!r} at character {at}: not valid Unicode text "
            "(decode the source with errors='replace', or drop the character)",
            index=index, item_id=item_id,
        )
    return text


def as_text_list(texts: Any, *, what: str = "texts", allow_empty_list: bool = True) -> list[str]:
    """Validate an iterable of str, naming the index of the first bad item (None, non-str, empty,
    or a lone surrogate, which no server, tokenizer or database can encode)."""
    if isinstance(texts, (str, bytes)):
        raise InvalidInputError(
            f"{what}: expected a sequence of str, got a single {type(texts).__name__}; wrap it in a list"
        )
    if texts is None:
        raise InvalidInputError(f"{what}: expected a sequence of str, got None")
    try:
        items = list(texts)
    except TypeError:
        raise InvalidInputError(
            f"{what}: expected a sequence of str, got {type(texts).__name__}"
        ) from None
    for i, t in enumerate(items):
        if t is None:
            raise InvalidInputError(f"{what}[{i}] is None", index=i)
        if not isinstance(t, str):
            raise InvalidInputError(f"{what}[{i}] is {type(t).__name__}, not str: {t!r:.60}", index=i)
        if not t:
            raise InvalidInputError(f"{what}[{i}] is an empty string", index=i)
        check_unicode(t, f"{what}[{i}]", index=i)
    if not items and not allow_empty_list:
        raise InvalidInputError(f"{what}: empty list")
    return items


__all__: Sequence[str] = [
    "as_float32_matrix",
    "as_text_list",
    "check_finite",
    "check_unicode",
    "cosine_scores",
    "decode_base64",
    "l2_normalize",
    "lone_surrogate",
    "to_list",
    "to_lists",
    "truncate_normalize",
]
