"""The torch runtime: device, dtype and attention choice, loading the transformer, the forward pass, pooling.

A runtime takes one padded batch (``input_ids`` and ``attention_mask``, numpy int64 of shape
(batch, width)) and returns pooled float32 vectors. Its whole interface is ``device``, ``dtype_name``
and ``run(input_ids, mask, modes)``: an ONNX runtime is one more file with the same three members.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError, MissingDependencyError
from . import tokens

logger = logging.getLogger("qwen_embed_adapters.local")

#: on a shared CPU (``tokens.cpu_is_shared``), a forward pass of at most this many padded tokens runs on one
#: intra-op thread
ONE_THREAD_PASS_TOKENS = 1024

_DTYPE_NAMES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}


def import_torch(owner: str = "LocalEmbedder") -> tuple[Any, Any]:
    """Import torch and transformers, or raise MissingDependencyError naming the ``local`` extra."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "local", owner) from None
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError("transformers", "local", owner) from None
    return torch, transformers


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


class TorchRuntime:
    """A transformers ``AutoModel`` (``AutoModelForCausalLM`` with ``causal_lm=True``) on one device.

    ``device``, ``dtype`` and ``attn_implementation`` as LocalEmbedder takes them; an explicit device
    torch cannot use raises ConfigurationError. Forward passes run one at a time; on a shared CPU a pass of at
    most ``one_thread_pass_tokens`` padded tokens (default ``ONE_THREAD_PASS_TOKENS``, 0: never) runs on one
    intra-op thread.
    """

    name = "torch"

    def __init__(
        self, model_dir: Path | str, *, device: str = "auto", dtype: Any = "auto",
        attn_implementation: str | None = None, causal_lm: bool = False, owner: str = "LocalEmbedder",
    ) -> None:
        torch, transformers = import_torch(owner)
        self.torch = torch
        self.device = resolve_device(torch, device)
        self.dtype = resolve_dtype(torch, dtype, self.device)
        self.attn_implementation = resolve_attn_implementation(torch, self.device, self.dtype, attn_implementation)
        self.lock = threading.Lock()
        self.one_thread_pass_tokens = ONE_THREAD_PASS_TOKENS
        cls = transformers.AutoModelForCausalLM if causal_lm else transformers.AutoModel
        dtype_kw = "dtype" if _version_at_least(transformers.__version__, (4, 56)) else "torch_dtype"
        load_kw: dict[str, Any] = {dtype_kw: self.dtype, "attn_implementation": self.attn_implementation}
        try:
            self.model = cls.from_pretrained(str(model_dir), **load_kw)
        except (ValueError, ImportError) as exc:
            if attn_implementation is not None or self.attn_implementation == "eager":
                raise
            logger.info("%s: %s unavailable (%s); using eager attention", model_dir, self.attn_implementation, exc)
            self.attn_implementation = "eager"
            load_kw["attn_implementation"] = "eager"
            self.model = cls.from_pretrained(str(model_dir), **load_kw)
        self.model.to(self.device)
        self.model.eval()

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def run(self, input_ids: np.ndarray, mask: np.ndarray, modes: Sequence[str]) -> np.ndarray:
        """Pooled vectors (float32, one row per input row) of one padded batch."""
        torch = self.torch
        watch = tokens.CpuPassWatch() if self.device == "cpu" else contextlib.nullcontext()
        with self.lock, torch.inference_mode(), self._intra_op_threads(input_ids.size), watch:
            ids_t = torch.from_numpy(input_ids).to(self.device)
            mask_t = torch.from_numpy(mask).to(self.device)
            out = self.model(input_ids=ids_t, attention_mask=mask_t)
            hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
            pooled = pool_hidden_states(torch, hidden, mask_t, modes)
            result: np.ndarray = pooled.float().cpu().numpy()
        return result

    @contextlib.contextmanager
    def _intra_op_threads(self, padded_tokens: int) -> Iterator[None]:
        """One intra-op thread for a pass of at most ``one_thread_pass_tokens`` on a shared CPU, torch's own
        count otherwise (restored after the pass; OpenMP keeps the count per calling thread).

        Every parallel region of a pass ends only when each of our threads has had a core; with other work
        on the cores a small pass mostly waits for that. Measured on 2 cores beside two busy loops (0.6B
        layer shape, 1 layer, issue 30): one thread ran 1 x 16 tokens 2.4-4.8x faster than two (p99 36-39 ms
        against 157-168), 4 x 64 1.4-1.5x, 8 x 128 1.1x; 16 x 256 and 32 x 256 ran at 0.74-0.81x, so bigger
        passes keep every thread (benchmarks/cpu_threads.py).
        """
        torch = self.torch
        threads = torch.get_num_threads()
        small = self.device == "cpu" and padded_tokens <= self.one_thread_pass_tokens
        one = small and threads > 1 and tokens.cpu_is_shared()
        if one:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if one:
                torch.set_num_threads(threads)


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
    "ONE_THREAD_PASS_TOKENS",
    "TorchRuntime",
    "import_torch",
    "pool_hidden_states",
    "resolve_attn_implementation",
    "resolve_device",
    "resolve_dtype",
]
