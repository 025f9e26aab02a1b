"""LocalEmbedder: Qwen3-Embedding (or any sentence-transformers folder) in-process on torch + transformers.

torch and transformers are imported when a LocalEmbedder is built, never when this package is imported.
The base class owns instructions, validation, ordering, MRL truncation and normalisation; this module
owns finding the model, tokenising, length-sorted token-budget batches, the forward pass and pooling.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import models
from .embedder import Batch, Embedder
from .errors import ConfigurationError, InvalidInputError, MissingDependencyError
from .vectors import as_text_list

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "Qwen/Qwen3-Embedding-0.6B"
MODEL_ENV = "QWEN_EMBED_MODEL"
_EOT = "<|endoftext|>"
_ST_POOLING_ORDER = (
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
)
_QWEN3_PROMPT_RE = re.compile(r"^Instruct: (?P<task>.*)\nQuery:$", re.DOTALL)
_DTYPE_NAMES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}


#: padded tokens per forward pass when ``max_batch_tokens`` is not given
ACCELERATOR_BATCH_TOKENS = 16384
CPU_BATCH_TOKENS = 1024


def default_batch_tokens(device: str) -> int:
    """Padded tokens per forward pass when none is given. On a CPU small passes stay in cache: 1,024
    measured ~1.2x faster than 16,384 here (benchmarks/local_throughput.py); GPUs want big batches."""
    return CPU_BATCH_TOKENS if device == "cpu" else ACCELERATOR_BATCH_TOKENS


def _import_torch() -> tuple[Any, Any]:
    """Import torch and transformers, or raise MissingDependencyError naming the ``local`` extra."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "local", "LocalEmbedder") from None
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError("transformers", "local", "LocalEmbedder") from None
    return torch, transformers


# ---------------------------------------------------------------------------- finding the model
def _modelscope_candidates(repo_id: str) -> list[Path]:
    root = Path(os.environ.get("MODELSCOPE_CACHE", "~/.cache/modelscope/hub")).expanduser()
    variants = {repo_id, repo_id.replace(".", "___")}  # ModelScope stores "0.6B" as "0___6B"
    out: list[Path] = []
    for v in sorted(variants):
        out += [root / v, root / "models" / v]
    return out


def _repo_id(model: str) -> str | None:
    """The hub id for a model name: ``org/name`` as is; a bare Qwen3-Embedding name gets ``Qwen/``."""
    if re.fullmatch(r"[\w.-]+/[\w.-]+", model):
        return model
    if re.fullmatch(r"[\w.-]+", model) and models.is_qwen3(model):
        return f"Qwen/{model}"
    return None


def _offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def resolve_model_path(model: str | None = None) -> Path:
    """Find a model folder, looking in order at: the path given, ``$QWEN_EMBED_MODEL`` (when no model
    is given), the Hugging Face cache, the ModelScope cache, then the Hugging Face hub (unless offline).

    Raises ConfigurationError naming every place it looked.
    """
    looked: list[str] = []
    if model is None:
        env = os.environ.get(MODEL_ENV, "").strip()
        if env:
            model = env
            looked.append(f"${MODEL_ENV}={env!r}")
        else:
            model = DEFAULT_MODEL
            looked.append(f"${MODEL_ENV} (not set; using the default {DEFAULT_MODEL!r})")
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"model must be a folder path or a hub id, got {model!r}")
    folder = Path(model).expanduser()
    if folder.is_dir():
        if (folder / "config.json").is_file() or (folder / "modules.json").is_file():
            return folder.resolve()
        looked.append(f"the folder {str(folder)!r} (it has no config.json)")
    else:
        looked.append(f"a local folder {str(folder)!r} (does not exist)")
    repo_id = _repo_id(model)
    if repo_id is None:
        raise ConfigurationError(
            f"model {model!r} not found; looked at: " + "; ".join(looked)
            + ". Pass the path of a model folder or a hub id such as 'Qwen/Qwen3-Embedding-0.6B'."
        )
    snapshot_download: Any = None
    hf_cache = "~/.cache/huggingface/hub"
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.constants import HF_HUB_CACHE as hf_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        pass
    if snapshot_download is not None:
        try:
            return Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:  # any miss means "not cached"
            looked.append(f"the Hugging Face cache {str(hf_cache)!r} ({repo_id})")
    for cand in _modelscope_candidates(repo_id):
        if (cand / "config.json").is_file():
            return cand
    looked.append(
        "the ModelScope cache " + ", ".join(repr(str(c)) for c in _modelscope_candidates(repo_id))
    )
    if snapshot_download is not None and not _offline():
        try:
            logger.info("downloading %s from the Hugging Face hub", repo_id)
            return Path(snapshot_download(repo_id))
        except Exception as exc:  # reported below with every other place
            looked.append(f"the Hugging Face hub ({type(exc).__name__}: {str(exc)[:200]})")
    else:
        looked.append("the Hugging Face hub (skipped: HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set)")
    raise ConfigurationError(
        f"model {model!r} not found; looked at: " + "; ".join(looked)
        + f". Download it (`huggingface-cli download {repo_id}` or "
        f"`modelscope download --model {repo_id}`), or pass the path of its folder."
    )


# ---------------------------------------------------------------------------- device, dtype, attention
def resolve_device(torch: Any, device: str = "auto") -> str:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must be available."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if not isinstance(device, str):
        raise ConfigurationError(f"device must be a str such as 'auto', 'cpu', 'cuda:0', got {device!r}")
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise ConfigurationError(f"device {device!r} is not a torch device ({exc})") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(f"device {device!r} asked for, but torch sees no CUDA device")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigurationError(f"device {device!r} asked for, but MPS is not available")
    return device


def resolve_dtype(torch: Any, dtype: Any, device: str) -> Any:
    """``auto``: bfloat16 on CUDA (float16 where bf16 is unsupported), float32 on CPU and MPS."""
    kind = device.split(":")[0]
    if dtype == "auto":
        if kind == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPE_NAMES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ConfigurationError(
            f"dtype {dtype!r} is not one of 'auto', 'float32', 'bfloat16', 'float16'"
        )
    return getattr(torch, name)


def resolve_attn_implementation(torch: Any, device: str, dtype: Any, requested: str | None = None) -> str:
    """``flash_attention_2`` on CUDA in fp16/bf16 when the flash-attn package is installed, else ``sdpa``."""
    if requested:
        return requested
    if device.startswith("cuda") and dtype in (torch.float16, torch.bfloat16):
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            return "sdpa"
        return "flash_attention_2"
    return "sdpa"


# ---------------------------------------------------------------------------- sentence-transformers folders
@dataclass
class PoolingSpec:
    """How token states become one vector, read from a sentence-transformers folder or inferred."""

    modes: tuple[str, ...] = ("lasttoken",)
    normalize: bool = True
    transformer_path: str = ""
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    source: str = "inferred"


def read_pooling_spec(folder: Path, model_type: str | None = None) -> PoolingSpec:
    """Read ``modules.json``, ``1_Pooling/config.json``, ``sentence_bert_config.json`` and the prompts.

    Without ``modules.json``: last-token pooling for Qwen2/Qwen3 models, mean pooling otherwise.
    """
    spec = PoolingSpec()
    st_cfg = folder / "config_sentence_transformers.json"
    if st_cfg.is_file():
        prompts = json.loads(st_cfg.read_text(encoding="utf-8")).get("prompts") or {}
        spec.prompts = {str(k): str(v) for k, v in prompts.items()}
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        spec.modes = ("lasttoken",) if model_type in ("qwen3", "qwen2") else ("mean",)
        if model_type not in ("qwen3", "qwen2"):
            logger.warning("%s has no modules.json; using mean pooling", folder)
        return spec
    spec.source = "modules.json"
    spec.normalize = False
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    pooling_seen = False
    for mod in modules:
        kind = str(mod.get("type", "")).rsplit(".", 1)[-1]
        path = str(mod.get("path", ""))
        if kind == "Transformer":
            spec.transformer_path = path
            sbc = folder / path / "sentence_bert_config.json"
            if sbc.is_file():
                cfg = json.loads(sbc.read_text(encoding="utf-8"))
                spec.max_seq_length = cfg.get("max_seq_length")
                spec.do_lower_case = bool(cfg.get("do_lower_case", False))
        elif kind == "Pooling":
            pooling_seen = True
            cfg = json.loads((folder / path / "config.json").read_text(encoding="utf-8"))
            modes = tuple(name for key, name in _ST_POOLING_ORDER if cfg.get(key))
            if "pooling_mode" in cfg and not modes:  # newer configs: {"pooling_mode": "mean"}
                modes = (str(cfg["pooling_mode"]).replace("last_token", "lasttoken"),)
            if not modes:
                raise ConfigurationError(f"{folder / path / 'config.json'} enables no pooling mode")
            if "weightedmean" in modes:
                raise ConfigurationError(f"{folder}: weighted-mean pooling is not supported")
            spec.modes = modes
        elif kind == "Normalize":
            spec.normalize = True
        else:
            raise ConfigurationError(
                f"{folder}/modules.json uses the module {mod.get('type')!r}, which LocalEmbedder does not "
                "implement (it supports Transformer, Pooling and Normalize)"
            )
    if not pooling_seen:
        spec.modes = ("lasttoken",) if model_type in ("qwen3", "qwen2") else ("cls",)
    return spec


# ---------------------------------------------------------------------------- the embedder
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
    can be shared by several threads; forward passes run one at a time.
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
    ) -> None:
        for name, value in (("max_length", max_length), ("max_batch_tokens", max_batch_tokens)):
            if name == "max_batch_tokens" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigurationError(f"{name} must be an int >= 2, got {value!r}")
        if padding_side not in (None, "left", "right"):
            raise ConfigurationError(f"padding_side must be 'left', 'right' or None, got {padding_side!r}")
        torch, transformers = _import_torch()
        self._torch = torch
        self._model_arg = model
        self._device_arg = device
        self._dtype_arg = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
        self._max_length_arg = max_length
        self._attn_arg = attn_implementation
        self._padding_arg = padding_side
        self._max_batch_tokens_arg = max_batch_tokens
        self.max_batch_tokens = max_batch_tokens or ACCELERATOR_BATCH_TOKENS  # set per device below
        self.truncate = bool(truncate)

        self.path = resolve_model_path(model)
        config = transformers.AutoConfig.from_pretrained(str(self.path))
        self.model_type: str | None = getattr(config, "model_type", None)
        self.pooling = read_pooling_spec(self.path, self.model_type)
        hidden = int(config.hidden_size)
        name = model if model is not None else str(os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
        super().__init__(
            name,
            dimensions=dimensions,
            query_instruction=query_instruction,
            batch_size=batch_size,
            max_concurrency=1,  # one model: batches run one after another
            native_dim=hidden * len(self.pooling.modes),
        )
        self._query_prefix: str | None = None
        self._document_prefix = self.pooling.prompts.get("document", "") or ""
        if query_instruction is None:
            self._set_default_instruction()

        self.device = resolve_device(torch, device)
        if max_batch_tokens is None:
            self.max_batch_tokens = default_batch_tokens(self.device)
        self.torch_dtype = resolve_dtype(torch, dtype, self.device)
        self.attn_implementation = resolve_attn_implementation(
            torch, self.device, self.torch_dtype, attn_implementation
        )
        model_dir = self.path / self.pooling.transformer_path
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
        default_side = "left" if "lasttoken" in self.pooling.modes else "right"
        self.padding_side = padding_side or default_side
        self.max_length = self._effective_max_length(config, max_length)
        self._pad_id = self._find_pad_id()
        self._append_eot_id = self._missing_eot_id()

        dtype_kw = "dtype" if _version_at_least(transformers.__version__, (4, 56)) else "torch_dtype"
        load_kw: dict[str, Any] = {dtype_kw: self.torch_dtype, "attn_implementation": self.attn_implementation}
        try:
            self._model = transformers.AutoModel.from_pretrained(str(model_dir), **load_kw)
        except (ValueError, ImportError) as exc:
            if attn_implementation is not None or self.attn_implementation == "eager":
                raise
            logger.info("%s: %s unavailable (%s); using eager attention", name, self.attn_implementation, exc)
            self.attn_implementation = "eager"
            load_kw["attn_implementation"] = "eager"
            self._model = transformers.AutoModel.from_pretrained(str(model_dir), **load_kw)
        self._model.to(self.device)
        self._model.eval()
        self._model_lock = threading.Lock()
        self._tok_lock = threading.Lock()
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
            "max_batch_tokens", "truncate", "batch_size", "attn_implementation", "padding_side",
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

    def _find_pad_id(self) -> int:
        tok = self.tokenizer
        for cand in (tok.pad_token_id, tok.convert_tokens_to_ids(_EOT) if _EOT in tok.get_vocab() else None,
                     tok.eos_token_id, 0):
            if cand is not None:
                return int(cand)
        return 0  # pragma: no cover

    def _missing_eot_id(self) -> int | None:
        """Qwen3 pools at ``<|endoftext|>``: return its id when the tokenizer does not append it itself."""
        if "lasttoken" not in self.pooling.modes or _EOT not in self.tokenizer.get_vocab():
            return None
        eot = int(self.tokenizer.convert_tokens_to_ids(_EOT))
        ids = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        if ids and ids[-1] == eot:
            return None
        logger.info("%s: the tokenizer does not append %s; appending it", self.model, _EOT)
        return eot

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
        cut = self.truncate if truncate is None else truncate
        items = [t.lower() for t in texts] if self.pooling.do_lower_case else list(texts)
        with self._tok_lock:  # a fast tokenizer's truncation state is not thread-safe
            enc = self.tokenizer(
                items,
                add_special_tokens=True,
                truncation=cut,
                max_length=self.max_length if cut else None,
                return_attention_mask=False,
                return_token_type_ids=False,
                verbose=False,
            )
        ids: list[list[int]] = [list(x) for x in enc["input_ids"]]
        eot = self._append_eot_id
        if eot is not None:
            ids = [(x[: self.max_length - 1] if cut else x) + [eot] for x in ids]
        return ids

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
        torch = self._torch
        cache: dict[str, list[int]] | None = getattr(self._local, "cache", None)
        if cache is not None and all(t in cache for t in texts):
            ids = [cache[t] for t in texts]
        else:
            ids = self.tokenize(texts)
        input_ids, mask = self._pad(ids)
        with self._model_lock, torch.inference_mode():
            input_ids = input_ids.to(self.device)
            mask = mask.to(self.device)
            out = self._model(input_ids=input_ids, attention_mask=mask)
            hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
            pooled = pool_hidden_states(torch, hidden, mask, self.pooling.modes)
            result: np.ndarray = pooled.float().cpu().numpy()
        return result

    def _pad(self, ids: list[list[int]]) -> tuple[Any, Any]:
        torch = self._torch
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            n = len(x)
            if self.padding_side == "left":
                input_ids[row, width - n:] = torch.tensor(x, dtype=torch.long)
                mask[row, width - n:] = 1
            else:
                input_ids[row, :n] = torch.tensor(x, dtype=torch.long)
                mask[row, :n] = 1
        return input_ids, mask

    def close(self) -> None:
        """Release worker threads. The model stays loaded until the embedder is garbage-collected."""
        super().close()


def plan_token_batches(lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int) -> list[Batch]:
    """Sort by length (longest first) and cut batches whose padded size stays within ``max_batch_tokens``.

    A text longer than the budget gets a batch of its own. Returns batches of original indices.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[Batch] = []
    current: Batch = []
    width = 0
    for i in order:
        if current and ((len(current) + 1) * width > max_batch_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current = []
        if not current:
            width = max(1, lengths[i])
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pool_hidden_states(torch: Any, hidden: Any, mask: Any, modes: Sequence[str]) -> Any:
    """Pool (batch, seq, dim) token states into (batch, dim * len(modes)), as sentence-transformers does."""
    parts = []
    m = mask.unsqueeze(-1).to(hidden.dtype)
    for mode in modes:
        if mode == "lasttoken":
            # The last position whose mask is 1: the final column with left padding, sum-1 with right.
            seq = mask.shape[1]
            last = seq - 1 - torch.flip(mask, dims=[1]).argmax(dim=1)
            parts.append(hidden[torch.arange(hidden.shape[0], device=hidden.device), last])
        elif mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "mean":
            parts.append((hidden * m).sum(1) / torch.clamp(m.sum(1), min=1e-9))
        elif mode == "mean_sqrt_len":
            parts.append((hidden * m).sum(1) / torch.sqrt(torch.clamp(m.sum(1), min=1e-9)))
        elif mode == "max":
            masked = hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min)
            parts.append(masked.max(dim=1).values)
        else:
            raise ConfigurationError(f"unknown pooling mode {mode!r}")
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _version_at_least(version: str, wanted: tuple[int, ...]) -> bool:
    nums = []
    for piece in version.split(".")[: len(wanted)]:
        digits = re.match(r"\d+", piece)
        nums.append(int(digits.group()) if digits else 0)
    return tuple(nums) >= wanted


__all__ = [
    "DEFAULT_MODEL",
    "LocalEmbedder",
    "PoolingSpec",
    "plan_token_batches",
    "pool_hidden_states",
    "read_pooling_spec",
    "resolve_attn_implementation",
    "resolve_device",
    "resolve_dtype",
    "resolve_model_path",
]
