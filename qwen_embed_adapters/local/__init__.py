"""LocalEmbedder: Qwen3-Embedding (or any sentence-transformers folder) in-process.

torch and transformers are imported when a LocalEmbedder is built, never when this package is imported.

- ``files``: finding the model folder and reading its sentence-transformers files (no torch)
- ``tokens``: tokenising, padding, token-budget batch planning (no torch)
- ``runtime_torch``: device/dtype/attention choice, the forward pass and pooling (imports torch lazily)
- ``embedder``: ``LocalEmbedder``, tying them together behind ``backend="torch"``
"""

from __future__ import annotations

from .embedder import BACKENDS, LocalEmbedder, LocalEmbedderSettings
from .files import DEFAULT_MODEL, MODEL_ENV, PoolingSpec, read_pooling_spec, resolve_model_path
from .runtime_torch import (
    ONE_THREAD_PASS_TOKENS,
    TorchRuntime,
    import_torch,
    pool_hidden_states,
    resolve_attn_implementation,
    resolve_device,
    resolve_dtype,
)
from .tokens import (
    ACCELERATOR_BATCH_TOKENS,
    CPU_BATCH_TOKENS,
    CPU_SHARED_BATCH_TOKENS,
    SHARED_CHECK_S,
    TokenPipeline,
    cpu_is_shared,
    default_batch_tokens,
    pad_batch,
    plan_token_batches,
)

__all__ = [
    "ACCELERATOR_BATCH_TOKENS",
    "BACKENDS",
    "CPU_BATCH_TOKENS",
    "CPU_SHARED_BATCH_TOKENS",
    "DEFAULT_MODEL",
    "MODEL_ENV",
    "ONE_THREAD_PASS_TOKENS",
    "SHARED_CHECK_S",
    "LocalEmbedder",
    "LocalEmbedderSettings",
    "PoolingSpec",
    "TokenPipeline",
    "TorchRuntime",
    "cpu_is_shared",
    "default_batch_tokens",
    "import_torch",
    "pad_batch",
    "plan_token_batches",
    "pool_hidden_states",
    "read_pooling_spec",
    "resolve_attn_implementation",
    "resolve_device",
    "resolve_dtype",
    "resolve_model_path",
]
