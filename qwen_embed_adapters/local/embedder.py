"""LocalEmbedder: Qwen3-Embedding (or any sentence-transformers folder) in-process.

The base class owns instructions, validation, ordering, MRL truncation and normalisation; ``files``
finds the model and reads its folder, ``tokens`` tokenises, pads and plans batches, and a runtime
(``runtime_torch`` today) runs the forward pass and pooling.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .. import models
from ..embedder import Batch, EmbedderSettings, SettingsEmbedder
from ..errors import InvalidInputError
from ..settings import check_bool, check_choice, check_int, check_str
from ..vectors import as_text_list
from .files import DEFAULT_MODEL, MODEL_ENV, read_pooling_spec, resolve_model_path
from .tokens import (
    TokenMemo,
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


@dataclasses.dataclass(frozen=True)
class LocalEmbedderSettings(EmbedderSettings):
    """Every setting of a LocalEmbedder, as its constructor takes them (see LocalEmbedder).

    ``model`` is the name the embedder was built with (``$QWEN_EMBED_MODEL`` or the default filled in when
    None was given), ``dtype`` a name ("auto", "float32", "bfloat16", "float16"; a torch.dtype given to the
    constructor is kept by name). ``max_batch_tokens`` None means the device's default, chosen where the
    embedder is built.
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 256
    device: str = "auto"
    dtype: str = "auto"
    max_length: int = 8192
    max_batch_tokens: int | None = None
    truncate: bool = True
    attn_implementation: str | None = None
    padding_side: str | None = None
    backend: str = "torch"

    def validate(self) -> None:
        super().validate()
        check_str("device", self.device)
        check_str("dtype", self.dtype)
        check_int("max_length", self.max_length, minimum=2)
        check_int("max_batch_tokens", self.max_batch_tokens, minimum=2, optional=True)
        check_bool("truncate", self.truncate)
        check_str("attn_implementation", self.attn_implementation, optional=True)
        check_choice("padding_side", self.padding_side, ("left", "right"), optional=True)
        check_choice("backend", self.backend, BACKENDS)


class LocalEmbedder(SettingsEmbedder):
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
    on CUDA/MPS; on a CPU 1,024, where small passes measured faster, or 8,192 while other work shares the
    cores, where fewer passes measured faster: decided per call). One instance
    can be shared by several threads; forward passes run one at a time. ``backend="torch"`` is the
    only runtime today (``runtime_torch.TorchRuntime``).

    Its settings are one frozen :class:`LocalEmbedderSettings` (``self.settings``), from which
    ``to_config()`` / ``from_config()``, ``repr`` and pickling derive. Pickling sends the settings, not the
    weights: unpickling (a Ray worker, a pickled LangChain object) builds a new LocalEmbedder from them,
    which loads the model there and then, as ``embedder_from_config(emb.to_config())`` does.
    """

    engine = "local"
    settings_class = LocalEmbedderSettings
    config_kind = ("engine", "local")
    settings: LocalEmbedderSettings

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
        name = model if model is not None else str(os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
        self.settings = LocalEmbedderSettings(
            model=name, dimensions=dimensions, query_instruction=query_instruction, batch_size=batch_size,
            device=device, dtype=dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch."),
            max_length=max_length, max_batch_tokens=max_batch_tokens, truncate=truncate,
            attn_implementation=attn_implementation, padding_side=padding_side, backend=backend,
        )  # validates every setting before torch is imported
        from .runtime_torch import TorchRuntime, import_torch

        torch, transformers = import_torch()
        self.backend = backend
        self.truncate = truncate
        self.path = resolve_model_path(model)
        config = transformers.AutoConfig.from_pretrained(str(self.path))
        self.model_type: str | None = getattr(config, "model_type", None)
        self.pooling = read_pooling_spec(self.path, self.model_type)
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
        self._max_batch_tokens = max_batch_tokens
        self._local = threading.local()
        self._memo = TokenMemo()
        logger.info(
            "loaded %s from %s on %s (%s, %s, pooling %s, padding %s, max_length %d)",
            name, self.path, self.device, self.torch_dtype, self.attn_implementation,
            "+".join(self.pooling.modes), self.padding_side, self.max_length,
        )

    @property
    def max_batch_tokens(self) -> int:
        """Padded tokens per forward pass: the one given, else the device's default at this moment
        (on a CPU, 1,024 or 8,192 when other work shares the cores: ``tokens.default_batch_tokens``)."""
        return self._max_batch_tokens or default_batch_tokens(self.device)

    @max_batch_tokens.setter
    def max_batch_tokens(self, value: int | None) -> None:
        self._max_batch_tokens = value

    # ------------------------------------------------------------------ construction helpers
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
        """Tokens per text before truncation. The ids are kept a while (``TokenMemo``): embedding the same
        texts next (as ``qwen-embed serve`` does) does not tokenise them again."""
        ids = self.tokenize(texts, truncate=False)
        self._memo.put(texts, ids, self.max_length)
        return [len(x) for x in ids]

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

    def plan_passes(self, lengths: Sequence[int], *, keep_order: bool = False) -> list[Batch]:
        """The forward passes (lists of indices, longest texts first) this embedder makes of texts of these
        token counts under the current ``max_batch_tokens``; ``keep_order``: passes of consecutive texts, each
        of which it embeds in one pass too. ``qwen-embed serve`` runs a gathered call pass by pass and answers
        each request once its texts are done."""
        return plan_token_batches([min(n, self.max_length) for n in lengths], self.max_batch_tokens, self.batch_size,
                                  keep_order=keep_order)

    def _plan_batches(self, texts: list[str]) -> list[Batch]:
        known = self._memo.take(texts)
        missing = [i for i, x in enumerate(known) if x is None]
        if missing:
            for i, x in zip(missing, self.tokenize([texts[i] for i in missing]), strict=True):
                known[i] = x
        ids: list[list[int]] = known  # type: ignore[assignment]  # every None was filled
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


__all__ = ["BACKENDS", "LocalEmbedder", "LocalEmbedderSettings"]
