"""The engine and store options that ``embed``, ``ingest``, ``search``, ``doctor`` and ``bench`` share,
and the embedder and store they stand for.

The engine is chosen by flags, then environment: ``--base-url``/``$QWEN_EMBED_BASE_URL`` means a remote
OpenAI-compatible endpoint, otherwise the in-process engine loads ``--model``/``$QWEN_EMBED_MODEL``.
The store is a spec (``--store-spec URI``) or the flags ``--store``/``--uri``/``--collection``/...,
which are translated into one; ``adapters.spec.store_from_spec`` builds it. Which stores there are, their
default locations and their own flags come from ``adapters.spec.STORES``.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..adapters.base import VectorStore
    from ..embedder import Embedder

ENGINES = ("auto", "remote", "local", "fake")


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """``--base-url``, ``--model``, ``--dimensions`` ... (defaults from ``QWEN_EMBED_*``)."""
    g = p.add_argument_group("embedding engine (--base-url means remote, else in-process)")
    g.add_argument("--base-url", default=os.environ.get("QWEN_EMBED_BASE_URL") or None,
                   help="OpenAI-compatible endpoint, e.g. http://localhost:30000/v1 [$QWEN_EMBED_BASE_URL]")
    g.add_argument("--model", default=os.environ.get("QWEN_EMBED_MODEL") or None,
                   help="model name (remote) or folder/hub id (local) [$QWEN_EMBED_MODEL; "
                        "default Qwen3-Embedding-0.6B]")
    g.add_argument("--dimensions", type=int, default=_env_int("QWEN_EMBED_DIMENSIONS"),
                   help="MRL output size, e.g. 512 [$QWEN_EMBED_DIMENSIONS; default: the model's native size]")
    g.add_argument("--engine", choices=ENGINES, default=os.environ.get("QWEN_EMBED_ENGINE") or "auto",
                   help="force an engine; 'fake' is the deterministic hashing embedder for tests "
                        "[$QWEN_EMBED_ENGINE; default auto]")
    g.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="environment variable holding the endpoint's key "
                        "[default: QWEN_EMBED_API_KEY, then OPENAI_API_KEY]")
    g.add_argument("--device", default="auto", help="local engine: cuda, mps, cpu or auto [auto]")
    g.add_argument("--embed-batch-size", type=int, default=None, metavar="N",
                   help="texts per embedding request/forward pass [remote 64, local 256]")
    g.add_argument("--max-retries", type=int, default=5, help="remote: retries per request [5]")
    g.add_argument("--timeout", type=float, default=60.0, help="remote: seconds per request [60]")


def add_store_args(p: argparse.ArgumentParser) -> None:
    """``--store``, ``--uri``, ``--collection``, each store's own flags and ``--store-spec`` (from ``STORES``)."""
    from ..adapters.base import StoreSettings
    from ..adapters.spec import COMMON_FLAGS, DEFAULT_STORE, STORES

    g = p.add_argument_group("vector store")
    choices = tuple(n for n, k in STORES.items() if not k.alias_of)  # postgresql is pgvector
    g.add_argument("--store", choices=choices, default=os.environ.get("QWEN_EMBED_STORE") or DEFAULT_STORE,
                   help=f"which database [$QWEN_EMBED_STORE; default {DEFAULT_STORE}]")
    g.add_argument("--uri", default=None, help="; ".join(
        k.uri_help + (f" [{k.default_uri}]" if k.default_uri else "") for k in STORES.values() if k.uri_setting))
    named = [n for n, k in STORES.items() if k.collection_setting]
    g.add_argument("--collection", default="documents",
                   help=f"collection or index name ({', '.join(named)}) [documents]")
    seen: set[str] = set()
    for kind in STORES.values():
        defaults = kind.defaults() if kind.flags else {}
        for f in kind.flags:
            if f.flag not in seen:
                seen.add(f.flag)
                g.add_argument(f.flag, default=None, metavar=f.metavar, help=f"{f.help} [{defaults[f.setting]!r}]")
    common = StoreSettings()
    for f in COMMON_FLAGS:
        g.add_argument(f.flag, default=None, metavar=f.metavar, help=f"{f.help} [{getattr(common, f.setting)!r}]")
    g.add_argument("--store-spec", default=None, metavar="URI",
                   help="the whole store as one spec, e.g. milvus:///data/kb.db?collection=kb, "
                        "chroma+http://host:8000/kb, pinecone://INDEX-HOST?namespace=x, faiss:///data/kb; "
                        "wins over --store/--uri/--collection and the stores' own flags")


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"qwen-embed: ${name} must be an integer, got {raw!r}") from None


def engine_config(args: argparse.Namespace) -> dict[str, Any]:
    """The plain embedder config (``embedder_from_config`` input) the flags, then environment, ask for."""
    engine = args.engine
    if engine == "auto":
        engine = "remote" if args.base_url else "local"
    batch = args.embed_batch_size
    if engine == "remote":
        if not args.base_url:
            raise ConfigurationError(
                "--engine remote needs --base-url (or $QWEN_EMBED_BASE_URL), e.g. http://localhost:30000/v1"
            )
        return {
            "engine": "remote", "base_url": args.base_url, "model": args.model or "Qwen3-Embedding-0.6B",
            "dimensions": args.dimensions, "api_key_env": args.api_key_env, "batch_size": batch or 64,
            "max_retries": args.max_retries, "timeout": args.timeout,
        }
    if engine == "fake":
        return {"engine": "fake", "model": args.model or "fake-embedding", "dimensions": args.dimensions or 64,
                "batch_size": batch or 64}
    return {"engine": "local", "model": args.model, "dimensions": args.dimensions, "device": args.device,
            "batch_size": batch or 256}


def build_embedder(args: argparse.Namespace) -> Embedder:
    """The embedder the flags (then environment) ask for."""
    from ..config import embedder_from_config

    return embedder_from_config(engine_config(args))


def store_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The plain store spec the flags stand for (``--store-spec`` wins over ``--store``/``--uri``/...)."""
    from ..adapters.spec import STORES, parse_store_spec

    common = _common_settings(args)
    if getattr(args, "store_spec", None):
        given = parse_store_spec(args.store_spec)
        return parse_store_spec({**given, **common}) if common else given
    kind = STORES[args.store]
    spec: dict[str, Any] = {"store": args.store}
    uri = args.uri or kind.default_uri
    if kind.uri_setting and uri is not None:
        spec[kind.uri_setting] = uri
    if kind.collection_setting:
        spec[kind.collection_setting] = args.collection
    for f in kind.flags:
        value = getattr(args, f.flag.lstrip("-").replace("-", "_"), None)
        if value is not None:
            spec[f.setting] = value
    return parse_store_spec({**spec, **common})


def _common_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``--space-check`` / ``--space-tolerance`` as settings (they also apply over ``--store-spec``)."""
    from ..adapters.spec import COMMON_FLAGS

    out: dict[str, Any] = {}
    for f in COMMON_FLAGS:
        value = getattr(args, f.flag.lstrip("-").replace("-", "_"), None)
        if value is None:
            continue
        if f.setting == "space_tolerance":
            try:
                value = float(value)
            except ValueError:
                raise ConfigurationError(f"{f.flag} takes a number, got {value!r}") from None
        out[f.setting] = value
    return out


def open_store(args: argparse.Namespace, embedder: Embedder) -> VectorStore:
    """The store the flags name, bound to ``embedder`` (created with its dimension if missing)."""
    from ..adapters.spec import store_from_spec

    return store_from_spec(store_spec(args), embedder)


def save_if_local(store: Any) -> None:
    """Write a store that lives in memory until saved (FAISS) to its folder."""
    save = getattr(store, "save", None)
    if callable(save) and getattr(store, "path", None) is not None:
        save()


__all__ = [
    "ENGINES",
    "add_engine_args",
    "add_store_args",
    "build_embedder",
    "engine_config",
    "open_store",
    "save_if_local",
    "store_spec",
]
