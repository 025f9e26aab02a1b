"""The exception hierarchy: everything the library raises on purpose derives from QwenEmbedError.

Every class pickles with its fields (``expected``, ``status``, ``failed_ids``, ...), its message and its
class: a Ray worker's or a process pool's exception reaches the caller as itself. As openai-python's
``_exceptions`` do, pickling goes through ``__reduce__``; ours restores the instance without calling
``__init__`` again (whose arguments differ per class), so a subclass needs nothing to stay picklable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

E = TypeVar("E", bound=BaseException)


def _restore(cls: type[E], args: tuple[Any, ...], state: dict[str, Any]) -> E:
    """Unpickling entry point of every QwenEmbedError: the same class, message (``args``) and fields."""
    exc = cls.__new__(cls)
    BaseException.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class QwenEmbedError(Exception):
    """Root of every error this library raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException's own __reduce__ calls cls(*self.args), which fails for classes whose __init__
        # takes other arguments than the message (DimensionMismatchError(expected, actual, where)).
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class ConfigurationError(QwenEmbedError, ValueError):
    """A bad argument or environment value (unknown dimension, dimensions above native, ...)."""


class MissingDependencyError(QwenEmbedError, ImportError):
    """An optional extra is not installed. The message carries the exact install command."""

    def __init__(self, package: str, extra: str, feature: str | None = None) -> None:
        self.package = package
        self.extra = extra
        self.install_command = f'pip install "qwen-embed-adapters[{extra}]"'
        self.feature = feature
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
        self.detail = detail
        msg = (
            f"dimension mismatch for {where!r}: it holds {self.expected}-d vectors, "
            f"got {self.actual}-d"
        )
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class ServiceError(QwenEmbedError):
    """An HTTP service (an embedding or rerank endpoint) failed, after retries where retrying made sense.

    ``status`` is the HTTP status (None for connection errors or a malformed answer), ``body`` the
    start of the response body (keys scrubbed). RemoteReranker raises this class and its subclasses.

    The tree (catch the narrowest that fits)::

        ServiceError
        ├── ServiceTimeoutError        the server did not answer in time (timeout, HTTP 408/504)
        ├── RateLimitError             HTTP 429 after every retry; ``retry_after`` as the server asked
        └── EmbeddingServiceError      any failure of an embedding endpoint (RemoteEmbedder)
            ├── EmbeddingTimeoutError      (also a ServiceTimeoutError)
            └── EmbeddingRateLimitError    (also a RateLimitError)
    """

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None) -> None:
        self.status = status
        self.body = body
        super().__init__(message)


class ServiceTimeoutError(ServiceError):
    """The service did not answer in time (client timeout, or HTTP 408/504), after every retry."""


class RateLimitError(ServiceError):
    """The service kept answering HTTP 429 after every retry. ``retry_after``: seconds it last asked for."""

    def __init__(
        self, message: str, *, status: int | None = None, body: str | None = None, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, body=body)


class EmbeddingServiceError(ServiceError):
    """The embedding endpoint failed (after retries where retrying made sense).

    ``status`` is the HTTP status (None for connection errors or a malformed answer), ``body``
    the start of the response body.
    """


class EmbeddingTimeoutError(EmbeddingServiceError, ServiceTimeoutError):
    """The embedding endpoint did not answer in time, after every retry."""


class EmbeddingRateLimitError(EmbeddingServiceError, RateLimitError):
    """The embedding endpoint kept answering HTTP 429 after every retry."""


class VectorSpaceMismatchError(QwenEmbedError, ValueError):
    """The vectors differ from the ones a collection/index was created with, at the same width.

    Raised when the space card recorded with a collection (its probe texts' vectors) does not match
    what the current embedder gives for the same probes: another model, another quantisation, another
    instruction or pooling. ``where`` is the collection or index name, ``worst_probe`` the probe text
    whose vectors agree least, ``cosine`` that agreement, ``expected_model`` / ``actual_model`` the
    model recorded with the collection and the current one.
    """

    def __init__(
        self,
        where: str,
        *,
        worst_probe: str | None = None,
        cosine: float | None = None,
        expected_model: str | None = None,
        actual_model: str | None = None,
        detail: str = "",
    ) -> None:
        self.where = where
        self.worst_probe = worst_probe
        self.cosine = None if cosine is None else float(cosine)
        self.expected_model = expected_model
        self.actual_model = actual_model
        self.detail = detail
        msg = f"vector space mismatch for {where!r}"
        if expected_model is not None or actual_model is not None:
            msg += f": it was written with {expected_model!r}, the embedder is {actual_model!r}"
        if worst_probe is not None:
            agreement = "" if self.cosine is None else f" (cosine {self.cosine:.4f})"
            msg += f"; the probe {worst_probe!r:.80} agrees least{agreement}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class InvalidInputError(QwenEmbedError, ValueError):
    """Bad input: None, a non-str, an empty string, a NaN vector, a text too long for the server, ...

    ``index`` names the bad item; for a text the server refused as too long, ``tokens`` is its length
    in tokens when the server said it and ``limit`` the server's maximum.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        item_id: str | None = None,
        tokens: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.index = index
        self.item_id = item_id
        self.tokens = tokens
        self.limit = limit
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
    "EmbeddingRateLimitError",
    "EmbeddingServiceError",
    "EmbeddingTimeoutError",
    "IngestError",
    "InvalidInputError",
    "MissingDependencyError",
    "QwenEmbedError",
    "RateLimitError",
    "ServiceError",
    "ServiceTimeoutError",
    "VectorSpaceMismatchError",
    "WriteError",
]
