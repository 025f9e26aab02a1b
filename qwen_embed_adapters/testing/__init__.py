"""Helpers for tests and offline use: a deterministic fake embedder and tiny random Qwen3 models."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..embedder import EmbedderSettings, SettingsEmbedder
from ..errors import MissingDependencyError
from ..settings import check_int


@dataclasses.dataclass(frozen=True)
class FakeEmbedderSettings(EmbedderSettings):
    """Every setting of a FakeEmbedder. ``native_dim`` None means ``dimensions``."""

    model: str = "fake-embedding"
    dimensions: int | None = 64
    max_concurrency: int = 1
    native_dim: int | None = None

    def validate(self) -> None:
        super().validate()
        check_int("max_concurrency", self.max_concurrency, minimum=1)
        check_int("native_dim", self.native_dim, minimum=1, optional=True)


class FakeEmbedder(SettingsEmbedder):
    """A deterministic embedder with no model and no network, for tests and examples.

    Each text maps to a fixed unit vector built from hashed character trigrams and words, so
    texts sharing words score higher than unrelated ones. Same text, same vector, in every process.

    >>> emb = FakeEmbedder(dimensions=64)
    >>> emb.embed_documents(["hello world"]).shape
    (1, 64)
    """

    engine = "fake"
    settings_class = FakeEmbedderSettings
    config_kind = ("engine", "fake")
    settings: FakeEmbedderSettings

    def __init__(
        self,
        model: str = "fake-embedding",
        *,
        dimensions: int | None = 64,
        query_instruction: str | None = None,
        batch_size: int = 64,
        max_concurrency: int = 1,
        native_dim: int | None = None,
    ) -> None:
        dims = 64 if dimensions is None else dimensions
        self.settings = FakeEmbedderSettings(
            model=model, dimensions=dims, query_instruction=query_instruction, batch_size=batch_size,
            max_concurrency=max_concurrency, native_dim=native_dim,
        )
        super().__init__(
            model,
            dimensions=dims,
            query_instruction=query_instruction,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            native_dim=native_dim if native_dim is not None else dims,
        )
        self.calls: list[list[str]] = []  # every raw batch, for tests that check what was embedded

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        width = self._native_dim or self.dimensions or 64
        return np.stack([_hash_vector(t, width) for t in texts])


_TABLES: dict[int, np.ndarray] = {}


def _table(width: int) -> np.ndarray:
    # One fixed random row per feature bucket: dense vectors whose every prefix is non-zero, so
    # MRL truncation behaves as with a real model.
    if width not in _TABLES:
        _TABLES[width] = np.random.default_rng(20250605).standard_normal((4096, width)).astype(np.float32)
    return _TABLES[width]


def _hash_vector(text: str, width: int) -> np.ndarray:
    low = text.lower()
    feats = re.findall(r"\w+", low) * 2 + [low[i : i + 3] for i in range(max(1, len(low) - 2))]
    rows = [
        int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=4).digest(), "little") % 4096
        for f in feats
    ]
    vec = _table(width)[rows].sum(axis=0)
    return (vec / np.linalg.norm(vec)).astype(np.float32)


# ---------------------------------------------------------------------------- tiny random Qwen3 models
# Qwen2/Qwen3's pre-tokenizer split (tokenizer.json of the Qwen3 models).
_QWEN_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_TINY_CORPUS = (
    "the quick brown fox jumps over the lazy dog",
    "Beijing is the capital of China",
    "machine learning, deep learning and vector databases",
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:",
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".',
    "机器学习 深度学习 向量数据库 今天天气真好 阳光明媚,适合散步",
    "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
)
_ROPE_THETA: dict[str, Any] = {"rope_theta": 1000000.0}  # transformers 5 files it under rope_parameters
_TINY_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")


def _build_tiny_qwen3_tokenizer(path: str | os.PathLike[str], *, append_eos: bool = True) -> dict[str, int]:
    """Write a small byte-level BPE tokenizer that behaves like Qwen3-Embedding's into ``path``.

    Same normaliser and pre-tokenizer as Qwen3, ``padding_side="left"``, ``<|endoftext|>`` as the pad
    token and appended to every sequence by the tokenizer itself (``append_eos=False`` leaves it out,
    as the Qwen3-Reranker tokenizer and older Qwen3-Embedding uploads do), ``eos_token`` ``<|im_end|>``.
    Deterministic; a few hundred tokens. Returns the ids of the special tokens.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=512,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_TINY_CORPUS) * 3, trainer)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in _TINY_SPECIAL_TOKENS])
    ids = {s: int(tok.token_to_id(s) or 0) for s in _TINY_SPECIAL_TOKENS}
    if append_eos:
        tok.post_processor = processors.TemplateProcessing(
            single="$A:0 <|endoftext|>:0",
            pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
            special_tokens=[("<|endoftext|>", ids["<|endoftext|>"])],
        )
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "padding_side": "left",
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "bos_token": None,
        "add_prefix_space": False,
        "model_max_length": 32768,
        "clean_up_tokenization_spaces": False,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return ids


# The transformer shapes of Qwen/Qwen3-Embedding-* as their config.json files give them. Speed depends on
# these, not on the values of the weights. "tiny" is the small case the tests build in a second.
QWEN3_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 32768, "tie_word_embeddings": True,
    },
    "0.6B": {
        "vocab_size": 151669, "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
        "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
    },
    "4B": {
        "vocab_size": 151665, "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960,
        "tie_word_embeddings": True,
    },
    "8B": {
        "vocab_size": 151665, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960,
        "tie_word_embeddings": False,
    },
}


def qwen3_config(size: str = "0.6B", **overrides: Any) -> Any:
    """The ``transformers.Qwen3Config`` of Qwen3-Embedding-``size`` (``"0.6B"``, ``"4B"``, ``"8B"``, ``"tiny"``).

    The tiny tokenizer's special-token ids are passed in by ``make_qwen3``; without them the ids are
    Qwen3's own (151643 ``<|endoftext|>``). Raises ``ValueError`` naming the sizes for an unknown one.
    """
    from transformers import Qwen3Config

    if size not in QWEN3_SIZES:
        raise ValueError(f"unknown Qwen3 size {size!r}; choose one of {sorted(QWEN3_SIZES)}")
    fields: dict[str, Any] = {
        "vocab_size": 151669, "rms_norm_eps": 1e-6, "bos_token_id": 151643, "eos_token_id": 151643,
        "pad_token_id": 151643, "attention_bias": False, "architectures": ["Qwen3ForCausalLM"],
    }
    fields.update(QWEN3_SIZES[size])
    fields.update(overrides)
    return Qwen3Config(**fields, **_ROPE_THETA)


def make_qwen3(
    path: str | os.PathLike[str], size: str = "0.6B", seed: int = 0, *, dtype: str = "float32", layers: int | None = None
) -> str:
    """Write a random Qwen3 embedding model with the real shape of Qwen3-Embedding-``size`` to ``path``.

    Same layout as the real repository (safetensors, ``modules.json``, ``1_Pooling`` last-token,
    ``2_Normalize``, query/document prompts, a tokenizer that pads on the left and appends
    ``<|endoftext|>``), so LocalEmbedder and sentence-transformers both load it. The tokenizer is the
    tiny one (a few hundred tokens, the real 151k vocabulary cannot be downloaded here) but the
    embedding matrix has the real vocabulary size: compute costs what the real model's costs, since the
    vocabulary only enters through the embedding lookup. ``size="tiny"`` is ``make_tiny_qwen3``.
    ``dtype`` is the dtype of the saved weights (the real uploads are bfloat16). Returns ``path``.
    0.6B takes about 2.4 GB in float32; 4B and 8B are 16 and 30 GB: build them only where that fits.
    ``layers`` keeps every layer's shape and changes only how many there are (a benchmark that must fit
    in minutes on a small CPU runs 2 of the 28: per-token cost scales with the count); None is the real depth.
    """
    try:
        import torch
        from transformers import Qwen3Model
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(exc.name or "torch", "local", "make_qwen3") from None
    if size not in QWEN3_SIZES:
        raise ValueError(f"unknown Qwen3 size {size!r}; choose one of {sorted(QWEN3_SIZES)}")
    if layers is not None and (isinstance(layers, bool) or not isinstance(layers, int) or layers < 1):
        raise ValueError(f"layers must be a positive int or None, got {layers!r}")
    out = Path(path)
    depth = {} if layers is None else {"num_hidden_layers": layers}
    config = _save_qwen3(out, Qwen3Model, seed, size=size, append_eos=True, dtype=getattr(torch, dtype), **depth)
    _write_sentence_transformers_files(out, pooling="lasttoken", width=config.hidden_size)
    return str(out)


def make_tiny_qwen3(path: str | os.PathLike[str], seed: int = 0) -> str:
    """Write a small random Qwen3 embedding model (hidden size 64, 2 layers) and its tokenizer to ``path``.

    ``make_qwen3(path, size="tiny", seed=seed)``. It loads like Qwen3-Embedding: ``AutoModel`` gives a
    ``Qwen3Model``, the tokenizer pads on the left and appends ``<|endoftext|>``, and the folder
    carries the same sentence-transformers files (last-token pooling, Normalize, query/document
    prompts). Weights are safetensors, identical for the same ``seed``. Needs the ``local`` extra
    (torch, transformers). Returns ``path`` as a str.

    >>> folder = make_tiny_qwen3("/tmp/tiny-qwen3")  # doctest: +SKIP
    >>> LocalEmbedder(folder).dimension  # doctest: +SKIP
    64
    """
    return make_qwen3(path, size="tiny", seed=seed)


def _save_qwen3(
    out: Path, model_cls: Any, seed: int, *, size: str = "tiny", append_eos: bool, dtype: Any = None,
    **config_overrides: Any,
) -> Any:
    """Write the tiny tokenizer and a ``model_cls`` of shape ``size`` seeded with ``seed`` to ``out``."""
    import torch

    ids = _build_tiny_qwen3_tokenizer(out, append_eos=append_eos)
    vocab = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    if size == "tiny":
        config_overrides.setdefault("vocab_size", max(len(vocab), *ids.values()) + 1)
    config = qwen3_config(
        size,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        **config_overrides,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    if dtype is not None:
        model.to(dtype)
    model.eval()
    model.save_pretrained(str(out), safe_serialization=True)
    _add_legacy_config_keys(out / "config.json")
    return config


def _add_legacy_config_keys(path: Path) -> None:
    """Also write ``rope_theta`` and ``torch_dtype`` at the top level, as the real repositories do.

    transformers 5 saves them as ``rope_parameters`` and ``dtype``; a transformers 4.x reader (the
    one Infinity, optimum and older sentence-transformers installs pin) ignores those and would fall
    back to RoPE theta 10,000 instead of Qwen3's 1,000,000, i.e. compute different vectors.
    """
    cfg = json.loads(path.read_text(encoding="utf-8"))
    rope = cfg.get("rope_parameters") or {}
    if "rope_theta" in rope:
        cfg.setdefault("rope_theta", rope["rope_theta"])
    if "dtype" in cfg:
        cfg.setdefault("torch_dtype", cfg["dtype"])
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_sentence_transformers_files(out: Path, *, pooling: str, width: int = 64) -> None:
    """The sentence-transformers files Qwen3-Embedding ships: Transformer, Pooling, Normalize, prompts."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "2_Normalize").mkdir(exist_ok=True)
    pool = {
        "word_embedding_dimension": width,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": pooling == "lasttoken",
        "include_prompt": True,
    }
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pool, indent=2), encoding="utf-8")
    (out / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 8192, "do_lower_case": False}, indent=2), encoding="utf-8"
    )
    st_config = {
        "prompts": {
            "query": "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:",
            "document": "",
        },
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }
    (out / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2), encoding="utf-8")


def make_tiny_qwen3_reranker(path: str | os.PathLike[str], seed: int = 0) -> str:
    """Write a small random Qwen3-Reranker (a ``Qwen3ForCausalLM``, hidden size 64, 2 layers) to ``path``.

    It loads like Qwen/Qwen3-Reranker-*: ``AutoModelForCausalLM`` with tied word embeddings, a tokenizer
    that pads on the left and appends nothing, and ``yes``/``no`` as single tokens. The weights are drawn
    wider than usual (``initializer_range=0.2``) so that P("yes") spreads over (0, 1) instead of sitting
    at 0.5, which makes score and order comparisons meaningful. Same ``seed``, same weights. Needs the
    ``local`` extra. Returns ``path`` as a str.

    >>> folder = make_tiny_qwen3_reranker("/tmp/tiny-reranker")  # doctest: +SKIP
    >>> LocalReranker(folder).score("capital of China?", ["Beijing is the capital of China"])  # doctest: +SKIP
    """
    try:
        import torch  # noqa: F401 - imported first so that a missing torch is named as such
        from transformers import Qwen3ForCausalLM
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(exc.name or "torch", "local", "make_tiny_qwen3_reranker") from None

    out = Path(path)
    # Wider initial weights than the default 0.02 spread P("yes") over (0, 1).
    _save_qwen3(out, Qwen3ForCausalLM, seed, append_eos=False, initializer_range=0.2)
    return str(out)


__all__ = [
    "FakeEmbedder",
    "FakeEmbedderSettings",
    "QWEN3_SIZES",
    "make_qwen3",
    "make_tiny_qwen3",
    "make_tiny_qwen3_reranker",
    "qwen3_config",
]
