"""Rerankers: score (query, document) pairs with Qwen3-Reranker, in process or over HTTP.

``Reranker`` is the interface every store's two-stage ``search(..., rerank=reranker)`` uses:
``score(query, documents)`` gives one relevance in [0, 1] per document, in input order, and
``rerank(query, documents, top_k)`` gives ``(index, score)`` pairs best first; both have async twins.

- ``LocalReranker`` runs Qwen3-Reranker with transformers exactly as its model card describes: the
  fixed system/user/assistant prompt, ``<Instruct>: ...\\n<Query>: ...\\n<Document>: ...``, left
  padding, and P("yes") against P("no") at the last position; inputs are sorted by length and cut
  into token-budgeted batches.
- ``RemoteReranker`` calls the ``/rerank`` API that vLLM, Infinity, TEI and ``qwen-embed serve``
  expose, speaking each engine's request and response shape, with batching, retries and checks.

Example::

    from qwen_embed_adapters.rerank import LocalReranker

    reranker = LocalReranker("Qwen/Qwen3-Reranker-0.6B")
    reranker.rerank("What is the capital of China?",
                    ["The capital of China is Beijing.", "Gravity is a force."])
    # [(0, 0.99...), (1, 0.00...)]
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import numpy as np

from ._urls import redact_url
from .embedder import arun_batches, run_batches
from .errors import ConfigurationError, InvalidInputError, ServiceError
from .http.limits import Backoff
from .http.loop import RequestLoop
from .http.pool import EndpointPool
from .http.rerank_api import API_SHAPES, RerankEndpoint, RerankPolicy
from .http.routes import check_base_url, route_candidates
from .http.session import HIDDEN, Session, check_headers, resolve_api_key, session_headers, split_headers
from .local import TorchRuntime, import_torch, pad_batch, plan_token_batches, resolve_model_path
from .models import DEFAULT_QWEN3_INSTRUCTION
from .settings import Configurable, Settings, check_choice, check_int, check_number, check_str

logger = logging.getLogger(__name__)

#: The task used when no instruction is given (the one the Qwen3-Reranker model card uses).
DEFAULT_RERANK_INSTRUCTION = DEFAULT_QWEN3_INSTRUCTION
#: Qwen3-Reranker's fixed prompt around each formatted pair (model card, "Using Transformers").
RERANK_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def format_pair(query: str, document: str, instruction: str | None = None) -> str:
    """The text Qwen3-Reranker judges for one pair (without the fixed prefix and suffix)."""
    task = DEFAULT_RERANK_INSTRUCTION if instruction is None else instruction
    return f"<Instruct>: {task}\n<Query>: {query}\n<Document>: {document}"


def _check_query(query: Any) -> str:
    if not isinstance(query, str) or not query:
        raise InvalidInputError(f"query must be a non-empty str, got {query!r:.60}")
    return query


def _check_documents(documents: Any) -> list[str]:
    # Empty strings are allowed (they score low); None and non-str are errors naming the item.
    if isinstance(documents, (str, bytes)) or documents is None:
        raise InvalidInputError(
            f"documents: expected a sequence of str, got {type(documents).__name__}; wrap a single text in a list"
        )
    try:
        items = list(documents)
    except TypeError:
        raise InvalidInputError(f"documents: expected a sequence of str, got {type(documents).__name__}") from None
    for i, d in enumerate(items):
        if d is None:
            raise InvalidInputError(f"documents[{i}] is None", index=i)
        if not isinstance(d, str):
            raise InvalidInputError(f"documents[{i}] is {type(d).__name__}, not str: {d!r:.60}", index=i)
    return items


def _check_instruction(instruction: Any) -> str | None:
    if instruction is not None and not isinstance(instruction, str):
        raise InvalidInputError(f"instruction must be a str or None, got {type(instruction).__name__}")
    return instruction  # type: ignore[no-any-return]


def _check_top_k(top_k: Any) -> int | None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InvalidInputError(f"top_k must be a positive int or None, got {top_k!r}")
    return top_k  # type: ignore[no-any-return]


def _ranking(scores: np.ndarray, top_k: int | None) -> list[tuple[int, float]]:
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    if top_k is not None:
        order = order[:top_k]
    return [(i, float(scores[i])) for i in order]


class Reranker(ABC):
    """Scores documents against a query: higher is more relevant.

    A backend implements ``_score`` (and optionally ``_ascore``); the base class validates input,
    checks the answer and builds the ranking.
    """

    def __init__(self, model: str, *, instruction: str | None = None) -> None:
        check_str("model", model)
        check_str("instruction", instruction, optional=True, empty=True)
        self.model = model
        #: the task description put in each prompt unless a call passes its own
        self.instruction = DEFAULT_RERANK_INSTRUCTION if instruction is None else instruction

    # ---------------------------------------------------------------- backend hooks
    @abstractmethod
    def _score(self, query: str, documents: list[str], instruction: str) -> np.ndarray:
        """Relevance of each document (non-empty list), in input order."""

    async def _ascore(self, query: str, documents: list[str], instruction: str) -> np.ndarray:
        return await asyncio.to_thread(self._score, query, documents, instruction)

    # ---------------------------------------------------------------- public API
    def score(self, query: str, documents: Iterable[str], instruction: str | None = None) -> np.ndarray:
        """One relevance score in [0, 1] per document, in input order (float32, shape (n,)).

        ``instruction`` overrides the reranker's task description for this call.
        """
        q, docs, task = self._inputs(query, documents, instruction)
        if not docs:
            return np.empty(0, dtype=np.float32)
        return self._checked(self._score(q, docs, task), len(docs))

    async def ascore(self, query: str, documents: Iterable[str], instruction: str | None = None) -> np.ndarray:
        """Async twin of ``score``."""
        q, docs, task = self._inputs(query, documents, instruction)
        if not docs:
            return np.empty(0, dtype=np.float32)
        return self._checked(await self._ascore(q, docs, task), len(docs))

    def rerank(
        self, query: str, documents: Iterable[str], top_k: int | None = None, instruction: str | None = None
    ) -> list[tuple[int, float]]:
        """``(document index, score)`` pairs, best first (ties keep input order); at most ``top_k``."""
        k = _check_top_k(top_k)
        return _ranking(self.score(query, documents, instruction), k)

    async def arerank(
        self, query: str, documents: Iterable[str], top_k: int | None = None, instruction: str | None = None
    ) -> list[tuple[int, float]]:
        """Async twin of ``rerank``."""
        k = _check_top_k(top_k)
        return _ranking(await self.ascore(query, documents, instruction), k)

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections or threads (the reranker reopens them lazily)."""

    async def aclose(self) -> None:
        """Async twin of ``close``."""
        self.close()

    def __enter__(self) -> Reranker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Reranker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    # ---------------------------------------------------------------- helpers
    def _inputs(self, query: Any, documents: Any, instruction: Any) -> tuple[str, list[str], str]:
        q = _check_query(query)
        docs = _check_documents(documents)
        task = _check_instruction(instruction)
        return q, docs, self.instruction if task is None else task

    def _error(self, message: str) -> Exception:
        return ServiceError(f"{self.model}: {message}")

    def _checked(self, scores: Any, n: int) -> np.ndarray:
        try:
            arr = np.asarray(scores, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise self._error(f"scores are not numbers ({exc})") from None
        if arr.shape[0] != n:
            raise self._error(f"asked for {n} scores, got {arr.shape[0]}")
        bad = ~np.isfinite(arr)
        if bad.any():
            raise self._error(f"document {int(np.argmax(bad))}: the score is NaN or infinite")
        return arr


# ============================================================================ LocalReranker
@dataclass(frozen=True)
class LocalRerankerSettings(Settings):
    """Every setting of a LocalReranker (see its arguments), written down once."""

    model: str = "Qwen/Qwen3-Reranker-0.6B"
    device: str = "auto"
    dtype: str = "auto"
    instruction: str | None = None
    max_length: int = 8192
    max_batch_tokens: int = 16384

    def validate(self) -> None:
        check_str("model", self.model)
        check_str("device", self.device)
        check_str("dtype", self.dtype)
        check_str("instruction", self.instruction, optional=True, empty=True)
        check_int("max_length", self.max_length, minimum=1)
        check_int("max_batch_tokens", self.max_batch_tokens, minimum=1)


class LocalReranker(Configurable, Reranker):
    """Qwen3-Reranker in process (transformers), scored as its model card describes.

    Args:
        model: a Hugging Face id or a local folder (``make_tiny_qwen3_reranker`` builds a tiny one).
        device: ``"auto"`` (CUDA, then MPS, then CPU) or a torch device string.
        dtype: ``"auto"`` (bf16/fp16 on GPUs, fp32 on CPU), ``"float32"``, ``"float16"``, ``"bfloat16"``.
        instruction: the default task description (Qwen3's web-search task when None).
        max_length: token limit of one whole prompt; longer documents are truncated at the end.
        max_batch_tokens: padded tokens per forward pass; inputs are sorted by length to waste little.

    The score of a pair is ``exp(log_softmax([logit_no, logit_yes])[1])`` at the last position.
    """

    settings_class = LocalRerankerSettings

    def __init__(
        self,
        model: str = "Qwen/Qwen3-Reranker-0.6B",
        *,
        device: str = "auto",
        dtype: Any = "auto",
        instruction: str | None = None,
        max_length: int = 8192,
        max_batch_tokens: int = 16384,
    ) -> None:
        dtype_name = dtype if isinstance(dtype, str) else str(dtype).replace("torch.", "")
        self.settings: LocalRerankerSettings = LocalRerankerSettings(
            model=model, device=device, dtype=dtype_name, instruction=instruction, max_length=max_length,
            max_batch_tokens=max_batch_tokens,
        )
        super().__init__(model, instruction=instruction)
        _, transformers = import_torch("LocalReranker")
        self.max_length = max_length
        self.max_batch_tokens = max_batch_tokens
        try:  # the same model-file search, device/dtype checks and loading as LocalEmbedder
            path = resolve_model_path(model)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), padding_side="left")
            self._runtime = TorchRuntime(path, device=device, dtype=dtype, causal_lm=True, owner="LocalReranker")
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"could not load the reranker {model!r}: {exc}") from exc
        self._torch_mod = self._runtime.torch
        self._model = self._runtime.model
        self.device = self._runtime.device
        self.dtype = self._runtime.dtype
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.token_yes = self._single_token("yes")
        self.token_no = self._single_token("no")
        self.prefix_tokens: list[int] = self.tokenizer.encode(RERANK_PREFIX, add_special_tokens=False)
        self.suffix_tokens: list[int] = self.tokenizer.encode(RERANK_SUFFIX, add_special_tokens=False)
        room = max_length - len(self.prefix_tokens) - len(self.suffix_tokens)
        if room < 8:
            raise ConfigurationError(f"max_length={max_length} leaves no room for the pair after the prompt")
        self._room = room

    def _single_token(self, word: str) -> int:
        tid: Any = self.tokenizer.convert_tokens_to_ids(word)
        if not isinstance(tid, int) or tid == self.tokenizer.unk_token_id:
            raise ConfigurationError(
                f"{self.model!r}: the tokenizer has no single token {word!r}; is this a Qwen3-Reranker?"
            )
        return int(tid)

    def _repr_fields(self) -> dict[str, Any]:
        # The device and dtype in use (what "auto" chose), beside the settings that differ from the defaults.
        return {"model": self.model, **self.settings.shown(), "device": self.device,
                "dtype": str(self.dtype).replace("torch.", "")}

    def tokenize(self, query: str, documents: list[str], instruction: str | None = None) -> list[list[int]]:
        """The full prompt token ids of each pair (prefix + pair + suffix), truncated to ``max_length``."""
        pairs = [format_pair(query, d, self.instruction if instruction is None else instruction) for d in documents]
        enc = self.tokenizer(
            pairs, padding=False, truncation="longest_first", return_attention_mask=False, max_length=self._room
        )
        return [self.prefix_tokens + list(ids) + self.suffix_tokens for ids in enc["input_ids"]]

    def _plan(self, lengths: list[int]) -> list[list[int]]:
        # LocalEmbedder's planner: longest first, so each batch's padding is small.
        return plan_token_batches(lengths, self.max_batch_tokens, max(1, len(lengths)))

    def _score(self, query: str, documents: list[str], instruction: str) -> np.ndarray:
        return self.score_token_ids(self.tokenize(query, documents, instruction))

    def score_token_ids(self, sequences: list[list[int]]) -> np.ndarray:
        """P("yes") at the last position of each full prompt (as ``tokenize`` returns them), in order."""
        torch = self._torch_mod
        out = np.empty(len(sequences), dtype=np.float32)
        if not sequences:
            return out
        with self._runtime.lock, torch.inference_mode():
            for batch in self._plan([len(s) for s in sequences]):
                ids, mask = pad_batch([sequences[i] for i in batch], int(self.tokenizer.pad_token_id), "left")
                inputs = {"input_ids": torch.from_numpy(ids).to(self.device),
                          "attention_mask": torch.from_numpy(mask).to(self.device)}
                try:
                    logits = self._model(**inputs, logits_to_keep=1).logits[:, -1, :]
                except TypeError:  # transformers without logits_to_keep
                    logits = self._model(**inputs).logits[:, -1, :]
                pair = torch.stack([logits[:, self.token_no], logits[:, self.token_yes]], dim=1).float()
                probs = torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp()
                out[batch] = probs.cpu().numpy()
        return out

    def close(self) -> None:
        if self.device.startswith("cuda"):
            self._torch_mod.cuda.empty_cache()


# ============================================================================ RemoteReranker
_TEMPLATES = ("server", "qwen3")


def _qwen3_prompt(query: str, documents: list[str], instruction: str) -> tuple[str, list[str]]:
    # The server joins query and document tokens; together they make the model card's prompt.
    return (
        f"{RERANK_PREFIX}<Instruct>: {instruction}\n<Query>: {query}\n",
        [f"<Document>: {d}{RERANK_SUFFIX}" for d in documents],
    )


@dataclass(frozen=True)
class RemoteRerankerSettings(Settings):
    """Every setting of a RemoteReranker (see its arguments), written down once; no secret is a field."""

    base_url: str
    model: str = "Qwen3-Reranker-0.6B"
    api: str = "auto"
    template: str = "server"
    instruction: str | None = None
    api_key_env: str | None = None
    batch_size: int = 32
    max_concurrency: int = 4
    max_retries: int = 5
    timeout: float = 60.0
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0
    headers: dict[str, str] | None = None
    header_envs: dict[str, str] | None = None

    def validate(self) -> None:
        check_base_url(self.base_url)
        check_str("model", self.model)
        check_choice("api", self.api, sorted(API_SHAPES))
        check_choice("template", self.template, _TEMPLATES)
        check_str("instruction", self.instruction, optional=True, empty=True)
        check_str("api_key_env", self.api_key_env, optional=True)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("max_concurrency", self.max_concurrency, minimum=1)
        check_int("max_retries", self.max_retries, minimum=0)
        check_number("timeout", self.timeout, positive=True)
        for name in ("backoff_base", "backoff_max", "max_retry_after"):
            check_number(name, getattr(self, name), minimum=0)
        check_headers(self.headers, self.header_envs)

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "base_url": redact_url(check_base_url(self.base_url))}


class RemoteReranker(Configurable, Reranker):
    """Scores from a ``/rerank`` endpoint: vLLM, Infinity, TEI or ``qwen-embed serve --reranker``.

    Args:
        base_url: the server (``http://host:8000/v1``, ``http://host:8080``) or the full ``.../rerank`` URL.
            A bare ``http://host:port`` tries ``/v1/rerank`` and then ``/rerank``; ``.../v1`` tries
            ``.../v1/rerank`` and then the root's ``/rerank`` (TEI, Infinity); ``.../embeddings`` becomes
            ``.../rerank``. ``endpoint_url`` tells which route answered.
        model: the model name sent to servers that want one.
        api: ``"auto"`` (default), ``"vllm"``/``"infinity"``/``"cohere"`` (``{"model","query","documents","top_n"}``
            -> ``{"results":[{"index","relevance_score"}]}``) or ``"tei"`` (``{"query","texts"}`` ->
            ``[{"index","score"}]``). ``auto`` starts with the first shape and switches to TEI's when
            the server asks for ``texts``.
        template: ``"server"`` sends the raw query and documents (the server applies the reranker's
            prompt: ``qwen-embed serve``, vLLM with a score template, TEI); ``"qwen3"`` wraps them in
            Qwen3-Reranker's prompt on the client, as vLLM's ``is_original_qwen3_reranker`` mode expects.
        instruction: the task description; with ``template="server"`` an explicit one is sent as
            ``"instruction"`` (``qwen-embed serve`` honours it; other servers ignore it).
        batch_size, max_concurrency, max_retries, timeout: as for RemoteEmbedder. 413 or a
            "batch size" refusal halves the batch; 408/409/429/5xx and connection errors are retried
            with backoff and ``Retry-After``.

    The key comes from ``api_key``, else ``$QWEN_EMBED_API_KEY``, else ``$OPENAI_API_KEY``; it is never
    shown in repr, logs or errors. ``headers``, ``header_envs``, ``http_client``, ``http_async_client`` and
    ``transport`` are as for RemoteEmbedder.
    """

    settings_class = RemoteRerankerSettings

    def __init__(
        self,
        base_url: str,
        model: str = "Qwen3-Reranker-0.6B",
        *,
        api: str = "auto",
        template: str = "server",
        instruction: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        batch_size: int = 32,
        max_concurrency: int = 4,
        max_retries: int = 5,
        timeout: float = 60.0,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_after: float = 60.0,
        headers: Mapping[str, str] | None = None,
        header_envs: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        http_async_client: httpx.AsyncClient | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        plain, _ = split_headers(headers)
        key, key_env = resolve_api_key(api_key, api_key_env)
        self.settings: RemoteRerankerSettings = RemoteRerankerSettings(
            base_url=base_url, model=model, api=api, template=template, instruction=instruction,
            api_key_env=key_env, batch_size=batch_size, max_concurrency=max_concurrency, max_retries=max_retries,
            timeout=timeout, backoff_base=backoff_base, backoff_max=backoff_max, max_retry_after=max_retry_after,
            headers=plain or None, header_envs=dict(header_envs) if header_envs else None,
        )
        super().__init__(model, instruction=instruction)
        self.base_url = check_base_url(base_url)
        self._api_key = key
        endpoint = RerankEndpoint(self.base_url, route_candidates(self.base_url, "rerank", swap=("embeddings",),
                                                                  v1_root=True),
                                  batch_cap=batch_size, shape=API_SHAPES[api])
        policy = RerankPolicy(model, api=api, wrap=_qwen3_prompt if template == "qwen3" else None, log=logger)
        self._session = Session(
            RequestLoop(policy, EndpointPool([endpoint], log=logger), max_retries=max_retries, api_key=key,
                        backoff=Backoff(backoff_base, backoff_max, max_retry_after)),
            headers=session_headers(key, headers, header_envs), timeout=timeout, max_concurrency=max_concurrency,
            http_client=http_client, http_async_client=http_async_client, transport=transport,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    api = property(lambda self: self.settings.api, doc="The ``api`` setting.")
    template = property(lambda self: self.settings.template, doc="The ``template`` setting.")
    max_concurrency = property(lambda self: self.settings.max_concurrency, doc="The ``max_concurrency`` setting.")
    max_retries = property(lambda self: self.settings.max_retries, doc="The ``max_retries`` setting.")
    timeout = property(lambda self: self.settings.timeout, doc="The ``timeout`` setting.")
    api_key_env = property(lambda self: self.settings.api_key_env, doc="The ``api_key_env`` setting.")

    @property
    def _endpoint(self) -> RerankEndpoint:
        ep = self._session.pool.first
        assert isinstance(ep, RerankEndpoint)
        return ep

    @property
    def url(self) -> str:
        """The route requests go to now (the first candidate until one has answered)."""
        return self._endpoint.url

    @property
    def endpoint_url(self) -> str | None:
        """The route that answered; None before the first successful request."""
        return self._endpoint.resolved

    @property
    def batch_size(self) -> int:
        """Documents per request: the given ``batch_size``, lowered when the server refuses as many."""
        return self._session.pool.batch_size

    @property
    def shape(self) -> str:
        """The request shape the server speaks: "auto" until its first answer tells, "cohere" or "tei"."""
        return self._endpoint.shape

    def _repr_fields(self) -> dict[str, Any]:
        # the setting, as RemoteEmbedder shows it (``url`` tells the route that answered)
        shown: dict[str, Any] = {"base_url": redact_url(self.base_url), "model": self.model, "api": self.api}
        shown.update((k, v) for k, v in self.settings.shown().items() if k not in ("base_url", "model", "api"))
        if self._api_key:
            shown["api_key"] = HIDDEN
        return shown

    def _error(self, message: str) -> Exception:
        return self._session.loop.fail(message)

    # ---------------------------------------------------------------- batching
    def _batches(self, n: int) -> list[tuple[int, int]]:
        size = max(1, self.batch_size)
        return [(i, min(i + size, n)) for i in range(0, n, size)]

    def _pool_now(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="RemoteReranker")
            return self._pool

    def _score(self, query: str, documents: list[str], instruction: str) -> np.ndarray:
        ctx, send = (query, instruction), self._session.send
        jobs = [partial(send, documents[a:b], ctx, a) for a, b in self._batches(len(documents))]
        return np.concatenate(run_batches(jobs, None if self.max_concurrency == 1 else self._pool_now))

    async def _ascore(self, query: str, documents: list[str], instruction: str) -> np.ndarray:
        ctx, asend = (query, instruction), self._session.asend
        jobs = [partial(asend, documents[a:b], ctx, a) for a, b in self._batches(len(documents))]
        return np.concatenate(await arun_batches(jobs, self.max_concurrency))

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self._session.close()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    async def aclose(self) -> None:
        await self._session.aclose()
        self.close()


def reranker_from_spec(spec: str, **kwargs: Any) -> Reranker:
    """A reranker from a CLI-style spec: an ``http(s)://`` URL gives a RemoteReranker, anything else a
    LocalReranker (model id or folder)."""
    if spec.startswith(("http://", "https://")):
        return RemoteReranker(spec, **kwargs)
    return LocalReranker(spec, **kwargs)


__all__: Sequence[str] = [
    "DEFAULT_RERANK_INSTRUCTION",
    "LocalReranker",
    "RERANK_PREFIX",
    "RERANK_SUFFIX",
    "LocalRerankerSettings",
    "RemoteReranker",
    "RemoteRerankerSettings",
    "Reranker",
    "format_pair",
    "reranker_from_spec",
]
