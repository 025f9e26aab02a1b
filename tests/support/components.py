"""Every configurable component, built with each setting away from its default: the table the settings
round-trip tests (tests/unit/test_settings_round_trip.py, tests/integration/test_ray_pickling.py) run over.

Adding a component is one line in ``COMPONENTS``: a name, a builder taking the fixtures' folders, and the
fields that cannot differ from their default (a choice with one value).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


class Folders(NamedTuple):
    """What builders may need from fixtures."""

    tiny_qwen3: str


class Component(NamedTuple):
    name: str
    build: Callable[[Folders], Any]
    #: fields that keep their default in ``build`` (a setting with one allowed value)
    at_default: frozenset[str] = frozenset()
    #: embed with it (an embedder); a store or a reranker says how to compare one result instead
    probe: Callable[[Any], Any] | None = None


def _fake(_: Folders) -> Any:
    from qwen_embed_adapters.testing import FakeEmbedder

    return FakeEmbedder("fake-probe", dimensions=24, query_instruction="Find it", batch_size=3,
                        max_concurrency=2, native_dim=48)


def _local(folders: Folders) -> Any:
    from qwen_embed_adapters.local import LocalEmbedder

    return LocalEmbedder(
        folders.tiny_qwen3, device="cpu", dtype="float32", dimensions=32, query_instruction="Find it",
        max_length=128, max_batch_tokens=512, truncate=False, batch_size=7, attn_implementation="eager",
        padding_side="right",
    )


def embed_probe(embedder: Any) -> np.ndarray:
    return np.vstack([embedder.embed_documents(["Beijing is the capital of China"]),
                      embedder.embed_queries(["capital of China"])])


COMPONENTS: list[Component] = [
    Component("FakeEmbedder", _fake, probe=embed_probe),
    Component("LocalEmbedder", _local, frozenset({"backend"}), probe=embed_probe),
    # Component("RemoteEmbedder", _remote, probe=...),  # at the merge of branch http (RemoteEmbedderSettings)
]


def settings_away_from_defaults(component: Component, settings: Any) -> list[str]:
    """The fields ``build`` left at their default though it should not have (an incomplete builder)."""
    left = []
    for f in dataclasses.fields(settings):
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        if f.default is not dataclasses.MISSING and getattr(settings, f.name) == default:
            left.append(f.name)
    return sorted(set(left) - component.at_default)
