"""The settings base: validation, to_config/from_config, repr and pickling derived from one dataclass."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.settings import (
    Configurable,
    Settings,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_str,
)


@dataclasses.dataclass(frozen=True)
class ShelfSettings(Settings):
    path: str
    batch_size: int = 64
    fmt: str = "base64"
    urls: tuple[str, ...] = ()
    verbose: bool = dataclasses.field(default=False, repr=False)

    def validate(self) -> None:
        check_str("path", self.path)
        check_int("batch_size", self.batch_size, minimum=1)
        check_choice("fmt", self.fmt, ("base64", "float"))
        check_bool("verbose", self.verbose)


class Shelf(Configurable):
    settings_class = ShelfSettings
    config_kind = ("store", "shelf")

    def __init__(self, path: str, batch_size: int = 64, fmt: str = "base64", urls: tuple[str, ...] = (),
                 verbose: bool = False) -> None:
        self.settings = ShelfSettings(path, batch_size, fmt, tuple(urls), verbose)
        self.opened = True  # stands for a connection: rebuilt, not pickled


def test_every_field_round_trips_through_config_and_pickle() -> None:
    shelf = Shelf("/data/kb", batch_size=8, fmt="float", urls=("http://a", "http://b"), verbose=True)
    cfg = shelf.to_config()
    assert cfg == {"store": "shelf", "path": "/data/kb", "batch_size": 8, "fmt": "float",
                   "urls": ["http://a", "http://b"], "verbose": True}
    assert Shelf.from_config(cfg).settings == shelf.settings
    again = pickle.loads(pickle.dumps(shelf))
    assert type(again) is Shelf and again.settings == shelf.settings


def test_repr_shows_changed_fields_only_and_hides_repr_false() -> None:
    assert repr(Shelf("/kb", batch_size=8, verbose=True)) == "Shelf(path='/kb', batch_size=8)"


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"path": "/kb", "batch": 3}, "unknown Shelf settings: ['batch']"),  # a misspelt key
        ({"batch_size": 3}, "Shelf config needs ['path']"),  # a required key missing
        ({"path": "/kb", "batch_size": True}, "batch_size must be an integer, got True"),  # bool is not an int
        ({"path": "/kb", "batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"path": "/kb", "fmt": "f16"}, "fmt must be one of 'base64', 'float', got 'f16'"),
        ({"path": " "}, "path must not be empty"),
        ({"path": "/kb", "verbose": 1}, "verbose must be True or False, got 1"),
        ({"store": "chroma", "path": "/kb"}, "Shelf config has store='chroma', expected 'shelf'"),
    ],
)
def test_bad_settings_raise_configuration_error_naming_the_field(cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Shelf.from_config(cfg)
    assert message in str(info.value)


def test_check_number_refuses_nan_bool_and_non_positive() -> None:
    check_number("timeout", 1.5, positive=True)
    check_number("rpm", None, optional=True)
    for bad in (float("nan"), float("inf"), True, "3"):  # not finite, a bool, a string
        with pytest.raises(ConfigurationError, match="timeout must be a finite number"):
            check_number("timeout", bad)
    with pytest.raises(ConfigurationError, match="timeout must be above 0, got 0"):
        check_number("timeout", 0, positive=True)
    with pytest.raises(ConfigurationError, match="at most 2"):
        check_int("n", 3, maximum=2)
