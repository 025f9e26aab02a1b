"""Haystack: ``QwenTextEmbedder`` (queries, with the Qwen3 instruction) and ``QwenDocumentEmbedder``
(documents, without), components over any qwen_embed_adapters Embedder.

Both serialise with ``to_dict``/``from_dict``: the key as a Haystack ``Secret`` read from the
environment (its variable names, never its value), or an in-process/any embedder as its plain
``to_config()``. The model or connection is built at ``warm_up`` (or first ``run``).

    from haystack import Pipeline
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from qwen_embed_adapters.integrations.haystack import QwenTextEmbedder

    query = Pipeline()
    query.add_component("embed", QwenTextEmbedder(base_url="http://localhost:8000/v1"))
    query.add_component("retrieve", InMemoryEmbeddingRetriever(document_store=store))
    query.connect("embed.embedding", "retrieve.query_embedding")

Needs the ``haystack`` extra: ``pip install "qwen-embed-adapters[haystack]"``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .._http import API_KEY_ENVS
from ..embedder import Embedder
from ..errors import ConfigurationError, MissingDependencyError
from ..vectors import to_list, to_lists
from ._common import build_embedder

try:
    from haystack import Document, component, default_from_dict, default_to_dict
    from haystack.utils import Secret, deserialize_secrets_inplace
except ImportError as _exc:  # haystack-ai is an optional extra
    raise MissingDependencyError("haystack-ai", "haystack", "qwen_embed_adapters.integrations.haystack") from _exc

__all__ = ["QwenDocumentEmbedder", "QwenTextEmbedder"]


def _default_key() -> Secret:
    return Secret.from_env_var(list(API_KEY_ENVS), strict=False)


class _QwenComponent:
    """Shared construction, warm-up and serialisation of the two components."""

    def __init__(
        self,
        embedder: Embedder | dict[str, Any] | None = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: Secret | None = None,
        dimensions: int | None = None,
        query_instruction: str | None = None,
        batch_size: int = 64,
    ) -> None:
        if api_key is not None and not isinstance(api_key, Secret):
            raise ConfigurationError(
                "api_key must be a haystack Secret (Secret.from_env_var('QWEN_EMBED_API_KEY')), "
                f"got {type(api_key).__name__}"
            )
        if embedder is not None and (base_url is not None or model is not None):
            raise ConfigurationError(f"{type(self).__name__}: pass either an embedder or base_url/model, not both")
        if embedder is None and base_url is None and model is None:
            raise ConfigurationError(
                f"{type(self).__name__}: pass an embedder, base_url=... (RemoteEmbedder) or model=... (LocalEmbedder)"
            )
        self.embedder_config = embedder.to_config() if isinstance(embedder, Embedder) else embedder
        self.base_url = base_url
        self.model = model
        self.api_key = api_key if api_key is not None else (_default_key() if base_url is not None else None)
        self.dimensions = dimensions
        self.query_instruction = query_instruction
        self.batch_size = batch_size
        self._embedder: Embedder | None = embedder if isinstance(embedder, Embedder) else None

    def warm_up(self) -> None:
        """Build the embedder (connects nothing yet for a remote one; loads the model for a local one)."""
        if self._embedder is not None:
            return
        if self.embedder_config is not None:
            self._embedder = build_embedder(self.embedder_config, None, None, {}, owner=type(self).__name__)
            return
        kwargs: dict[str, Any] = {"dimensions": self.dimensions, "query_instruction": self.query_instruction,
                                  "batch_size": self.batch_size}
        if self.base_url is not None:
            key = self.api_key.resolve_value() if self.api_key is not None else None
            kwargs["api_key"] = key
            if key and self.api_key is not None and self.api_key.type.value == "env_var":
                # remember which variable held the key, so the embedder's to_config() names that one
                env = next((n for n in self.api_key._env_vars if os.environ.get(n) == key), None)  # type: ignore[attr-defined]
                kwargs["api_key_env"] = env
        self._embedder = build_embedder(None, self.base_url, self.model, kwargs, owner=type(self).__name__)

    @property
    def embedder(self) -> Embedder:
        self.warm_up()
        assert self._embedder is not None
        return self._embedder

    def to_dict(self) -> dict[str, Any]:
        """Serialise: the key as its Secret (env var names), an embedder as its ``to_config()``."""
        return default_to_dict(  # type: ignore[no-any-return]
            self,
            embedder=self.embedder_config,
            base_url=self.base_url,
            model=self.model,
            api_key=self.api_key.to_dict() if self.api_key is not None else None,
            dimensions=self.dimensions,
            query_instruction=self.query_instruction,
            batch_size=self.batch_size,
            **self._extra_init(),
        )

    def _extra_init(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Rebuild from ``to_dict()`` output."""
        deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
        return default_from_dict(cls, data)

    def _meta(self) -> dict[str, Any]:
        emb = self.embedder
        return {"model": emb.model, "dimension": emb.dimension}


@component
class QwenTextEmbedder(_QwenComponent):
    """Embeds one query string, with the Qwen3 query instruction; output ``embedding`` and ``meta``.

    Pass an embedder (or its ``to_config()`` dict), or ``base_url`` (+ ``model``, ``api_key``) for
    a RemoteEmbedder, or only ``model`` for a LocalEmbedder. ``query_instruction`` overrides the task.
    """

    @component.output_types(embedding=list[float], meta=dict[str, Any])
    def run(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise TypeError(
                f"QwenTextEmbedder embeds one string, got {type(text).__name__}; use QwenDocumentEmbedder for Documents"
            )
        return {"embedding": to_list(self.embedder.embed_query(text)), "meta": self._meta()}

    @component.output_types(embedding=list[float], meta=dict[str, Any])
    async def run_async(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise TypeError(
                f"QwenTextEmbedder embeds one string, got {type(text).__name__}; use QwenDocumentEmbedder for Documents"
            )
        return {"embedding": to_list(await self.embedder.aembed_query(text)), "meta": self._meta()}


@component
class QwenDocumentEmbedder(_QwenComponent):
    """Embeds Documents (no instruction) and returns copies with ``embedding`` set.

    ``meta_fields_to_embed`` are prepended to the content, joined by ``embedding_separator``, as
    Haystack's own document embedders do.
    """

    def __init__(
        self,
        embedder: Embedder | dict[str, Any] | None = None,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: Secret | None = None,
        dimensions: int | None = None,
        query_instruction: str | None = None,
        batch_size: int = 64,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
    ) -> None:
        # @component rebuilds the class, so zero-argument super() does not work here
        _QwenComponent.__init__(self, embedder, base_url=base_url, model=model, api_key=api_key, dimensions=dimensions,
                         query_instruction=query_instruction, batch_size=batch_size)
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator

    def _extra_init(self) -> dict[str, Any]:
        return {"meta_fields_to_embed": self.meta_fields_to_embed, "embedding_separator": self.embedding_separator}

    def _texts(self, documents: list[Document]) -> list[str]:
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            bad = next((i for i, d in enumerate(documents) if not isinstance(d, Document)), None) \
                if isinstance(documents, list) else None
            where = f" (item {bad} is {type(documents[bad]).__name__})" if bad is not None else ""
            raise TypeError(f"QwenDocumentEmbedder expects a list of Documents{where}; use QwenTextEmbedder for a query")
        texts = []
        for d in documents:
            fields = [str(d.meta[k]) for k in self.meta_fields_to_embed if d.meta.get(k) is not None]
            texts.append(self.embedding_separator.join([*fields, d.content or ""]))
        return texts

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        texts = self._texts(documents)
        vectors = to_lists(self.embedder.embed_documents(texts)) if texts else []
        out = [dataclasses.replace(d, embedding=v) for d, v in zip(documents, vectors, strict=True)]
        return {"documents": out, "meta": self._meta()}

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    async def run_async(self, documents: list[Document]) -> dict[str, Any]:
        texts = self._texts(documents)
        vectors = to_lists(await self.embedder.aembed_documents(texts)) if texts else []
        out = [dataclasses.replace(d, embedding=v) for d, v in zip(documents, vectors, strict=True)]
        return {"documents": out, "meta": self._meta()}
