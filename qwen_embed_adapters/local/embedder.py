"""LocalEmbedder: Qwen3-Embedding (or any sentence-transformers folder) in-process.

The base class owns instructions, validation, ordering, MRL truncation and normalisation; ``files``
finds the model and reads its folder, ``tokens`` tokenises, pads and plans batches, and a runtime
(``runtime_torch`` today) runs the forward pass and pooling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .. import models
from ..embedder import Batch, Embedder
from ..errors import ConfigurationError, InvalidInputError
from ..vectors import as_text_list
from .files import DEFAULT_MODEL, MODEL_ENV, read_pooling_spec, resolve_model_path
from .tokens import (
    ACCELERATOR_BATCH_TOKENS,
    TokenPipeline,
    default_batch_tokens,
    find_pad_id,
    missing_eot_id,
    pad_batch,
    plan_token_batches,
)

logger = logging.getLogger("qwen_embed_adapters.local")

_QWEN3_PROMPT_RE = re.compile(r"^Instruct: (?P<task>.*)\nQuery:$", re.DOTALL)
BACKENDS = ("torch",)


def _check_settings(max_length: Any, max_batch_tokens: Any, padding_side: Any, backend: Any) -> None:
    for name, value in (("max_length", max_length), ("max_batch_tokens", max_batch_tokens)):
        if name == "max_batch_tokens" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ConfigurationError(f"{name} must be an int >= 2, got {value!r}")
    if padding_side not in (None, "left", "right"):
        raise ConfigurationError(f"padding_side must be 'left', 'right' or None, got {padding_side!r}")
    if backend not in BACKENDS:
        raise ConfigurationError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")


class LocalEmbedder(Embedder):
    """Qwen3-Embedding (or a sentence-transformers model folder) run in-process with torch.

    Example::

        emb = LocalEmbedder("Qwen/Qwen3-Embedding-0.6B", dimensions=512)   # cuda > mps > cpu
        docs = emb.embed_documents(["Beijing is the capital of China", "机器学习"])
        q = emb.embed_query("capital of China")                            # wrapped in Instruct:/Query:

    ``model`` is a folder, a hub id or None (``$QWEN_EMBED_MODEL``, else Qwen/Qwen3-Embedding-0.6B).
    Qwen3 models are padded on the left and pooled at the last token (the ``<|endoftext|>`` the
    tokenizer appends); other models follow their own sentence-transformers files. Inputs longer than
    ``max_length`` tokens are truncated, or refused with InvalidInputError when ``truncate=False``.
    Batches are sorted by length and hold at most ``max_batch_tokens`` padded tokens (default 16,384
    on CUDA/MPS, 1,024 on a CPU, where small passes measured faster). One instance
    can be shared by several threads; forward passes run one at a time. ``backend="torch"`` is the
    only runtime today (``runtime_torch.TorchRuntime``).
    """

    engine = "local"

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "auto",
        dtype: Any = "auto",
        dimensions: int | None = None,
        query_instruction: str | None = None,
        max_length: int = 8192,
        max_batch_tokens: int | None = None,
        truncate: bool = True,
        batch_size: int = 256,
        attn_implementation: str | None = None,
        padding_side: str | None = None,
        backend: str = "torch",
    ) -> None:
        _check_settings(max_length, max_batch_tokens, padding_side, backend)
        from .runtime_torch import TorchRuntime, import_torch

        torch, transformers = import_torch()
        self._device_arg, self._max_length_arg, self._max_batch_tokens_arg = device, max_length, max_batch_tokens
        self._dtype_arg = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
        self._attn_arg, self._padding_arg, self.backend = attn_implementation, padding_side, backend
        self.truncate = bool(truncate)
        self.path = resolve_model_path(model)
        config = transformers.AutoConfig.from_pretrained(str(self.path))
        self.model_type: str | None = getattr(config, "model_type", None)
        self.pooling = read_pooling_spec(self.path, self.model_type)
        name = model if model is not None else str(os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
        super().__init__(
            name, dimensions=dimensions, query_instruction=query_instruction, batch_size=batch_size,
            max_concurrency=1,  # one model: batches run one after another
            native_dim=int(config.hidden_size) * len(self.pooling.modes),
        )
        self._query_prefix: str | None = None
        self._document_prefix = self.pooling.prompts.get("document", "") or ""
        if query_instruction is None:
            self._set_default_instruction()
        model_dir = self.path / self.pooling.transformer_path
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
        self.padding_side = padding_side or ("left" if "lasttoken" in self.pooling.modes else "right")
        self.max_length = self._effective_max_length(config, max_length)
        self._pad_id = find_pad_id(self.tokenizer)
        self._tokens = TokenPipeline(
            self.tokenizer, self.max_length, do_lower_case=self.pooling.do_lower_case,
            append_id=missing_eot_id(self.tokenizer, self.pooling.modes, name),
        )
        self._runtime = TorchRuntime(model_dir, device=device, dtype=dtype, attn_implementation=attn_implementation)
        self._torch = torch
        self.device = self._runtime.device
        self.torch_dtype = self._runtime.dtype
        self.attn_implementation = self._runtime.attn_implementation
        self.max_batch_tokens = max_batch_tokens or default_batch_tokens(self.device)
        self._local = threading.local()
        logger.info(
            "loaded %s from %s on %s (%s, %s, pooling %s, padding %s, max_length %d)",
            name, self.path, self.device, self.torch_dtype, self.attn_implementation,
            "+".join(self.pooling.modes), self.padding_side, self.max_length,
        )

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> LocalEmbedder:
        """Rebuild from ``to_config()`` output (with or without its ``engine`` key)."""
        cfg = dict(cfg)
        engine = cfg.pop("engine", "local")
        if engine != "local":
            raise ConfigurationError(f"LocalEmbedder.from_config got engine {engine!r}")
        allowed = {
            "model", "device", "dtype", "dimensions", "query_instruction", "max_length",
            "max_batch_tokens", "truncate", "batch_size", "attn_implementation", "padding_side", "backend",
        }
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise ConfigurationError(f"unknown LocalEmbedder settings: {', '.join(unknown)}")
        return cls(**cfg)

    def to_config(self) -> dict[str, Any]:
        """Plain JSON: engine, model, device, dtype, dimensions, instruction, lengths and batching."""
        cfg: dict[str, Any] = {
            "engine": "local",
            "model": self.model,
            "device": self._device_arg,
            "dtype": self._dtype_arg,
            "dimensions": self.dimensions,
            "query_instruction": self._explicit_instruction,
            "max_length": self._max_length_arg,
            "max_batch_tokens": self._max_batch_tokens_arg,
        }
        if not self.truncate:
            cfg["truncate"] = False
        if self._attn_arg:
            cfg["attn_implementation"] = self._attn_arg
        if self._padding_arg:
            cfg["padding_side"] = self._padding_arg
        if self.backend != "torch":
            cfg["backend"] = self.backend
        return cfg

    def _set_default_instruction(self) -> None:
        query_prompt = self.pooling.prompts.get("query")
        if query_prompt:
            m = _QWEN3_PROMPT_RE.match(query_prompt)
            if m:
                self.query_instruction = m.group("task")
            else:
                self.query_instruction = ""
                self._query_prefix = query_prompt
        elif self.model_type == "qwen3" and self.pooling.modes == ("lasttoken",) and not self.query_instruction:
            self.query_instruction = models.DEFAULT_QWEN3_INSTRUCTION

    def _effective_max_length(self, config: Any, requested: int) -> int:
        limits = [requested]
        if self.pooling.max_seq_length:
            limits.append(int(self.pooling.max_seq_length))
        positions = getattr(config, "max_position_embeddings", None)
        if positions and getattr(config, "model_type", "") in ("bert", "roberta", "xlm-roberta", "distilbert"):
            # learned absolute positions: nothing past them exists (roberta keeps 2 for padding)
            limits.append(int(positions) - (2 if "roberta" in config.model_type else 0))
        model_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and 0 < model_max < 1_000_000:
            limits.append(model_max)
        return max(2, min(limits))

    # ------------------------------------------------------------------ queries and documents
    def format_queries(self, texts: Iterable[str], instruction: str | None = None) -> list[str]:
        """Qwen3's ``Instruct: {task}\\nQuery:{query}``, or the model's own query prompt as a prefix."""
        if instruction is None and self._query_prefix is not None:
            return [self._query_prefix + t for t in as_text_list(texts, what="queries")]
        return super().format_queries(texts, instruction)

    def embed_documents(self, texts: Iterable[str]) -> np.ndarray:
        """Embed documents (with the model's document prompt, if its folder defines one)."""
        return self._encode(self._documents(texts))

    async def aembed_documents(self, texts: Iterable[str]) -> np.ndarray:
        """Async twin of ``embed_documents``."""
        return await self._aencode(self._documents(texts))

    def _documents(self, texts: Iterable[str]) -> list[str]:
        items = as_text_list(texts)
        return [self._document_prefix + t for t in items] if self._document_prefix else items

    # ------------------------------------------------------------------ tokens
    def tokenize(self, texts: Sequence[str], *, truncate: bool | None = None) -> list[list[int]]:
        """Token ids per text as the model sees them (end token included, truncated unless asked not to)."""
        return self._tokens(texts, truncate=self.truncate if truncate is None else truncate)

    def token_counts(self, texts: Sequence[str], *, truncate: bool | None = None) -> list[int]:
        """How many tokens each text becomes (``truncate=False``: before truncation)."""
        return [len(x) for x in self.tokenize(texts, truncate=truncate)]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.token_counts(texts, truncate=False)

    @property
    def max_input_tokens(self) -> int:
        return self.max_length

    # ------------------------------------------------------------------ batching and the forward pass
    def _encode(self, texts: list[str]) -> np.ndarray:
        try:
            return super()._encode(texts)
        finally:
            self._local.cache = None

    async def _aencode(self, texts: list[str]) -> np.ndarray:
        # Tokenising, planning and every forward pass happen in a worker thread: the loop never blocks.
        return await asyncio.to_thread(self._encode, texts)

    def _plan_batches(self, texts: list[str]) -> list[Batch]:
        ids = self.tokenize(texts)
        if not self.truncate:
            for i, x in enumerate(ids):
                if len(x) > self.max_length:
                    raise InvalidInputError(
                        f"texts[{i}] is {len(x)} tokens long, above max_length={self.max_length}; "
                        "shorten it or build the embedder with truncate=True",
                        index=i,
                    )
        self._local.cache = dict(zip(texts, ids, strict=True))
        return plan_token_batches([len(x) for x in ids], self.max_batch_tokens, self.batch_size)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        cache: dict[str, list[int]] | None = getattr(self._local, "cache", None)
        if cache is not None and all(t in cache for t in texts):
            ids = [cache[t] for t in texts]
        else:
            ids = self.tokenize(texts)
        input_ids, mask = pad_batch(ids, self._pad_id, self.padding_side)
        return self._runtime.run(input_ids, mask, self.pooling.modes)

    def close(self) -> None:
        """Release worker threads. The model stays loaded until the embedder is garbage-collected."""
        super().close()


__all__ = ["ACCELERATOR_BATCH_TOKENS", "BACKENDS", "LocalEmbedder"]
