"""The doctor's checks as library functions: is an embedding endpoint (or an in-process model) right?

``qwen-embed doctor`` (``cli/doctor.py``) parses its arguments and renders what these functions return;
scripts can call them directly::

    from qwen_embed_adapters.diagnostics import diagnose_endpoint

    diagnosis = diagnose_endpoint("http://127.0.0.1:7997", "tinyA", reference="./tinyA")
    statuses = [c.status for c in diagnosis.checks]   # with diagnosis.engine_family: "infinity", ...

Against an endpoint the route is found the way ``RemoteEmbedder`` finds it (one real embedding request
through it: a URL with a path is used as given, a bare ``http://host:port`` tries ``/v1/embeddings`` and
then Infinity's ``/embeddings``); the checks then send raw HTTP to that route, so they see what the server
really sends: reachable, model name, dimension, ``dimensions`` support, base64 support, the norms of 1,000
vectors, and similar pairs scoring above dissimilar ones in a small built-in Chinese/English/code set, then
whether the vectors are right: a text alone equals the same text in a batch of much longer ones (padding
bugs), the same text twice gives the same vector (non-determinism), and, given ``reference`` (a model
folder), the server's vectors equal ``LocalEmbedder``'s on the same weights (wrong pooling, as llama.cpp's
default mean pooling gives for Qwen3). Each result is PASS, WARN (works, because the client compensates),
FAIL or SKIP, with a fix for everything that is not PASS.

Each check is one small function; ``REMOTE_CHECKS`` and ``EMBEDDER_CHECKS`` list them in the order the
table shows them. A remote check that leaves nothing for the later ones to look at (no answer, a refused
model) sets ``probe.stop`` and the rest are reported as SKIP.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from . import models
from ._urls import redact_url
from .errors import EmbeddingTimeoutError, QwenEmbedError
from .http import engines

if TYPE_CHECKING:
    import httpx

    from .adapters.base import VectorStore
    from .embedder import Embedder
    from .space import SpaceCard

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"

#: Which engines answer on /v1/embeddings and which on /embeddings: the same words RemoteEmbedder uses
#: (both read the engine profiles in http/engines.py).
ROUTE_HINT = engines.route_hint()

#: (anchor, similar, dissimilar): the similar text must score higher against the anchor.
TRIPLETS: tuple[tuple[str, str, str, str], ...] = (
    ("zh-en", "北京是中国的首都", "Beijing is the capital of China", "The stock market fell sharply today"),
    ("zh-en", "机器学习需要大量的数据", "Machine learning needs a lot of data", "我今天早上吃了一碗面条"),
    ("en-zh", "The cat is sleeping on the sofa", "猫在沙发上睡觉", "股票市场今天大跌"),
    ("zh-zh", "今天天气很好，阳光明媚", "今天是晴天，适合出去散步", "这台电脑的内存不够用了"),
    ("zh-zh", "如何做西红柿炒鸡蛋", "番茄炒蛋的家常做法", "高铁从北京到上海要多久"),
    ("en-en", "How do I reset my password?", "Steps to change your account password", "The weather in Paris is sunny"),
    ("en-en", "A dog is running in the park", "A puppy plays outside on the grass", "Quarterly revenue grew by ten percent"),
    ("code", "def add(a, b):\n    return a + b", "def sum_two(x, y):\n    return x + y", "SELECT name FROM users WHERE age > 30;"),
    ("code-en", "sort a list of numbers in python", "numbers = sorted(numbers)", "The Great Wall is very long"),
    ("code-zh", "用 Python 读取文本文件", "with open('data.txt', encoding='utf-8') as f:\n    text = f.read()", "北京烤鸭很好吃"),
)

FIXES = {
    "refused": "Start the server, or check the host, port and scheme (http vs https) of --base-url; "
               "`curl <base-url>/models` must answer.",
    "timeout": "The server answers too slowly: check that it has finished loading the model, or raise --timeout.",
    "auth": "The endpoint wants a key: export QWEN_EMBED_API_KEY=... (or name the variable with --api-key-env).",
    "model": "Pass the exact name the server registered (case-sensitive) with --model; `curl <base-url>/models` lists it.",
    "path": f"No embeddings route answered at this URL. {ROUTE_HINT} SGLang also needs --is-embedding.",
    "dimension": "The width differs from the model's native size: check which model the server loaded, "
                 "or whether it was started with an output-dimension override.",
    "dimensions": "Optional: RemoteEmbedder truncates and renormalises client-side. vLLM accepts `dimensions` with "
                  "--hf-overrides '{\"is_matryoshka\": true}'; SGLang needs a matryoshka_dimensions override.",
    "base64": "Optional: RemoteEmbedder falls back to floats (slower to parse, same vectors).",
    "base64-wrong": "The server's base64 payload does not decode to the float answer: report it upstream and use "
                    "RemoteEmbedder(..., encoding_format='float').",
    "norms": "The client L2-normalises every vector, so retrieval is fine; if you use the server's raw vectors "
             "elsewhere, normalise them (or enable normalisation on the server).",
    "nan": "The server returned NaN/zero vectors: fp16 overflow is the usual cause; serve in bf16 or fp32.",
    "pairs": "Similar texts do not score above unrelated ones: a wrong pooling (Qwen3 needs last-token pooling "
             "with left padding), a wrong model, or a broken quantisation. Compare with `qwen-embed serve`.",
    "padding": "A text's vector changes with the other texts in its batch: the server pads wrongly (Qwen3 "
               "needs left padding, or an attention mask that hides the padding). Send one text per request "
               "until the engine is fixed, and report it upstream.",
    "determinism": "The same text gives different vectors: check for dropout left on (model not in eval mode), "
                   "a non-deterministic kernel or quantisation, or a load balancer mixing different models.",
    "reference": "The server's vectors are not the model's: check its pooling (Qwen3 needs last-token pooling, "
                 "llama.cpp: --pooling last; mean or cls pooling is wrong), that it loaded the same weights, and "
                 "that it does not add a prompt of its own. `qwen-embed serve` gives the reference vectors.",
    "load": "Download the model (`huggingface-cli download Qwen/Qwen3-Embedding-0.6B` or "
            "`modelscope download --model Qwen/Qwen3-Embedding-0.6B`) or pass --model /path/to/folder.",
    "oom": "Out of memory: lower max_batch_tokens / --embed-batch-size, use --dimensions, or a smaller model.",
}


@dataclass
class Check:
    """One line of the doctor's table."""

    name: str
    status: str
    detail: str
    fix: str = ""


def load_corpus() -> list[dict[str, Any]]:
    """The bundled sample corpus: 300 ``{"id", "text", "metadata"}`` records (Chinese, English, code)."""
    data = resources.files("qwen_embed_adapters").joinpath("data/sample_corpus.jsonl")
    return [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]


def cycled_texts(n: int, fmt: str = "{text} [{i}]") -> list[str]:
    """``n`` distinct texts made by cycling the corpus and tagging each with its position."""
    corpus = [r["text"] for r in load_corpus()]
    return [fmt.format(text=corpus[i % len(corpus)], i=i) for i in range(n)]


def _norm_texts(n: int) -> list[str]:
    return cycled_texts(n, "{text} [{i}]")


def _triplet_texts() -> list[str]:
    return [t for _, a, p, n in TRIPLETS for t in (a, p, n)]


# ---------------------------------------------------------------------------- engine families
#: doctor fix key -> (the engine profile's problem name, whether the general advice still follows it)
ENGINE_PROBLEMS: dict[str, tuple[str, bool]] = {
    "path": ("route", True),
    "reference": ("pooling", True),
    "dimensions": ("dimensions", False),
    "base64": ("base64", False),
}


def _recognise(*, models_payload: Any = None, headers: Mapping[str, str] | None = None, body: str = "") -> str | None:
    found = engines.recognise(models_payload=models_payload, headers=headers, body=body)
    return found.family if found else None


def _engine_fix(family: str | None, key: str) -> str:
    """The recognised engine's own advice for ``key`` (from its profile), with the general one after it
    where that still applies; "" when the engine has none."""
    if family is None or key not in ENGINE_PROBLEMS:
        return ""
    problem, keep_general = ENGINE_PROBLEMS[key]
    own = engines.profile(family).fix(problem)
    if not own:
        return ""
    return f"{own} {FIXES[key]}" if keep_general else own


# ---------------------------------------------------------------------------- checks against an endpoint
#: the text of the doctor's first request (the one that finds the route).
PING = "ping"


@dataclass(frozen=True)
class Route:
    """Where ``RemoteEmbedder``'s route discovery took the doctor's first request, and what came of it.

    ``url`` is the embeddings route that answered, else the one the last request went to; ``error`` is
    RemoteEmbedder's own message when no vectors came back (it names every route it tried).
    """

    url: str
    answered: bool
    error: str = ""
    timed_out: bool = False  # no answer within the timeout: the raw checks would only wait as long again

    @property
    def base(self) -> str:
        """The route without ``/embeddings``: where ``/models`` is asked."""
        return self.url[: -len("/embeddings")] if self.url.endswith("/embeddings") else self.url


def find_route(base_url: str, model: str, *, api_key: str | None = None, timeout: float = 30.0) -> Route:
    """The embeddings route of ``base_url``, found by one real request through ``RemoteEmbedder``.

    One source for routes: the doctor goes where ``RemoteEmbedder`` goes (``http://h:7997`` ->
    ``/v1/embeddings``, then on a 404 Infinity's ``/embeddings``; a URL with a path as given). A failure
    does not raise: the raw checks then show what the server sent on the route it ended on.
    """
    from .remote import RemoteEmbedder

    embedder = RemoteEmbedder(base_url, model, api_key=api_key, timeout=timeout, max_retries=0, batch_size=1,
                              encoding_format="float")
    error, timed_out = "", False
    try:
        embedder.embed_documents([PING])
    except EmbeddingTimeoutError as exc:
        error, timed_out = " ".join(str(exc).split()), True
    except Exception as exc:  # any other failure is the raw checks' to explain
        error = " ".join(str(exc).split())
    finally:
        embedder.close()
    return Route(embedder.endpoint_url or embedder.url, embedder.endpoint_url is not None, error, timed_out)


@dataclass
class Probe:
    """What the remote checks share: the client, where to send, and what the earlier checks learned."""

    client: httpx.Client
    base_url: str  # as the user gave it
    model: str
    dimensions: int | None = None
    timeout: float = 30.0
    norm_samples: int = 1000
    batch: int = 32
    reference: str | None = None  # a model folder whose LocalEmbedder vectors the server's must match
    api_key: str | None = None
    route: Route | None = None  # set by check_reachable
    first: Any = None  # the answer to the first one-string request
    ping: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))  # its vector
    listed: list[str] = field(default_factory=list)  # the model names /models lists
    family: str | None = None  # the engine family recognised from what the server sent
    stop: bool = False  # set by a check that leaves nothing for the later ones to look at
    misordered: frozenset[int] = frozenset()  # the triplets the server's vectors misorder
    reference_misordered: frozenset[int] | None = None  # those the reference model misorders (when it matched)

    @property
    def url(self) -> str:
        return self.route.url if self.route else self.base_url

    @property
    def shown(self) -> str:
        return redact_url(self.url)

    def post(self, **body: Any) -> httpx.Response:
        return self.client.post(self.url, json={"model": self.model, "input": [PING], **body})

    def fix(self, key: str) -> str:
        """The fix text for ``key``: the recognised engine's own when its profile has one."""
        return _engine_fix(self.family, key) or FIXES[key]

    def recognise(self, models_payload: Any) -> None:
        """Tell the engine family from the ``/models`` answer and the first answer's headers and refusal."""
        if self.family is None and self.first is not None:
            body = self.first.text if self.first.status_code != 200 else ""
            self.family = _recognise(models_payload=models_payload, headers=self.first.headers, body=body)

    def fail(self, check: Check) -> Check:
        self.stop = True
        return check


def check_reachable(p: Probe) -> Check:
    """The endpoint answers a one-string request (any status but auth or a missing route) on the route
    RemoteEmbedder finds."""
    import httpx

    try:
        p.route = find_route(p.base_url, p.model, api_key=p.api_key, timeout=p.timeout)
    except QwenEmbedError as exc:  # the URL itself is wrong (no scheme, ...)
        return p.fail(Check("reachable", FAIL, " ".join(str(exc).split())[:300], FIXES["refused"]))
    if p.route.timed_out:
        return p.fail(Check("reachable", FAIL, f"no answer from {p.shown} within {p.timeout:g} s", FIXES["timeout"]))
    t0 = time.perf_counter()
    try:
        p.first = p.post(encoding_format="float")
    except httpx.ConnectError as exc:
        return p.fail(Check("reachable", FAIL, f"connection refused: {p.shown} ({exc})", FIXES["refused"]))
    except httpx.TimeoutException:
        return p.fail(Check("reachable", FAIL, f"no answer from {p.shown} within {p.timeout:g} s", FIXES["timeout"]))
    except httpx.TransportError as exc:
        return p.fail(Check("reachable", FAIL, f"{type(exc).__name__}: {exc}", FIXES["refused"]))
    elapsed = time.perf_counter() - t0
    status, body = p.first.status_code, p.first.text[:300]
    if status in (401, 403):
        return p.fail(Check("reachable", FAIL, f"HTTP {status} from {p.shown}: {body}", FIXES["auth"]))
    if status in (404, 405) and "model" not in body.lower():
        p.recognise(_models_payload(p.client, p.route.base))  # an engine's own route advice, when it tells
        # RemoteEmbedder's own message names every route it tried; its hint is the fix below
        why = p.route.error.replace(ROUTE_HINT, "").strip()
        detail = f"HTTP {status} from {p.shown}: no embeddings route" + (f" (RemoteEmbedder: {why})" if why else "")
        return p.fail(Check("reachable", FAIL, detail, p.fix("path")))
    return Check("reachable", PASS, f"HTTP {status} from {p.shown} in {elapsed:.2f} s")


def check_model_name(p: Probe) -> Check:
    """The server accepts ``--model`` (and lists it on /models when it has that route)."""
    payload = _models_payload(p.client, p.route.base if p.route else p.url)
    p.listed = listed = _model_ids(payload)
    p.recognise(payload)
    status, body = p.first.status_code, p.first.text[:300]
    if status != 200:
        fix = p.fix("model") if ("model" in body.lower() or status == 404) else (
            f"The server refused a plain one-string request (HTTP {status}); read its log."
        )
        extra = f"; the server lists {listed}" if listed else ""
        return p.fail(Check("model name", FAIL, f"{p.model!r} refused: HTTP {status}: {body}{extra}", fix))
    if listed and p.model not in listed:
        return Check("model name", WARN, f"{p.model!r} answered, but /models lists {listed}", p.fix("model"))
    where = "listed by /models" if listed else "accepted (/models not available)"
    return Check("model name", PASS, f"{p.model!r} {where}")


def check_dimension(p: Probe) -> Check:
    """The answer is a vector of the model's native width."""
    try:
        p.ping = np.asarray(p.first.json()["data"][0]["embedding"], dtype=np.float32)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return p.fail(Check("dimension", FAIL, f"malformed answer ({exc}): {p.first.text[:300]}", p.fix("path")))
    width = int(p.ping.shape[0])
    info = models.lookup(p.model)
    if info is not None and width != info.native_dim:
        return Check("dimension", FAIL, f"{width}-d, but {p.model} is natively {info.native_dim}-d", p.fix("dimension"))
    known = f" ({p.model} native)" if info is not None else ""
    return Check("dimension", PASS, f"{width}-d{known}")


def check_dimensions_support(p: Probe) -> Check:
    """``dimensions`` (MRL) is honoured: the asked width, renormalised."""
    ask = p.dimensions or max(1, min(256, int(p.ping.shape[0]) // 2))
    r = p.post(encoding_format="float", dimensions=ask)
    if r.status_code != 200:
        return Check("dimensions support", WARN, f"dimensions={ask} refused: HTTP {r.status_code}: {r.text[:160]}",
                     p.fix("dimensions"))
    try:
        vec = np.asarray(r.json()["data"][0]["embedding"], dtype=np.float32)
    except (ValueError, KeyError, IndexError, TypeError):
        vec = np.empty(0, np.float32)
    norm = float(np.linalg.norm(vec)) if vec.size else 0.0
    if vec.shape[0] == ask and abs(norm - 1.0) < 1e-3:
        return Check("dimensions support", PASS, f"dimensions={ask}: {ask}-d, renormalised")
    if vec.shape[0] == ask:
        return Check("dimensions support", WARN, f"dimensions={ask}: sliced without renormalising (norm {norm:.3f})",
                     p.fix("dimensions"))
    return Check("dimensions support", WARN, f"dimensions={ask} ignored: answered {vec.shape[0]}-d", p.fix("dimensions"))


def check_base64(p: Probe) -> Check:
    """``encoding_format: base64`` is honoured and decodes to the float answer."""
    r = p.post(encoding_format="base64")
    if r.status_code != 200:
        return Check("base64 support", WARN, f"refused: HTTP {r.status_code}: {r.text[:160]}", p.fix("base64"))
    emb = r.json()["data"][0].get("embedding")
    if not isinstance(emb, str):
        return Check("base64 support", WARN, "ignored: floats returned", p.fix("base64"))
    try:
        dec = np.frombuffer(base64.b64decode(emb), dtype=np.float32)
    except (ValueError, TypeError):
        dec = np.empty(0, np.float32)
    if dec.shape == p.ping.shape and np.allclose(dec, p.ping, atol=1e-3):
        return Check("base64 support", PASS, "base64 float32 decodes to the float answer")
    return Check("base64 support", FAIL, f"base64 decodes to {dec.shape[0]} values that differ from the float answer",
                 p.fix("base64-wrong"))


def check_norms_remote(p: Probe) -> Check:
    """The raw norms of ``norm_samples`` vectors (a healthy distribution sits near 1; docs/cli.md, `doctor`)."""
    try:
        vecs = _raw_embed(p.client, p.url, p.model, _norm_texts(p.norm_samples), p.batch)
    except RuntimeError as exc:
        return p.fail(Check("vector norms", FAIL, str(exc), p.fix("refused")))
    return _norm_check(vecs, raw=True)


def check_pairs_remote(p: Probe) -> Check:
    """Similar texts (cross-lingual zh/en, code) score above dissimilar ones."""
    try:
        vecs = _raw_embed(p.client, p.url, p.model, _triplet_texts(), p.batch)
    except RuntimeError as exc:
        return p.fail(Check("similar > dissimilar", FAIL, str(exc), p.fix("refused")))
    p.misordered = _misordered(vecs)
    return _pairs_check(vecs)

#: (a) and (b): a short text, and much longer texts to batch it with.
PADDING_TEXT = "Beijing is the capital of China"
#: (~130 and ~40 real tokens: longer than the short text by far, within any engine's length limit.)
LONG_TEXTS = ("The quick brown fox jumps over the lazy dog. " * 12, "机器学习是人工智能的一个分支，研究计算机如何从数据中学习。" * 2)
#: below this cosine a text's vector is not "the same vector" (fp16/bf16 engines stay far above it).
SAME_COSINE = 0.999
#: below this cosine per text the server does not compute what the reference model computes.
REFERENCE_COSINE = 0.99


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    den = np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1)
    return np.asarray((a64 * b64).sum(axis=-1) / np.where(den == 0, 1.0, den))


def check_batch_padding(p: Probe) -> Check:
    """A text alone and the same text between much longer texts in one batch give the same vector."""
    try:
        alone = _raw_embed(p.client, p.url, p.model, [PADDING_TEXT], 1)[0]
        batched = _raw_embed(p.client, p.url, p.model, [LONG_TEXTS[0], PADDING_TEXT, LONG_TEXTS[1]], 3)[1]
    except RuntimeError as exc:
        return Check("batch padding", WARN, f"not compared: {exc}", "The server refused the batch; read its error.")
    cos = float(_cosines(alone, batched))
    detail = f"cosine {cos:.5f} between a text alone and inside a batch of longer texts"
    if cos >= SAME_COSINE:
        return Check("batch padding", PASS, detail)
    return Check("batch padding", FAIL, detail + f" (< {SAME_COSINE})", p.fix("padding"))


def check_determinism(p: Probe) -> Check:
    """The same text, sent twice in one batch and once more alone, gives the same vector each time."""
    try:
        twice = _raw_embed(p.client, p.url, p.model, [TRIPLETS[0][1], LONG_TEXTS[0], TRIPLETS[0][1]], 3)
        again = _raw_embed(p.client, p.url, p.model, [TRIPLETS[0][1]], 1)[0]
    except RuntimeError as exc:
        return Check("determinism", WARN, f"not compared: {exc}", "The server refused the batch; read its error.")
    cos = min(float(_cosines(twice[0], twice[2])), float(_cosines(twice[0], again)))
    detail = f"lowest cosine {cos:.5f} over 3 copies of one text (2 in one batch, 1 alone)"
    if cos >= SAME_COSINE:
        return Check("determinism", PASS, detail)
    return Check("determinism", FAIL, detail + f" (< {SAME_COSINE})", p.fix("determinism"))


def check_reference(p: Probe) -> Check:
    """With ``reference``: the server's vectors equal LocalEmbedder's on the same weights, text by text."""
    if not p.reference:
        return Check("vs reference", SKIP, "pass --reference MODEL_DIR to compare with the model run in-process")
    from .local import LocalEmbedder

    texts = _triplet_texts()
    try:
        local = LocalEmbedder(p.reference, device="cpu")
    except Exception as exc:
        return Check("vs reference", FAIL, f"cannot load {p.reference}: " + " ".join(str(exc).split())[:300],
                     FIXES["load"])
    try:
        want = local.embed_texts(texts)
        got = _raw_embed(p.client, p.url, p.model, texts, p.batch)
    except RuntimeError as exc:
        return Check("vs reference", FAIL, str(exc), p.fix("refused"))
    finally:
        local.close()
    if got.shape != want.shape:
        return Check("vs reference", FAIL, f"the server answers {got.shape[1]}-d, the reference model "
                     f"{want.shape[1]}-d", p.fix("reference"))
    cos = _cosines(got, want)
    worst = int(np.argmin(cos))
    detail = (f"{int((cos >= REFERENCE_COSINE).sum())}/{len(texts)} texts at cosine >= {REFERENCE_COSINE} "
              f"with LocalEmbedder; lowest {cos[worst]:.4f} ({texts[worst].splitlines()[0][:24]!r})")
    if cos[worst] >= REFERENCE_COSINE:
        p.reference_misordered = _misordered(want)
        return Check("vs reference", PASS, detail)
    return Check("vs reference", FAIL, detail, p.fix("reference"))


def _blame_the_model(checks: list[Check], p: Probe) -> list[Check]:
    """A pairs FAIL on a server that computes what the reference model computes, when the reference model
    misorders the same triplets in-process, is the model's doing, not the server's: WARN, saying so."""
    same = p.reference_misordered is not None and p.misordered and p.reference_misordered == p.misordered
    out = []
    for c in checks:
        if c.name == "similar > dissimilar" and c.status == FAIL and same:
            c = Check(c.name, WARN, c.detail + "; the reference model misorders the same triplets in-process",
                      "The server computes what the model computes; the model itself misorders these pairs "
                      "(a small or untrained model?). Use a full Qwen3-Embedding model for retrieval.")
        out.append(c)
    return out


#: (name, check) in table order; each check runs only while no earlier one set ``probe.stop``.
REMOTE_CHECKS: list[tuple[str, Callable[[Probe], Check]]] = [
    ("reachable", check_reachable),
    ("model name", check_model_name),
    ("dimension", check_dimension),
    ("dimensions support", check_dimensions_support),
    ("base64 support", check_base64),
    ("vector norms", check_norms_remote),
    ("similar > dissimilar", check_pairs_remote),
    ("batch padding", check_batch_padding),
    ("determinism", check_determinism),
    ("vs reference", check_reference),
]


@dataclass
class Diagnosis:
    """What the doctor found: the checks in table order, and for an endpoint the route that answered and
    the engine family recognised from what the server sent (None when no profile matched)."""

    target: str
    checks: list[Check]
    engine_family: str | None = None
    endpoint_url: str | None = None

    @property
    def failed(self) -> bool:
        """Whether any check FAILed (the CLI's exit code 1)."""
        return any(c.status == FAIL for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: ``target``, ``engine_family``, ``endpoint_url`` and ``checks`` (name, status, detail, fix)."""
        return {"target": self.target, "engine_family": self.engine_family, "endpoint_url": self.endpoint_url,
                "checks": [asdict(c) for c in self.checks]}


def diagnose_endpoint(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    dimensions: int | None = None,
    timeout: float = 30.0,
    norm_samples: int = 1000,
    batch: int = 32,
    reference: str | None = None,
) -> Diagnosis:
    """All checks against an OpenAI-compatible endpoint: the route as RemoteEmbedder finds it, then raw requests."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    checks: list[Check] = []
    with httpx.Client(timeout=timeout, headers=headers) as client:
        probe = Probe(client, base_url, model, dimensions=dimensions, timeout=timeout, norm_samples=norm_samples,
                      batch=batch, reference=reference, api_key=api_key)
        for name, check in REMOTE_CHECKS:
            checks.append(Check(name, SKIP, "needs the checks above") if probe.stop else check(probe))
    checks = _blame_the_model(checks, probe)
    answered = probe.route.url if probe.route and probe.first is not None and probe.first.status_code == 200 else None
    return Diagnosis(f"endpoint {redact_url(base_url)}", checks, engine_family=probe.family,
                     endpoint_url=redact_url(answered) if answered else None)


def _models_payload(client: httpx.Client, base: str) -> Any:
    """The JSON ``GET {base}/models`` answers, None when it does not (the route is optional)."""
    try:
        r = client.get(base + "/models")
        return r.json() if r.status_code == 200 else None
    except Exception:  # /models is optional
        return None


def _model_ids(payload: Any) -> list[str]:
    data = payload.get("data", []) if isinstance(payload, dict) else []
    return [str(m.get("id")) for m in data if isinstance(m, dict)]


def _raw_embed(client: httpx.Client, url: str, model: str, texts: list[str], batch: int) -> np.ndarray:
    rows: list[np.ndarray] = []
    for i in range(0, len(texts), batch):
        part = texts[i : i + batch]
        r = client.post(url, json={"model": model, "input": part, "encoding_format": "float"})
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code} on a batch of {len(part)}: {r.text[:200]}")
        data = sorted(r.json()["data"], key=lambda d: d.get("index", 0))
        if len(data) != len(part):
            raise RuntimeError(f"asked for {len(part)} embeddings, got {len(data)}")
        rows.extend(np.asarray(d["embedding"], dtype=np.float32) for d in data)
    return np.stack(rows)


# ---------------------------------------------------------------------------- what the checks judge
def _norm_check(vecs: np.ndarray, *, raw: bool) -> Check:
    n = vecs.shape[0]
    if not np.isfinite(vecs).all():
        bad = int((~np.isfinite(vecs).all(axis=1)).sum())
        return Check("vector norms", FAIL, f"{bad} of {n} vectors hold NaN/inf", FIXES["nan"])
    norms = np.linalg.norm(vecs.astype(np.float64), axis=1)
    if (norms == 0).any():
        return Check("vector norms", FAIL, f"{int((norms == 0).sum())} of {n} vectors are all zeros", FIXES["nan"])
    lo, hi = float(norms.min()), float(norms.max())
    detail = f"{n} vectors: norms {lo:.4f} .. {hi:.4f}"
    if abs(lo - 1) <= 0.01 and abs(hi - 1) <= 0.01:
        return Check("vector norms", PASS, detail)
    return Check("vector norms", WARN, detail + (" (raw, not normalised by the server)" if raw else ""), FIXES["norms"])


def _misordered(vecs: np.ndarray) -> frozenset[int]:
    """The triplets (by index) whose similar text does not score above the dissimilar one."""
    v = vecs.astype(np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return frozenset(k for k in range(len(TRIPLETS)) if float(v[3 * k] @ v[3 * k + 1]) <= float(v[3 * k] @ v[3 * k + 2]))


def _pairs_check(vecs: np.ndarray) -> Check:
    v = vecs.astype(np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    wrong: list[str] = []
    margins: list[float] = []
    for k, (kind, anchor, _, _) in enumerate(TRIPLETS):
        a, p, n = v[3 * k], v[3 * k + 1], v[3 * k + 2]
        sp, sn = float(a @ p), float(a @ n)
        margins.append(sp - sn)
        if sp <= sn:
            wrong.append(f"{kind} {anchor.splitlines()[0][:24]!r} ({sp:.2f} <= {sn:.2f})")
    total = len(TRIPLETS)
    detail = f"{total - len(wrong)}/{total} triplets ordered (zh, en, code; mean margin {np.mean(margins):.2f})"
    if not wrong:
        return Check("similar > dissimilar", PASS, detail)
    return Check("similar > dissimilar", FAIL, detail + "; wrong: " + "; ".join(wrong), FIXES["pairs"])


# ---------------------------------------------------------------------------- checks on an in-process embedder
def check_loads(embedder: Embedder, norm_samples: int) -> Check:
    """The model loaded (the caller reports a failure to load)."""
    return Check("model loads", PASS, f"{embedder!r}")


def check_dimension_local(embedder: Embedder, norm_samples: int) -> Check:
    """The output width, and the native one when MRL truncates it."""
    native, dim = embedder.native_dimension, embedder.dimension
    return Check("dimension", PASS, f"{dim}-d" + (f" (native {native})" if native and native != dim else ""))


def check_mrl_local(embedder: Embedder, norm_samples: int) -> Check:
    """Whether ``--dimensions`` is safe: the model is a known MRL model."""
    info = models.lookup(embedder.model)
    if info is not None and info.supports_mrl:
        return Check("dimensions support", PASS,
                     f"MRL model: any of {info.min_dim}..{info.native_dim} by truncation + renormalisation")
    return Check("dimensions support", WARN, "not a known MRL model: --dimensions truncates, which may cost quality",
                 "Use the native size unless the model card says it was trained with MRL.")


def check_base64_local(embedder: Embedder, norm_samples: int) -> Check:
    return Check("base64 support", SKIP, "in-process engine: no wire format")


def check_norms_local(embedder: Embedder, norm_samples: int) -> Check:
    return _norm_check(embedder.embed_documents(_norm_texts(norm_samples)), raw=False)


def check_pairs_local(embedder: Embedder, norm_samples: int) -> Check:
    return _pairs_check(embedder.embed_documents(_triplet_texts()))


#: the in-process checks, in table order.
EMBEDDER_CHECKS: list[Callable[[Embedder, int], Check]] = [
    check_loads, check_dimension_local, check_mrl_local, check_base64_local, check_norms_local, check_pairs_local,
]


def run_embedder(embedder: Embedder, *, norm_samples: int = 1000) -> list[Check]:
    """The checks that make sense for an in-process embedder (already loaded)."""
    return [check(embedder, norm_samples) for check in EMBEDDER_CHECKS]


def diagnose_embedder(embedder: Embedder, *, norm_samples: int = 1000, target: str = "") -> Diagnosis:
    """``run_embedder``'s checks as a Diagnosis (no route, no engine family: nothing goes over the wire)."""
    return Diagnosis(target or f"in-process model {embedder.model}", run_embedder(embedder, norm_samples=norm_samples))


# ---------------------------------------------------------------------------- a store's space card
@dataclass
class SpaceDiagnosis:
    """What ``qwen-embed doctor --store`` found: the store's space card (None when it holds none), the
    current embedder, and the cosine of each probe between the card and the embedder (empty when there was
    nothing to compare, or the widths differ: ``error`` says why)."""

    target: str
    card: SpaceCard | None
    embedder_model: str
    embedder_engine: str
    embedder_dimension: int
    tolerance: float
    cosines: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def same_space(self) -> bool:
        """Every probe at or above the tolerance (False without a card or with an error)."""
        return self.card is not None and self.error is None and bool(self.cosines) and \
            min(self.cosines.values()) >= self.tolerance

    @property
    def mismatch(self) -> bool:
        """The embedder does not fit the collection: another width, or a probe below the tolerance (exit 3)."""
        return self.card is not None and (self.error is not None or not self.same_space)

    @property
    def worst(self) -> tuple[str, float] | None:
        if not self.cosines:
            return None
        name = min(self.cosines, key=lambda k: self.cosines[k])
        return name, self.cosines[name]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: target, card (without its vectors; with its fingerprint), embedder, tolerance,
        probes (name, cosine, pass), same_space, worst, error."""
        card = None
        if self.card is not None:
            card = {k: v for k, v in self.card.to_json().items() if k != "vectors"}
            card["fingerprint"] = self.card.fingerprint
        worst = self.worst
        return {
            "target": self.target, "card": card,
            "embedder": {"model": self.embedder_model, "engine": self.embedder_engine,
                         "dimension": self.embedder_dimension},
            "tolerance": self.tolerance,
            "probes": [{"name": n, "cosine": c, "pass": c >= self.tolerance} for n, c in self.cosines.items()],
            "same_space": self.same_space,
            "worst": None if worst is None else {"probe": worst[0], "cosine": worst[1]},
            "error": self.error,
        }


def diagnose_store(store: VectorStore, *, tolerance: float | None = None, target: str = "") -> SpaceDiagnosis:
    """Read ``store``'s space card and compare the store's embedder with it, probe by probe.

    Nothing is written: a collection without a card gets no card here. ``tolerance`` defaults to the store's
    ``space_tolerance``. The probes are embedded even when some fall below the tolerance, so every cosine is
    reported (the store itself would raise ``VectorSpaceMismatchError`` at the first write or search)."""
    from .space import compare_cards, embed_probes, embedder_identity

    emb = store.embedder
    limit = store.space_tolerance if tolerance is None else tolerance
    model, engine, family = embedder_identity(emb)
    out = SpaceDiagnosis(target or store.name, None, model, engine + (f" ({family})" if family else ""),
                         emb.dimension, limit)
    out.card = card = store.read_space_card()
    if card is None:
        return out
    if card.dimension != emb.dimension:
        out.error = (f"the collection holds {card.dimension}-d vectors, the embedder makes {emb.dimension}-d ones: "
                     "use the embedder and --dimensions the collection was made with")
        return out
    out.cosines = compare_cards(card, embed_probes(emb, card.instruction), limit).cosines
    return out


__all__ = [
    "EMBEDDER_CHECKS",
    "FAIL",
    "FIXES",
    "PASS",
    "REMOTE_CHECKS",
    "ROUTE_HINT",
    "SKIP",
    "TRIPLETS",
    "WARN",
    "Check",
    "Diagnosis",
    "Probe",
    "SpaceDiagnosis",
    "Route",
    "cycled_texts",
    "diagnose_embedder",
    "diagnose_endpoint",
    "diagnose_store",
    "find_route",
    "load_corpus",
    "run_embedder",
    "ENGINE_PROBLEMS",
    "LONG_TEXTS",
    "PADDING_TEXT",
    "PING",
    "REFERENCE_COSINE",
    "SAME_COSINE",
    "check_base64",
    "check_base64_local",
    "check_batch_padding",
    "check_determinism",
    "check_dimension",
    "check_dimension_local",
    "check_dimensions_support",
    "check_loads",
    "check_model_name",
    "check_mrl_local",
    "check_norms_local",
    "check_norms_remote",
    "check_pairs_local",
    "check_pairs_remote",
    "check_reachable",
    "check_reference",
]
