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
    #: base URL of a running tests/support/openai_server.py EmbeddingServer(dim=64) (FakeEmbedder's vectors)
    embedding_server: str


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


def _remote(folders: Folders) -> Any:
    from qwen_embed_adapters.remote import RemoteEmbedder

    # the variables named below are not set: a setting names a variable, it does not need its value
    return RemoteEmbedder(
        folders.embedding_server, model="fake-remote", dimensions=32, query_instruction="Find it", batch_size=3,
        max_concurrency=2, max_retries=2, timeout=30.0, api_key_env="QWEN_ROUND_TRIP_UNSET_KEY",
        send_dimensions=False, encoding_format="float", truncate=True, max_requests_per_minute=6000.0,
        max_tokens_per_minute=1e6, backoff_base=0.25, backoff_max=10.0, max_retry_after=30.0,
        headers={"X-Client": "round-trip"}, header_envs={"X-Trace": "QWEN_ROUND_TRIP_UNSET_TRACE"},
    )


def _remote_reranker(folders: Folders) -> Any:
    from qwen_embed_adapters.rerank import RemoteReranker

    return RemoteReranker(
        folders.embedding_server, model="fake-reranker", api="tei", template="qwen3", instruction="Judge it",
        api_key_env="QWEN_ROUND_TRIP_UNSET_KEY", batch_size=5, max_concurrency=2, max_retries=2, timeout=30.0,
        backoff_base=0.25, backoff_max=10.0, max_retry_after=30.0, headers={"X-Client": "round-trip"},
        header_envs={"X-Trace": "QWEN_ROUND_TRIP_UNSET_TRACE"},
    )


def embed_probe(embedder: Any) -> np.ndarray:
    return np.vstack([embedder.embed_documents(["Beijing is the capital of China"]),
                      embedder.embed_queries(["capital of China"])])


COMPONENTS: list[Component] = [
    Component("FakeEmbedder", _fake, probe=embed_probe),
    Component("LocalEmbedder", _local, frozenset({"backend"}), probe=embed_probe),
    Component("RemoteEmbedder", _remote, probe=embed_probe),
    # settings only: the probe leg builds through embedder_from_config, which makes embedders; LocalReranker
    # is not here (it loads a model when built, and Folders has no tiny reranker yet)
    Component("RemoteReranker", _remote_reranker),
]


def settings_away_from_defaults(component: Component, settings: Any) -> list[str]:
    """The fields ``build`` left at their default though it should not have (an incomplete builder)."""
    left = []
    for f in dataclasses.fields(settings):
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        if f.default is not dataclasses.MISSING and getattr(settings, f.name) == default:
            left.append(f.name)
    return sorted(set(left) - component.at_default)
