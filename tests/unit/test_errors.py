"""Every exception class of the package pickles with its class, message and fields (issue 26).

Ray ships a worker's exception to the driver by pickling it, and so do process pools; an error whose
``__init__`` takes other arguments than its message used to fail to unpickle (``TypeError: __init__()
missing 2 required positional arguments``) instead of arriving as itself.
"""

from __future__ import annotations

import importlib
import pickle
import pkgutil
import sys
from typing import Any

import pytest

import qwen_embed_adapters
from qwen_embed_adapters import errors
from qwen_embed_adapters.errors import (
    DimensionMismatchError,
    MissingDependencyError,
    QwenEmbedError,
    VectorSpaceMismatchError,
)


def _import_every_module() -> None:
    for info in pkgutil.walk_packages(qwen_embed_adapters.__path__, "qwen_embed_adapters."):
        if info.name.endswith("__main__"):  # runs the CLI when imported
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # a module needing an extra that is not installed here
            continue


def _subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def _exception_classes() -> list[type[BaseException]]:
    _import_every_module()
    found = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, BaseException)}
    found |= {c for c in _subclasses(QwenEmbedError) if c.__module__.startswith("qwen_embed_adapters")}
    for name, module in list(sys.modules.items()):
        if name.startswith("qwen_embed_adapters") and module is not None:
            found |= {
                c for c in vars(module).values()
                if isinstance(c, type) and issubclass(c, BaseException) and c.__module__ == name
            }
    return sorted(found, key=lambda c: (c.__module__, c.__qualname__))


# One instance per class, with every field set to something other than its default. A new exception
# class whose __init__ needs more than a message needs a line here (the test below says which).
SAMPLES: dict[str, Any] = {
    "MissingDependencyError": lambda c: c("faiss-cpu", "faiss", "FaissStore"),
    "DimensionMismatchError": lambda c: c(1024, 512, "kb", "the collection's metadata"),
    "VectorSpaceMismatchError": lambda c: c(
        "kb", worst_probe="capital of China", cosine=0.42, expected_model="Qwen3-Embedding-0.6B",
        actual_model="Qwen3-Embedding-4B", detail="3 of 8 probes below 0.99",
    ),
    "ServiceError": lambda c: c("HTTP 500 from http://h/v1", status=500, body="oops"),
    "RateLimitError": lambda c: c("HTTP 429", status=429, body="slow down", retry_after=2.5),
    "InvalidInputError": lambda c: c("texts[3] is too long", index=3, item_id="doc-3", tokens=9000, limit=8192),
    "WriteError": lambda c: c("batch 2 failed", failed_ids=["a", "b"], written_ids=["c"], cause=OSError(5, "io")),
    "IngestError": lambda c: c("stopped", report={"written": 10, "failed": 2}, failed_ids=["x"], written_ids=["y"]),
    "APIError": lambda c: c(413, "too large", param="input", code="too_long", type="invalid_request_error"),
}


def _sample(cls: type[BaseException]) -> BaseException:
    for klass in cls.__mro__:
        if klass.__name__ in SAMPLES:
            return SAMPLES[klass.__name__](cls)  # type: ignore[no-any-return]
    return cls(f"a {cls.__name__}")


def _fields(exc: BaseException) -> dict[str, Any]:
    # exceptions compare by identity: compare a nested one (WriteError.cause) by class and args
    return {k: (type(v), v.args) if isinstance(v, BaseException) else v for k, v in vars(exc).items()}


CLASSES = _exception_classes()


def test_the_walk_finds_the_whole_hierarchy() -> None:
    names = {c.__name__ for c in CLASSES}
    assert set(errors.__all__) <= names
    assert {"APIError", "VectorSpaceMismatchError", "EmbeddingRateLimitError"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_exception_pickles_with_its_class_message_and_fields(cls: type[BaseException]) -> None:
    exc = _sample(cls)
    own_init = any("__init__" in vars(k) for k in cls.__mro__ if k.__module__.startswith("qwen_embed_adapters"))
    assert vars(exc) or not own_init, f"{cls.__name__}: give SAMPLES a line that sets its fields"
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is cls
    assert str(again) == str(exc)
    assert again.args == exc.args
    assert _fields(again) == _fields(exc)


def test_dimension_mismatch_keeps_expected_actual_where_through_pickle() -> None:
    # the reproduction from issue 26: this raised TypeError on loads
    again = pickle.loads(pickle.dumps(DimensionMismatchError(1024, 512, "kb")))
    assert (again.expected, again.actual, again.where, again.detail) == (1024, 512, "kb", "")
    assert str(again) == "dimension mismatch for 'kb': it holds 1024-d vectors, got 512-d"


def test_missing_dependency_keeps_its_install_command_through_pickle() -> None:
    again = pickle.loads(pickle.dumps(MissingDependencyError("pymilvus", "milvus")))
    assert isinstance(again, ImportError)
    assert again.install_command == 'pip install "qwen-embed-adapters[milvus]"'
    assert (again.package, again.extra, again.feature) == ("pymilvus", "milvus", None)


def test_vector_space_mismatch_message_names_the_models_and_the_worst_probe() -> None:
    exc = VectorSpaceMismatchError(
        "kb", worst_probe="capital of China", cosine=0.4213, expected_model="Qwen3-Embedding-0.6B",
        actual_model="Qwen3-Embedding-4B",
    )
    assert isinstance(exc, ValueError)
    assert str(exc) == (
        "vector space mismatch for 'kb': it was written with 'Qwen3-Embedding-0.6B', the embedder is "
        "'Qwen3-Embedding-4B'; the probe 'capital of China' agrees least (cosine 0.4213)"
    )
