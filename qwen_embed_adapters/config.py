"""Plain settings -> embedders: the one place that builds an Embedder from a dict or the environment.

Engines are registered by name in ``ENGINES``; a new engine is one module (an ``Embedder`` subclass
with ``from_config``) and one line here. ``embedder_from_config(embedder.to_config())`` rebuilds the
same embedder; ``embedder_from_env()`` reads the ``QWEN_EMBED_*`` variables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from .embedder import Embedder
from .errors import ConfigurationError

EngineFactory = Callable[[dict[str, Any]], Embedder]


def _remote(cfg: dict[str, Any]) -> Embedder:
    from .remote import RemoteEmbedder

    return RemoteEmbedder.from_config(cfg)


def _local(cfg: dict[str, Any]) -> Embedder:
    from .local import LocalEmbedder

    return LocalEmbedder.from_config(cfg)


def _fake(cfg: dict[str, Any]) -> Embedder:
    from .testing import FakeEmbedder

    return FakeEmbedder.from_config(cfg)


def _cached(cfg: dict[str, Any]) -> Embedder:
    from .cache import CachedEmbedder

    inner = cfg.get("embedder")
    if not isinstance(inner, dict):
        raise ConfigurationError(f"a cached embedder config needs the inner embedder's config under 'embedder', got {inner!r:.200}")
    return CachedEmbedder.from_config(cfg, inner=embedder_from_config(inner))


#: engine name (the ``"engine"`` key of ``to_config()``) -> factory taking the rest of the config.
ENGINES: dict[str, EngineFactory] = {
    "remote": _remote,
    "local": _local,
    "fake": _fake,
    "cached": _cached,
}


def embedder_from_config(config: dict[str, Any]) -> Embedder:
    """Rebuild an embedder from ``Embedder.to_config()`` output.

    >>> cfg = RemoteEmbedder("http://localhost:8000/v1", dimensions=256).to_config()  # doctest: +SKIP
    >>> embedder_from_config(cfg).dimension  # doctest: +SKIP
    256
    """
    if not isinstance(config, dict) or "engine" not in config:
        raise ConfigurationError(f"an embedder config is a dict with an 'engine' key, got {config!r:.200}")
    cfg = dict(config)
    engine = cfg.pop("engine")
    factory = ENGINES.get(engine) if isinstance(engine, str) else None
    if factory is None:
        names = ", ".join(repr(n) for n in ENGINES)
        raise ConfigurationError(f"unknown embedder engine {engine!r}; expected one of {names}")
    return factory(cfg)


def embedder_from_env(environ: Mapping[str, str] | None = None) -> Embedder:
    """Build an embedder from ``QWEN_EMBED_*`` variables.

    ``QWEN_EMBED_BASE_URL`` (required for the remote engine; a comma-separated list of URLs for a
    RemoteEmbedder over several servers of the same model), ``QWEN_EMBED_MODEL``,
    ``QWEN_EMBED_DIMENSIONS``, ``QWEN_EMBED_API_KEY``. With ``QWEN_EMBED_ENGINE=local`` (or no base
    URL but ``QWEN_EMBED_ENGINE`` set to local) a LocalEmbedder is built from ``QWEN_EMBED_MODEL``.
    """
    env = os.environ if environ is None else environ
    dims_raw = env.get("QWEN_EMBED_DIMENSIONS", "").strip()
    dims: int | None = None
    if dims_raw:
        try:
            dims = int(dims_raw)
        except ValueError:
            raise ConfigurationError(f"QWEN_EMBED_DIMENSIONS must be an integer, got {dims_raw!r}") from None
    engine = env.get("QWEN_EMBED_ENGINE", "").strip().lower()
    base_url = env.get("QWEN_EMBED_BASE_URL", "").strip()
    model = env.get("QWEN_EMBED_MODEL", "").strip()
    if engine == "local":
        from .local import LocalEmbedder

        return LocalEmbedder(model or "Qwen/Qwen3-Embedding-0.6B", dimensions=dims)  # type: ignore[no-any-return]
    if not base_url:
        raise ConfigurationError(
            "missing QWEN_EMBED_BASE_URL: pass base_url to RemoteEmbedder or set QWEN_EMBED_BASE_URL "
            "(e.g. http://localhost:30000/v1); set QWEN_EMBED_ENGINE=local for the in-process engine"
        )
    from .remote import RemoteEmbedder

    key = env.get("QWEN_EMBED_API_KEY") or None
    urls = [u.strip() for u in base_url.split(",") if u.strip()]
    return RemoteEmbedder(
        urls[0] if len(urls) == 1 else urls,
        model or "Qwen3-Embedding-0.6B",
        api_key=key,
        api_key_env="QWEN_EMBED_API_KEY" if key else None,
        dimensions=dims,
    )


__all__ = [
    "ENGINES",
    "EngineFactory",
    "embedder_from_config",
    "embedder_from_env",
]
