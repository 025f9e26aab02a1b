"""What the framework modules share: building an embedder from keyword arguments, dimension checks."""

from __future__ import annotations

from typing import Any

from ..config import embedder_from_config
from ..embedder import Embedder
from ..errors import ConfigurationError, DimensionMismatchError


def build_embedder(
    embedder: Embedder | dict[str, Any] | None,
    base_url: str | None,
    model: str | None,
    kwargs: dict[str, Any],
    *,
    owner: str,
) -> Embedder:
    """``embedder`` as given, rebuilt from a ``to_config()`` dict, or built from engine kwargs.

    With ``base_url`` a RemoteEmbedder is built, otherwise a LocalEmbedder on ``model``.
    """
    if embedder is not None:
        if base_url is not None or model is not None or kwargs:
            extra = sorted([*(["base_url"] if base_url is not None else []),
                            *(["model"] if model is not None else []), *kwargs])
            raise ConfigurationError(
                f"{owner}: pass either an embedder or engine settings, not both (got embedder and {extra})"
            )
        if isinstance(embedder, dict):
            return embedder_from_config(embedder)
        if not isinstance(embedder, Embedder):
            raise ConfigurationError(
                f"{owner}: embedder must be a qwen_embed_adapters Embedder or its to_config() dict, "
                f"got {type(embedder).__name__}"
            )
        return embedder
    if base_url is not None:
        from ..remote import RemoteEmbedder

        if model is not None:
            kwargs = {"model": model, **kwargs}
        return RemoteEmbedder(base_url, **kwargs)
    if model is not None:
        from ..local import LocalEmbedder

        return LocalEmbedder(model, **kwargs)
    raise ConfigurationError(
        f"{owner}: pass an embedder, base_url=... (RemoteEmbedder) or model=... (LocalEmbedder)"
    )


def check_width(expected: int | None, embedder: Embedder, where: str) -> None:
    """Raise DimensionMismatchError when a store built at ``expected`` dims meets this embedder."""
    if expected is None:
        return
    actual = embedder.dimension
    if int(expected) != actual:
        raise DimensionMismatchError(
            int(expected), actual, where, detail=f"embedder {embedder.model!r} makes {actual}-d vectors"
        )
