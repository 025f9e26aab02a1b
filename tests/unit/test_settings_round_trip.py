"""Every setting of every configurable component survives to_config -> JSON -> from_config and pickle
(issue 26). The components are the table in tests/support/components.py; the Ray leg is in
tests/integration/test_ray_pickling.py."""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from qwen_embed_adapters import embedder_from_config
from tests.support.components import COMPONENTS, Component, Folders, settings_away_from_defaults
from tests.support.local_fixtures import tiny_qwen3_dir  # noqa: F401
from tests.support.openai_server import EmbeddingServer


@pytest.fixture(scope="module")
def folders(tiny_qwen3_dir: str) -> Iterator[Folders]:  # noqa: F811
    with EmbeddingServer(dim=64) as srv:
        yield Folders(tiny_qwen3=tiny_qwen3_dir, embedding_server=srv.base_url)


@pytest.fixture(scope="module", params=COMPONENTS, ids=lambda c: c.name)
def built(request: pytest.FixtureRequest, folders: Folders) -> tuple[Component, Any]:
    component: Component = request.param
    return component, component.build(folders)


def test_the_builder_moves_every_setting_away_from_its_default(built: tuple[Component, Any]) -> None:
    component, obj = built
    assert settings_away_from_defaults(component, obj.settings) == []


def test_every_field_survives_to_config_json_and_from_config(built: tuple[Component, Any]) -> None:
    component, obj = built
    cfg = json.loads(json.dumps(obj.to_config()))
    again = type(obj).from_config(cfg)
    assert type(again) is type(obj)
    for f in dataclasses.fields(obj.settings):
        assert getattr(again.settings, f.name) == getattr(obj.settings, f.name), f.name
    assert again.settings == obj.settings
    if component.probe is not None:
        np.testing.assert_array_equal(component.probe(again), component.probe(obj))
        assert embedder_from_config(cfg).settings == obj.settings


def test_every_field_survives_pickle(built: tuple[Component, Any]) -> None:
    component, obj = built
    again = pickle.loads(pickle.dumps(obj))
    assert type(again) is type(obj) and again is not obj
    assert again.settings == obj.settings
    assert repr(again) == repr(obj)
    if component.probe is not None:
        np.testing.assert_array_equal(component.probe(again), component.probe(obj))


def test_the_repr_names_the_changed_settings(built: tuple[Component, Any]) -> None:
    _, obj = built
    text = repr(obj)
    # a remote client names its server first (its required setting), the others their model
    first = "base_url=" if "base_url" in obj.to_config() else "model="
    assert text.startswith(f"{type(obj).__name__}({first}")
    for name in obj.settings.shown():
        assert f"{name}=" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": True}, "batch_size must be an integer, got True"),  # a bool where an int belongs
        ({"dimensions": 0}, "dimensions must be at least 1, got 0"),  # a zero width
        ({"max_concurrency": 0}, "max_concurrency must be at least 1, got 0"),
        ({"query_instruction": 3}, "query_instruction must be a string, got 3"),  # not a str
        ({"model": ""}, "model must not be empty"),
        ({"native_dim": "64"}, "native_dim must be an integer, got '64'"),  # a str where an int belongs
    ],
)
def test_bad_fake_embedder_settings_raise_configuration_error(kwargs: dict[str, Any], message: str) -> None:
    from qwen_embed_adapters.errors import ConfigurationError
    from qwen_embed_adapters.testing import FakeEmbedder

    with pytest.raises(ConfigurationError) as info:
        FakeEmbedder(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"truncate": 1}, "truncate must be True or False, got 1"),  # 1 is not a bool
        ({"max_length": 1}, "max_length must be at least 2, got 1"),
        ({"max_batch_tokens": 2.5}, "max_batch_tokens must be an integer, got 2.5"),  # a float
        ({"padding_side": "middle"}, "padding_side must be one of 'left', 'right', got 'middle'"),
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ],
)
def test_bad_local_embedder_settings_are_refused_before_the_model_loads(
    kwargs: dict[str, Any], message: str, tmp_path: Any
) -> None:
    from qwen_embed_adapters.errors import ConfigurationError
    from qwen_embed_adapters.local import LocalEmbedder

    with pytest.raises(ConfigurationError) as info:
        LocalEmbedder(str(tmp_path / "no-such-model"), **kwargs)  # the folder would fail later, if reached
    assert str(info.value) == message
