"""The store contract suite ships in the package (``qwen_embed_adapters.testing.contract``) without making
pytest a dependency of the library (only importing the suite itself imports pytest), and it is usable from
outside: a store written here (``ShelfStore``) passes it, and one ``StoreKind`` in ``STORES`` makes that store
known to specs, the CLI and ray.py."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import SplitResult

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import Hit, StoreSettings, VectorStore, check_ids
from qwen_embed_adapters.adapters.spec import STORES, StoreKind, parse_store_spec, store_from_spec
from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.errors import ConfigurationError, DimensionMismatchError
from qwen_embed_adapters.settings import check_str
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import OpenStore, StoreContract, unique_name


def test_importing_the_library_and_its_test_doubles_does_not_import_pytest() -> None:
    code = (
        "import sys, qwen_embed_adapters, qwen_embed_adapters.testing, qwen_embed_adapters.adapters.spec; "
        "print('pytest' in sys.modules); import qwen_embed_adapters.testing.contract; print('pytest' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_the_suite_is_importable_by_its_public_names() -> None:
    from qwen_embed_adapters.testing import contract

    assert {"StoreContract", "MilvusContract", "OpenStore", "TEXTS", "unique_name"} <= set(contract.__all__)
    tests = sorted(n for n in dir(contract.StoreContract) if n.startswith("test_"))
    assert len(tests) == 27 and "test_another_dimension_is_refused_before_any_write" in tests
    assert "test_keywordless_store_refuses_keyword_modes" in tests



# ---------------------------------------------------------------------------- a store written elsewhere
# What a user writing a store does: a VectorStore subclass with its settings dataclass, one StoreKind in
# STORES, and the package's contract suite. Nothing else in the package changes.


_SHELVES: dict[str, dict[str, Any]] = {}  # shelf name -> {"dim": ..., "rows": {id: (vector, text, metadata)}}


@dataclasses.dataclass(frozen=True)
class ShelfSettings(StoreSettings):
    shelf: str = "default"

    def validate(self) -> None:
        check_str("shelf", self.shelf)


class ShelfStore(VectorStore):
    """An in-process store keeping rows in a module-level dict: the smallest complete store."""

    settings_class: ClassVar[type[ShelfSettings]] = ShelfSettings
    kind: ClassVar[str] = "shelf"
    settings: ShelfSettings

    def __init__(self, embedder: Embedder, *, shelf: str = "default") -> None:
        super().__init__(embedder)
        self.settings = ShelfSettings(shelf=shelf)
        self._shelf = _SHELVES.setdefault(shelf, {"dim": None, "rows": {}})

    @classmethod
    def from_settings(cls, settings: ShelfSettings, embedder: Embedder) -> ShelfStore:
        return cls(embedder, shelf=settings.shelf)

    @property
    def name(self) -> str:
        return self.settings.shelf

    def ensure_dimension(self) -> int:
        dim = self.embedder.dimension
        if self._shelf["dim"] is None:
            self._shelf["dim"] = dim
        elif self._shelf["dim"] != dim:
            raise DimensionMismatchError(self._shelf["dim"], dim, self.name)
        return dim

    def _write(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        for i, v, t, m in zip(ids, vectors, texts, metadatas, strict=True):
            self._shelf["rows"][i] = (np.array(v, dtype=np.float32), t, dict(m))

    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        rows = [(i, r) for i, r in self._shelf["rows"].items()
                if not filter or all(r[2].get(k) == v for k, v in filter.items())]
        scored = sorted(((float(r[0] @ vector), i, r) for i, r in rows), key=lambda x: (-x[0], x[1]))
        return [Hit(id=i, score=s, text=r[1], metadata=dict(r[2])) for s, i, r in scored[:top_k]]

    def count(self) -> int:
        return len(self._shelf["rows"])

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return set(check_ids(ids)) & set(self._shelf["rows"])

    def delete(self, ids: Sequence[str]) -> None:
        for i in check_ids(ids):
            self._shelf["rows"].pop(i, None)


def _shelf_uri(parts: SplitResult, transport: str, query: dict[str, Any]) -> dict[str, Any]:
    return {"shelf": parts.netloc or parts.path.strip("/"), **query}


SHELF = StoreKind(lambda: ShelfStore, _shelf_uri, local_only=True, uri_setting="shelf", default_uri="main",
                  uri_help="shelf: a shelf name")


class TestShelfContract(StoreContract):
    """The package's contract suite on a store written outside the package."""

    @pytest.fixture
    def open_store(self) -> OpenStore:
        shelf = unique_name("shelf")
        return lambda embedder: ShelfStore(embedder, shelf=shelf)


def test_one_registry_entry_makes_a_store_known_to_specs_the_cli_and_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from qwen_embed_adapters.cli.options import add_store_args, store_spec
    from qwen_embed_adapters.ray import _is_local_only

    monkeypatch.setitem(STORES, "shelf", SHELF)
    # space_check / space_tolerance and precision / rescore are StoreSettings' own: every store has them
    space = {"space_check": "adopt", "space_tolerance": 0.99, "precision": None, "rescore": 4}
    assert parse_store_spec("shelf://kb") == {"store": "shelf", "shelf": "kb", **space}
    store = store_from_spec("shelf://kb", FakeEmbedder(dimensions=8))
    assert isinstance(store, ShelfStore) and store.to_config() == {"store": "shelf", "shelf": "kb", **space}
    parser = argparse.ArgumentParser()
    add_store_args(parser)
    assert store_spec(parser.parse_args(["--store", "shelf"])) == {"store": "shelf", "shelf": "main", **space}
    assert "shelf: a shelf name [main]" in " ".join(parser.format_help().split())
    assert _is_local_only("shelf://kb") is True


def test_a_store_written_elsewhere_refuses_a_compact_precision_it_never_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input tried: precision=int8 in the spec of a store whose class keeps float32 only."""
    monkeypatch.setitem(STORES, "shelf", SHELF)
    with pytest.raises(ConfigurationError, match=r"ShelfStore cannot keep precision='int8': this store keeps float32"):
        store_from_spec("shelf://kb?precision=int8", FakeEmbedder(dimensions=8))
