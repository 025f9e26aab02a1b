"""Settings written down once: one frozen dataclass per configurable component, and the checks they use.

A component (an embedder, a reranker, a store) declares its settings as a frozen dataclass derived from
:class:`Settings`. Its constructor builds that dataclass (which validates every field in
``__post_init__``), and from it derive, with no second list of names anywhere:

- ``to_config()`` / ``from_config()``: plain JSON (tuples become lists; unknown keys are refused by name),
- ``repr``: fields marked ``repr=False`` (and secrets, which are never fields) are left out,
- pickling: :class:`Configurable` pickles a component as its class and its settings' config, so a Ray
  worker or a pickled LangChain/LlamaIndex object rebuilds exactly the settings the user chose.

Anchors: sentence-transformers ``Module.config_keys`` (a setting named once drives saving and loading) and
Chroma's ``get_config`` / ``build_from_config``. Secrets are never a field: a component keeps the *name*
of the environment variable that holds a key (``api_key_env``), as Chroma's OpenAI embedding function does.

The checks (``check_int`` ...) raise :class:`~qwen_embed_adapters.errors.ConfigurationError` naming the
setting and the value: settings errors are ConfigurationError, data errors are InvalidInputError.

Example::

    @dataclass(frozen=True)
    class ShelfSettings(Settings):
        path: str
        batch_size: int = 64

        def validate(self) -> None:
            check_str("path", self.path)
            check_int("batch_size", self.batch_size, minimum=1)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Collection, Mapping
from typing import Any, ClassVar, TypeVar

from .errors import ConfigurationError

logger = logging.getLogger(__name__)

S = TypeVar("S", bound="Settings")
C = TypeVar("C", bound="Configurable")

__all__ = [
    "Configurable",
    "Settings",
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_str",
    "rebuild",
]


# ---------------------------------------------------------------------------------------------- the checks
def _show(value: Any) -> str:
    return f"{value!r:.200}"


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
              optional: bool = False) -> None:
    """``value`` is an int (not a bool) within [minimum, maximum]; None passes when ``optional``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an integer, got {_show(value)}")
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be at most {maximum}, got {value}")


def check_number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                 positive: bool = False, optional: bool = False) -> None:
    """``value`` is a finite int or float (not a bool); ``positive`` means > 0."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, got {_show(value)}")
    if positive and value <= 0:
        raise ConfigurationError(f"{name} must be above 0, got {value}")
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be at most {maximum}, got {value}")


def check_bool(name: str, value: Any) -> None:
    """``value`` is True or False (not 0/1, not "yes")."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, got {_show(value)}")


def check_str(name: str, value: Any, *, optional: bool = False, empty: bool = False) -> None:
    """``value`` is a str, non-empty unless ``empty``; None passes when ``optional``."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string, got {_show(value)}")
    if not empty and not value.strip():
        raise ConfigurationError(f"{name} must not be empty")


def check_choice(name: str, value: Any, choices: Collection[Any], *, optional: bool = False) -> None:
    """``value`` is one of ``choices``."""
    if value is None and optional:
        return
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigurationError(f"{name} must be one of {allowed}, got {_show(value)}")


# ---------------------------------------------------------------------------------------------- settings
def _plain(value: Any) -> Any:
    """JSON-safe: tuples and lists become lists, mappings dicts, recursively."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every component's settings: a frozen dataclass whose fields are the component's settings.

    Subclasses add fields (with defaults where the constructor has them) and override :meth:`validate`.
    Fields holding sequences should be tuples (frozen, hashable); ``from_config`` turns JSON lists back
    into tuples for fields whose default is a tuple or whose annotation names ``tuple``.
    """

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigurationError naming the first bad field. Subclasses override."""

    # ------------------------------------------------------------------ derived
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_config(self) -> dict[str, Any]:
        """Every field, as plain JSON."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls: type[S], config: Mapping[str, Any], *, what: str | None = None) -> S:
        """The settings of ``config`` (as made by ``to_config``); unknown keys and missing required ones
        raise ConfigurationError naming them."""
        if not isinstance(config, Mapping):
            raise ConfigurationError(f"{what or cls.__name__} config must be a dict, got {_show(config)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise ConfigurationError(f"unknown {what or cls.__name__} settings: {unknown}; known: {sorted(fields)}")
        missing = sorted(
            n for n, f in fields.items()
            if n not in config and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        if missing:
            raise ConfigurationError(f"{what or cls.__name__} config needs {missing}")
        values = {k: cls._from_plain(fields[k], v) for k, v in config.items()}
        return cls(**values)

    @staticmethod
    def _from_plain(field: dataclasses.Field[Any], value: Any) -> Any:
        wants_tuple = isinstance(field.default, tuple) or "tuple" in str(field.type)
        if isinstance(value, list) and wants_tuple:
            return tuple(tuple(v) if isinstance(v, list) else v for v in value)
        return value

    def replace(self: S, **changes: Any) -> S:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def shown(self) -> dict[str, Any]:
        """The fields a repr shows: those with ``repr=True`` whose value differs from the default, plus
        required ones."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING or value != default:
                out[f.name] = value
        return out


def rebuild(cls: type[C], config: dict[str, Any]) -> C:
    """Unpickling entry point of :class:`Configurable`: ``cls.from_config(config)``."""
    return cls.from_config(config)


class Configurable:
    """Mixin for a component whose settings are one :class:`Settings` instance at ``self.settings``.

    Gives ``to_config`` (``{"engine"|"store": kind, **settings}`` when ``config_kind`` is set),
    ``from_config`` (through ``settings_class``, then ``from_settings``), and pickling by settings:
    ``pickle.loads(pickle.dumps(x))`` is ``type(x).from_config(x.to_config())`` — the same settings, fresh
    connections and caches. A secret given directly (not through an environment variable) is not pickled:
    the rebuilt component reads the variable named in its settings.
    """

    settings_class: ClassVar[type[Settings]]
    #: (key, value) put first in ``to_config()``: ("engine", "remote"), ("store", "milvus"), or None.
    config_kind: ClassVar[tuple[str, str] | None] = None
    settings: Settings

    def to_config(self) -> dict[str, Any]:
        head = dict([self.config_kind]) if self.config_kind else {}
        return {**head, **self.settings.to_config()}

    @classmethod
    def from_config(cls: type[C], config: Mapping[str, Any]) -> C:
        cfg = dict(config) if isinstance(config, Mapping) else config
        if cls.config_kind and isinstance(cfg, dict):
            key, kind = cls.config_kind
            given = cfg.pop(key, kind)
            if given != kind:
                raise ConfigurationError(f"{cls.__name__} config has {key}={given!r}, expected {kind!r}")
        settings = cls.settings_class.from_config(cfg, what=cls.__name__)  # type: ignore[arg-type]
        return cls.from_settings(settings)

    @classmethod
    def from_settings(cls: type[C], settings: Settings) -> C:
        """Build from a settings instance; the default passes every field as a keyword to the constructor."""
        return cls(**{n: getattr(settings, n) for n in settings.field_names()})

    def __reduce__(self) -> tuple[Any, ...]:
        return (rebuild, (type(self), self.to_config()))

    def _repr_fields(self) -> dict[str, Any]:
        """What ``repr`` shows; override to add learnt state (a dimension found on first use)."""
        return self.settings.shown()

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._repr_fields().items())
        return f"{type(self).__name__}({inner})"
