"""What is known of each serving engine, as data: one frozen :class:`EngineProfile` per engine family.

RemoteEmbedder, RemoteReranker and the doctor read these profiles instead of keeping their own copies:
the routes an engine answers on (and so the hint given when no route answers), the wordings it refuses an
over-long input or an over-large batch with, the request switch that makes it truncate, and the fix to
give for each problem the doctor finds. ``source`` says where each behaviour is documented.

- :data:`PROFILES` lists the families; :func:`profile` gives one by name.
- :func:`recognise` tells the family from what a server says: the ``owned_by`` of its ``/v1/models``
  answer, its response headers, or the wording of a refusal.
- :func:`route_hint` says which engines answer on ``/v1/embeddings`` and which on ``/embeddings``.
- :func:`classify_refusal` reads a refusal as a length refusal (an input over the model's tokens) or a
  batch refusal (more inputs than the server takes per request).

Adding an engine quirk is one profile here (and, for a new wording, a row in the refusal test table).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BATCH_WORDS", "COMMON_BATCH_LIMITS", "COMMON_LENGTH", "PROFILES", "ROOT", "V1", "EngineProfile",
    "Refusal", "RefusalPattern", "classify_refusal", "profile", "recognise", "rerank_route_hint",
    "route_hint", "truncate_switches",
]

V1 = "/v1/embeddings"
ROOT = "/embeddings"


@dataclass(frozen=True)
class RefusalPattern:
    """One wording (lower-cased regular expression) an engine refuses a request with.

    ``kind`` is ``"length"`` (an input has more tokens than the model takes; named groups ``limit`` and
    ``tokens`` catch the numbers when the wording gives them) or ``"batch"`` (more inputs than the server
    takes per request; a ``limit`` group catches the cap).
    """

    kind: str
    regex: str
    example: str = ""

    @property
    def compiled(self) -> re.Pattern[str]:
        return _compile(self.regex)


@functools.cache
def _compile(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


@dataclass(frozen=True)
class EngineProfile:
    """What one engine family does, with the public source of each behaviour.

    Attributes:
        family: the short name (``"tei"``, ``"vllm"``, ...), as :func:`profile` takes it.
        name: the name shown to users.
        embeddings_route: where it serves OpenAI-style embeddings by default (``/v1/embeddings`` or ``/embeddings``).
        rerank_route: where it serves ``/rerank`` ("" when it serves none).
        refusal_patterns: the wordings it refuses over-long inputs and over-large batches with.
        truncate_switch: the request field that makes it truncate an over-long input ("" when none).
        fixes: the doctor's advice per problem (``"route"``, ``"dimensions"``, ``"base64"``, ``"truncation"``,
            ``"batch"``, ``"pooling"``).
        source: the public documents and issues each behaviour above comes from.
        owned_by: the ``owned_by`` its ``/v1/models`` answer carries (empty when unknown).
        headers: response header names only this engine sends (lower-case).
        routes_note: how to move its embeddings route, said in the route hint.
    """

    family: str
    name: str
    embeddings_route: str
    rerank_route: str
    refusal_patterns: tuple[RefusalPattern, ...] = ()
    truncate_switch: str = ""
    fixes: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    owned_by: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    routes_note: str = ""

    def fix(self, problem: str, default: str = "") -> str:
        """The advice for ``problem`` on this engine, else ``default``."""
        return self.fixes.get(problem, default)


PROFILES: tuple[EngineProfile, ...] = (
    EngineProfile(
        family="tei", name="TEI (text-embeddings-inference)", embeddings_route=V1, rerank_route="/rerank",
        refusal_patterns=(
            # core/src/tokenization.rs validation
            RefusalPattern("length", r"must have less than (?P<limit>\d+) tokens(?:\. given: (?P<tokens>\d+))?",
                           "Input validation error: `inputs` must have less than 512 tokens. Given: 600"),
            # router/src/http/server.rs: --max-client-batch-size (32 by default)
            RefusalPattern("batch", r"maximum allowed batch size (?P<limit>\d+)",
                           "batch size 64 > maximum allowed batch size 32"),
        ),
        truncate_switch="truncate",
        fixes={
            "batch": "TEI takes 32 inputs per request by default: start it with --max-client-batch-size N, or "
                     "lower batch_size (RemoteEmbedder halves it on the first refusal and keeps it).",
            "truncation": "Start TEI with --auto-truncate, or pass truncate=True (sends \"truncate\": true), or "
                          "raise --max-input-length; else split long texts.",
            "dimensions": "TEI >= 1.8 honours `dimensions` for Matryoshka models; older versions: RemoteEmbedder "
                          "truncates and renormalises client-side.",
        },
        source="TEI docs, CLI arguments (--max-client-batch-size, --auto-truncate, --max-input-length); "
               "TEI core/src/tokenization.rs (the length wording); router/src/http/server.rs (x-compute-* headers)",
        headers=("x-compute-type", "x-compute-time", "x-compute-characters", "x-tokenization-time",
                 "x-queue-time", "x-inference-time"),
    ),
    EngineProfile(
        family="vllm", name="vLLM", embeddings_route=V1, rerank_route="/v1/rerank",
        refusal_patterns=(
            # entrypoints/openai/serving_engine.py
            RefusalPattern(
                "length",
                r"maximum context length is (?P<limit>\d+) tokens"
                r"(?:.{0,40}?(?:requested|has|have) (?P<tokens>\d+)(?: input)? tokens)?",
                "This model's maximum context length is 512 tokens. However, you requested 600 tokens in the "
                "input for embedding generation.",
            ),
            RefusalPattern("length", r"max context (?P<limit>\d+) tokens, the prompt had at least (?P<tokens>\d+)",
                           "max context 8192 tokens, the prompt had at least 8193"),
        ),
        truncate_switch="truncate_prompt_tokens",
        fixes={
            "dimensions": "vLLM accepts `dimensions` only for models marked Matryoshka: start it with "
                          "--hf-overrides '{\"is_matryoshka\": true}'. Meanwhile RemoteEmbedder truncates and "
                          "renormalises client-side.",
            "truncation": "Pass truncate=True (sends truncate_prompt_tokens), raise --max-model-len, or split long texts.",
        },
        source="vLLM docs, pooling models and the OpenAI-compatible server (truncate_prompt_tokens, "
               "--hf-overrides is_matryoshka, /v1/rerank and /rerank); entrypoints/openai/serving_engine.py "
               "(the length wording); protocol.py ModelCard owned_by=\"vllm\"",
        owned_by=("vllm",),
    ),
    EngineProfile(
        family="sglang", name="SGLang", embeddings_route=V1, rerank_route="/v1/rerank",
        fixes={
            "route": "Start SGLang with --is-embedding; its embeddings route is /v1/embeddings.",
            "dimensions": "SGLang honours `dimensions` only with a matryoshka_dimensions override "
                          "(--json-model-override-args); RemoteEmbedder truncates and renormalises meanwhile.",
            "base64": "Older SGLang ignores encoding_format and answers floats; RemoteEmbedder parses either.",
        },
        source="SGLang docs, OpenAI-compatible embedding API (--is-embedding); "
               "srt/entrypoints/openai/protocol.py ModelCard owned_by=\"sglang\"",
        owned_by=("sglang",),
    ),
    EngineProfile(
        family="ollama", name="Ollama", embeddings_route=V1, rerank_route="",
        refusal_patterns=(
            # 400, 413 or 500 by version
            RefusalPattern("length",
                           r"input length exceeds (?:the )?(?:maximum )?context length(?: \(?(?P<limit>\d+)\)?)?",
                           "the input length exceeds the context length"),
        ),
        fixes={
            "truncation": "Ollama cuts at num_ctx (often 2048) without saying so: raise it (PARAMETER num_ctx 8192 "
                          "in a Modelfile, or options.num_ctx) or split long texts.",
            "rerank": "Ollama serves no /rerank route: use qwen-embed serve --reranker, vLLM, TEI or Infinity.",
        },
        source="Ollama docs, OpenAI compatibility (/v1/embeddings, /v1/models owned_by \"library\") and "
               "api.md /api/embed (truncate, options.num_ctx)",
        owned_by=("library", "ollama"),
    ),
    EngineProfile(
        family="infinity", name="Infinity", embeddings_route=ROOT, rerank_route="/rerank",
        refusal_patterns=(
            # pydantic's list validation of the request's "input"
            RefusalPattern("batch", r"list should have at most (?P<limit>\d+)",
                           "List should have at most 2048 items after validation, not 4096"),
        ),
        fixes={
            "route": "Infinity serves /embeddings by default (no /v1): pass http://host:7997/embeddings, or start "
                     "it with --url-prefix /v1.",
            "dimensions": "Infinity slices `dimensions` without renormalising; RemoteEmbedder renormalises.",
        },
        source="Infinity README and CLI help (--url-prefix, /embeddings, /rerank, /models owned_by \"infinity\")",
        owned_by=("infinity",),
        routes_note="/v1/embeddings with --url-prefix /v1",
    ),
    EngineProfile(
        family="llamacpp", name="llama.cpp server", embeddings_route=V1, rerank_route="/v1/rerank",
        refusal_patterns=(
            # tools/server/server.cpp (500)
            RefusalPattern("length", r"input is too large to process|exceeds the available context size",
                           "input is too large to process. increase the physical batch size"),
        ),
        fixes={
            "truncation": "Raise llama-server's --ubatch-size and --batch-size (an input must fit one physical "
                          "batch) and --ctx-size, or split long texts.",
            "pooling": "Start llama-server with --embeddings --pooling last for Qwen3 (mean pooling is wrong).",
            "dimensions": "llama.cpp ignores `dimensions` and answers the native width; RemoteEmbedder truncates "
                          "and renormalises client-side.",
            "rerank": "llama-server serves /v1/rerank only when started with --reranking.",
        },
        source="llama.cpp tools/server/README.md (--embeddings, --pooling, --reranking, -ub, /v1/models "
               "owned_by \"llamacpp\", Server header); tools/server/server.cpp (the length wordings)",
        # llama-cpp-python's server (the one tests/engines runs) answers owned_by "me": it is not recognised.
        owned_by=("llamacpp",),
    ),
    EngineProfile(
        family="dashscope", name="DashScope (Alibaba Cloud Model Studio)", embeddings_route=V1, rerank_route="",
        refusal_patterns=(
            RefusalPattern("batch", r"(?:not be |no )larger than (?P<limit>\d+)",
                           "batch size is invalid, it should not be larger than 10."),
        ),
        fixes={
            "batch": "DashScope's text-embedding-v3/v4 take at most 10 inputs per request: batch_size=10.",
            "route": "Use https://dashscope.aliyuncs.com/compatible-mode/v1 (intl: dashscope-intl.aliyuncs.com).",
        },
        source="Alibaba Cloud Model Studio docs, text embedding OpenAI-compatible API (compatible-mode/v1, "
               "batch limit 10)",
    ),
    EngineProfile(
        family="qwen-embed-serve", name="qwen-embed serve", embeddings_route=V1, rerank_route="/v1/rerank",
        refusal_patterns=(
            RefusalPattern("batch", r"too_many_inputs|too many inputs", "too_many_inputs"),
        ),
        fixes={
            "batch": "qwen-embed serve takes --max-inputs inputs per request: raise it, or lower batch_size.",
            "rerank": "Start qwen-embed serve with --reranker MODEL to serve /v1/rerank.",
        },
        source="docs/serve.md (this package's server: --max-inputs, --reranker, /v1/models owned_by "
               "\"qwen-embed-adapters\")",
        owned_by=("qwen-embed-adapters",),
    ),
)

_BY_FAMILY = {p.family: p for p in PROFILES}


def profile(family: str) -> EngineProfile:
    """The profile of ``family`` ("tei", "vllm", ...); KeyError naming the known ones otherwise."""
    try:
        return _BY_FAMILY[family]
    except KeyError:
        raise KeyError(f"no engine profile {family!r}; known: {sorted(_BY_FAMILY)}") from None


# ============================================================================ recognising an engine
def _owners(models_payload: Any) -> list[str]:
    data = models_payload.get("data") if isinstance(models_payload, Mapping) else models_payload
    if not isinstance(data, list):
        return []
    return [str(m["owned_by"]).lower() for m in data if isinstance(m, Mapping) and m.get("owned_by")]


def recognise(
    *, models_payload: Any = None, headers: Mapping[str, str] | None = None, body: str = ""
) -> EngineProfile | None:
    """The engine family a server belongs to, from what it said; None when nothing tells.

    Tried in order: the ``owned_by`` of a ``/v1/models`` answer (vLLM "vllm", llama.cpp "llamacpp",
    Infinity "infinity", ...), response headers (TEI's ``x-compute-*``, a ``Server`` header naming the
    engine), then the wording of a refusal ``body``.

    >>> recognise(models_payload={"data": [{"id": "m", "owned_by": "vllm"}]}).family
    'vllm'
    >>> recognise(body="Input validation error: `inputs` must have less than 512 tokens").family
    'tei'
    """
    for owner in _owners(models_payload):
        for p in PROFILES:
            if owner in p.owned_by:
                return p
    lowered = {k.lower(): str(v).lower() for k, v in (headers or {}).items()}
    for p in PROFILES:
        if any(h in lowered for h in p.headers):
            return p
    server = lowered.get("server", "")
    if server:
        for p in PROFILES:
            if p.family in server.replace(".", "") or p.name.lower() in server:
                return p
    text = body.lower()
    if text:
        for p in PROFILES:
            if any(rp.compiled.search(text) for rp in p.refusal_patterns):
                return p
    return None


def _short(p: EngineProfile) -> str:
    return f"`{p.name}`" if p.family == "qwen-embed-serve" else p.name.split(" (")[0]


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


#: Hosted APIs have one fixed URL; the hint is about servers a user starts.
_HOSTED = ("dashscope",)


def route_hint() -> str:
    """Which engines answer on ``/v1/embeddings`` and which on ``/embeddings`` (said when no route answers).

    >>> route_hint().split(";")[0]
    'TEI, vLLM, SGLang, Ollama, llama.cpp server and `qwen-embed serve` answer on /v1/embeddings'
    """
    v1 = [_short(p) for p in PROFILES if p.embeddings_route == V1 and p.family not in _HOSTED]
    others = "; ".join(
        f"{_short(p)} answers on {p.embeddings_route} by default" + (f" ({p.routes_note})" if p.routes_note else "")
        for p in PROFILES if p.embeddings_route != V1
    )
    return (
        f"{_listed(v1)} answer on /v1/embeddings; {others}. Pass the server's full URL, e.g. "
        "http://host:8000/v1 or http://host:7997/embeddings."
    )


def rerank_route_hint() -> str:
    """Which engines serve ``/v1/rerank`` and which ``/rerank`` (said when no rerank route answers)."""
    v1 = [_short(p) for p in PROFILES if p.rerank_route == "/v1/rerank"]
    root = [_short(p) + (" (by default)" if p.routes_note else "") for p in PROFILES if p.rerank_route == "/rerank"]
    return (
        f"{_listed(v1)} answer on /v1/rerank (vLLM, llama.cpp and `qwen-embed serve` on /rerank too); "
        f"{_listed(root)} on /rerank. Pass the server's full URL, e.g. http://host:8080/rerank."
    )


def truncate_switches() -> dict[str, str]:
    """Engine family -> the request field that makes it truncate, for the engines that have one."""
    return {p.family: p.truncate_switch for p in PROFILES if p.truncate_switch}


# ============================================================================ reading refusals
@dataclass(frozen=True)
class Refusal:
    """How a server refused a request it found too big: a ``length`` refusal (an input has more
    tokens than the model takes) or a ``batch`` refusal (more inputs than the server takes at once)."""

    kind: str
    limit: int | None = None  # tokens per input ("length") or inputs per request ("batch")
    tokens: int | None = None  # the offending input's tokens, when the server says
    engine: str | None = None  # whose wording it was: "tei", "vllm", "ollama", ...


#: Length wordings no one engine owns (Infinity and others): "input too long", "exceeds max sequence length 512".
COMMON_LENGTH = RefusalPattern(
    "length",
    r"(?:too many tokens|(?:input|text|sequence|prompt)s? (?:is |are )?too long|token limit"
    r"|exceeds? (?:the )?(?:model'?s? )?max(?:imum)?[ _](?:sequence|context|input)[ _](?:length|tokens?)"
    r"(?: (?:of )?\(?(?P<limit>\d+))?)",
    "input too long",
)
#: Words that make a 400/422 a batch refusal, whichever engine sent it.
BATCH_WORDS = ("batch size", "batch_size", "max_client_batch", "too many inputs", "too many items", "too many",
               "too_many_inputs", "per request", "larger than", "list should have at most")
#: Where a batch refusal that no engine pattern read gives its cap: "at most 8", "max batch size: 8".
COMMON_BATCH_LIMITS = (re.compile(r"at most (\d+)"), re.compile(r"(?:maximum|max)[a-z_ ]{0,40}?(?:of |is |= ?|: ?)?(\d+)"))


def _length_patterns() -> list[tuple[RefusalPattern, str | None]]:
    found: list[tuple[RefusalPattern, str | None]] = [
        (rp, p.family) for p in PROFILES for rp in p.refusal_patterns if rp.kind == "length"
    ]
    return [*found, (COMMON_LENGTH, None)]


def classify_refusal(status: int, lowered_body: str) -> Refusal | None:
    """A length or batch refusal read from a status and lower-cased body, or None for anything else."""
    if status in (400, 413, 422, 500):
        for rp, engine in _length_patterns():
            m = rp.compiled.search(lowered_body)
            if m:
                groups = m.groupdict()
                limit, tokens = groups.get("limit"), groups.get("tokens")
                return Refusal("length", int(limit) if limit else None, int(tokens) if tokens else None, engine)
    if status == 413 or (status in (400, 422) and any(w in lowered_body for w in BATCH_WORDS)):
        for p in PROFILES:
            for rp in p.refusal_patterns:
                m = rp.compiled.search(lowered_body) if rp.kind == "batch" else None
                if m and m.groupdict().get("limit"):
                    return Refusal("batch", int(m.group("limit")))
        for pattern in COMMON_BATCH_LIMITS:
            m = pattern.search(lowered_body)
            if m:
                return Refusal("batch", int(m.group(1)))
        return Refusal("batch")
    return None
