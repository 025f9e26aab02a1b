"""The exception hierarchy: everything the library raises on purpose derives from QwenEmbedError."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class QwenEmbedError(Exception):
    """Root of every error this library raises on purpose."""


class ConfigurationError(QwenEmbedError, ValueError):
    """A bad argument or environment value (unknown dimension, dimensions above native, ...)."""


class MissingDependencyError(QwenEmbedError, ImportError):
    """An optional extra is not installed. The message carries the exact install command."""

    def __init__(self, package: str, extra: str, feature: str | None = None) -> None:
        self.package = package
        self.extra = extra
        self.install_command = f'pip install "qwen-embed-adapters[{extra}]"'
        what = feature or "this feature"
        super().__init__(f"{what} needs the package {package!r}, which is not installed: {self.install_command}")


class DimensionMismatchError(QwenEmbedError, ValueError):
    """A vector width differs from the one a collection/index was created with.

    ``expected`` is the collection's dimension, ``actual`` the offending one, ``where`` the
    collection or index name.
    """

    def __init__(self, expected: int, actual: int, where: str, detail: str = "") -> None:
        self.expected = int(expected)
        self.actual = int(actual)
        self.where = where
        msg = (
            f"dimension mismatch for {where!r}: it holds {self.expected}-d vectors, "
            f"got {self.actual}-d"
        )
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class EmbeddingServiceError(QwenEmbedError):
    """The embedding endpoint failed (after retries where retrying made sense).

    ``status`` is the HTTP status (None for connection errors or a malformed answer), ``body``
    the start of the response body.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None) -> None:
        self.status = status
        self.body = body
        super().__init__(message)


class InvalidInputError(QwenEmbedError, ValueError):
    """Bad input: None, a non-str, an empty string, a NaN vector, ... ``index`` names the bad item."""

    def __init__(self, message: str, *, index: int | None = None, item_id: str | None = None) -> None:
        self.index = index
        self.item_id = item_id
        super().__init__(message)


class WriteError(QwenEmbedError):
    """A write to a vector store failed part-way. ``failed_ids`` were not written; ``written_ids`` were."""

    def __init__(
        self,
        message: str,
        *,
        failed_ids: Sequence[str] = (),
        written_ids: Sequence[str] = (),
        cause: BaseException | None = None,
    ) -> None:
        self.failed_ids = list(failed_ids)
        self.written_ids = list(written_ids)
        self.cause = cause
        super().__init__(message)


class IngestError(WriteError):
    """Bulk ingestion stopped on a batch that still failed after retries; ``report`` has the counts."""

    def __init__(self, message: str, *, report: Any = None, **kwargs: Any) -> None:
        self.report = report
        super().__init__(message, **kwargs)


__all__ = [
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbeddingServiceError",
    "IngestError",
    "InvalidInputError",
    "MissingDependencyError",
    "QwenEmbedError",
    "WriteError",
]
