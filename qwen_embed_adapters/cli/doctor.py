"""``qwen-embed doctor``: check an embedding endpoint or a local model the way a careful user would.

Against an endpoint the checks use raw HTTP (so they see what the server really sends): reachable,
model name, dimension, ``dimensions`` support, base64 support, the norms of 1,000 vectors, and similar
pairs scoring above dissimilar ones in a small built-in Chinese/English/code set, then whether the vectors
are right: a text alone equals the same text in a batch of much longer ones (padding bugs), the same text
twice gives the same vector (non-determinism), and, given ``reference`` (a model folder), the server's
vectors equal ``LocalEmbedder``'s on the same weights (wrong pooling, as llama.cpp's default mean pooling
gives for Qwen3). Each result is PASS,
WARN (works, because the client compensates), FAIL or SKIP, with a fix for everything that is not PASS.

Each check is one small function; ``REMOTE_CHECKS`` and ``EMBEDDER_CHECKS`` list them in the order the
table shows them. A remote check that leaves nothing for the later ones to look at (no answer, a refused
model) sets ``probe.stop`` and the rest are reported as SKIP.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import models
from .corpus import cycled_texts

if TYPE_CHECKING:
    import httpx

    from ..embedder import Embedder

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"

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
    "path": "The server has no /embeddings route here: the base URL usually ends in /v1 "
            "(http://host:30000/v1), and SGLang needs --is-embedding.",
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


def _norm_texts(n: int) -> list[str]:
    return cycled_texts(n, "{text} [{i}]")


def _triplet_texts() -> list[str]:
    return [t for _, a, p, n in TRIPLETS for t in (a, p, n)]


# ---------------------------------------------------------------------------- checks against an endpoint
@dataclass
class Probe:
    """What the remote checks share: the client, where to send, and what the earlier checks learned."""

    client: httpx.Client
    base: str
    model: str
    dimensions: int | None = None
    timeout: float = 30.0
    norm_samples: int = 1000
    batch: int = 32
    reference: str | None = None  # a model folder whose LocalEmbedder vectors the server's must match
    first: Any = None  # the answer to the first one-string request
    ping: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))  # its vector
    stop: bool = False  # set by a check that leaves nothing for the later ones to look at

    @property
    def url(self) -> str:
        return self.base + "/embeddings"

    @property
    def shown(self) -> str:
        from .._http import redact_url

        return redact_url(self.url)

    def post(self, **body: Any) -> httpx.Response:
        return self.client.post(self.url, json={"model": self.model, "input": ["ping"], **body})

    def fail(self, check: Check) -> Check:
        self.stop = True
        return check


def check_reachable(p: Probe) -> Check:
    """The endpoint answers a one-string request (any status but auth or a missing route)."""
    import httpx

    t0 = time.perf_counter()
    try:
        p.first = p.post(encoding_format="float")
    except httpx.ConnectError as exc:
        return p.fail(Check("reachable", FAIL, f"connection refused: {p.shown} ({exc})", FIXES["refused"]))
    except httpx.TimeoutException:
        return p.fail(Check("reachable", FAIL, f"no answer from {p.shown} within {p.timeout:.0f} s", FIXES["timeout"]))
    except httpx.TransportError as exc:
        return p.fail(Check("reachable", FAIL, f"{type(exc).__name__}: {exc}", FIXES["refused"]))
    elapsed = time.perf_counter() - t0
    status, body = p.first.status_code, p.first.text[:300]
    if status in (401, 403):
        return p.fail(Check("reachable", FAIL, f"HTTP {status} from {p.shown}: {body}", FIXES["auth"]))
    if status == 404 and "model" not in body.lower():
        return p.fail(Check("reachable", FAIL, f"HTTP 404 from {p.shown}: no embeddings route", FIXES["path"]))
    return Check("reachable", PASS, f"HTTP {status} from {p.shown} in {elapsed:.2f} s")


def check_model_name(p: Probe) -> Check:
    """The server accepts ``--model`` (and lists it on /models when it has that route)."""
    listed = _list_models(p.client, p.base)
    status, body = p.first.status_code, p.first.text[:300]
    if status != 200:
        fix = FIXES["model"] if ("model" in body.lower() or status == 404) else (
            f"The server refused a plain one-string request (HTTP {status}); read its log."
        )
        extra = f"; the server lists {listed}" if listed else ""
        return p.fail(Check("model name", FAIL, f"{p.model!r} refused: HTTP {status}: {body}{extra}", fix))
    if listed and p.model not in listed:
        return Check("model name", WARN, f"{p.model!r} answered, but /models lists {listed}", FIXES["model"])
    where = "listed by /models" if listed else "accepted (/models not available)"
    return Check("model name", PASS, f"{p.model!r} {where}")


def check_dimension(p: Probe) -> Check:
    """The answer is a vector of the model's native width."""
    try:
        p.ping = np.asarray(p.first.json()["data"][0]["embedding"], dtype=np.float32)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return p.fail(Check("dimension", FAIL, f"malformed answer ({exc}): {p.first.text[:300]}", FIXES["path"]))
    width = int(p.ping.shape[0])
    info = models.lookup(p.model)
    if info is not None and width != info.native_dim:
        return Check("dimension", FAIL, f"{width}-d, but {p.model} is natively {info.native_dim}-d", FIXES["dimension"])
    known = f" ({p.model} native)" if info is not None else ""
    return Check("dimension", PASS, f"{width}-d{known}")


def check_dimensions_support(p: Probe) -> Check:
    """``dimensions`` (MRL) is honoured: the asked width, renormalised."""
    ask = p.dimensions or max(1, min(256, int(p.ping.shape[0]) // 2))
    r = p.post(encoding_format="float", dimensions=ask)
    if r.status_code != 200:
        return Check("dimensions support", WARN, f"dimensions={ask} refused: HTTP {r.status_code}: {r.text[:160]}",
                     FIXES["dimensions"])
    try:
        vec = np.asarray(r.json()["data"][0]["embedding"], dtype=np.float32)
    except (ValueError, KeyError, IndexError, TypeError):
        vec = np.empty(0, np.float32)
    norm = float(np.linalg.norm(vec)) if vec.size else 0.0
    if vec.shape[0] == ask and abs(norm - 1.0) < 1e-3:
        return Check("dimensions support", PASS, f"dimensions={ask}: {ask}-d, renormalised")
    if vec.shape[0] == ask:
        return Check("dimensions support", WARN, f"dimensions={ask}: sliced without renormalising (norm {norm:.3f})",
                     FIXES["dimensions"])
    return Check("dimensions support", WARN, f"dimensions={ask} ignored: answered {vec.shape[0]}-d", FIXES["dimensions"])


def check_base64(p: Probe) -> Check:
    """``encoding_format: base64`` is honoured and decodes to the float answer."""
    r = p.post(encoding_format="base64")
    if r.status_code != 200:
        return Check("base64 support", WARN, f"refused: HTTP {r.status_code}: {r.text[:160]}", FIXES["base64"])
    emb = r.json()["data"][0].get("embedding")
    if not isinstance(emb, str):
        return Check("base64 support", WARN, "ignored: floats returned", FIXES["base64"])
    try:
        dec = np.frombuffer(base64.b64decode(emb), dtype=np.float32)
    except (ValueError, TypeError):
        dec = np.empty(0, np.float32)
    if dec.shape == p.ping.shape and np.allclose(dec, p.ping, atol=1e-3):
        return Check("base64 support", PASS, "base64 float32 decodes to the float answer")
    return Check("base64 support", FAIL, f"base64 decodes to {dec.shape[0]} values that differ from the float answer",
                 FIXES["base64-wrong"])


def check_norms_remote(p: Probe) -> Check:
    """The raw norms of ``norm_samples`` vectors (seed §6.3: a healthy distribution sits near 1)."""
    try:
        vecs = _raw_embed(p.client, p.url, p.model, _norm_texts(p.norm_samples), p.batch)
    except RuntimeError as exc:
        return p.fail(Check("vector norms", FAIL, str(exc), FIXES["refused"]))
    return _norm_check(vecs, raw=True)


def check_pairs_remote(p: Probe) -> Check:
    """Similar texts (cross-lingual zh/en, code) score above dissimilar ones."""
    try:
        vecs = _raw_embed(p.client, p.url, p.model, _triplet_texts(), p.batch)
    except RuntimeError as exc:
        return p.fail(Check("similar > dissimilar", FAIL, str(exc), FIXES["refused"]))
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
    return Check("batch padding", FAIL, detail + f" (< {SAME_COSINE})", FIXES["padding"])


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
    return Check("determinism", FAIL, detail + f" (< {SAME_COSINE})", FIXES["determinism"])


def check_reference(p: Probe) -> Check:
    """With ``reference``: the server's vectors equal LocalEmbedder's on the same weights, text by text."""
    if not p.reference:
        return Check("vs reference", SKIP, "pass --reference MODEL_DIR to compare with the model run in-process")
    from ..local import LocalEmbedder

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
        return Check("vs reference", FAIL, str(exc), FIXES["refused"])
    finally:
        local.close()
    if got.shape != want.shape:
        return Check("vs reference", FAIL, f"the server answers {got.shape[1]}-d, the reference model "
                     f"{want.shape[1]}-d", FIXES["reference"])
    cos = _cosines(got, want)
    worst = int(np.argmin(cos))
    detail = (f"{int((cos >= REFERENCE_COSINE).sum())}/{len(texts)} texts at cosine >= {REFERENCE_COSINE} "
              f"with LocalEmbedder; lowest {cos[worst]:.4f} ({texts[worst].splitlines()[0][:24]!r})")
    if cos[worst] >= REFERENCE_COSINE:
        return Check("vs reference", PASS, detail)
    return Check("vs reference", FAIL, detail, FIXES["reference"])


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


def run_remote(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    dimensions: int | None = None,
    timeout: float = 30.0,
    norm_samples: int = 1000,
    batch: int = 32,
    reference: str | None = None,
) -> list[Check]:
    """All checks against an OpenAI-compatible endpoint, with raw requests."""
    import httpx

    from ..remote import normalise_base_url

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    checks: list[Check] = []
    with httpx.Client(timeout=timeout, headers=headers) as client:
        probe = Probe(client, normalise_base_url(base_url), model, dimensions=dimensions, timeout=timeout,
                      norm_samples=norm_samples, batch=batch, reference=reference)
        for name, check in REMOTE_CHECKS:
            checks.append(Check(name, SKIP, "needs the checks above") if probe.stop else check(probe))
    return checks


def _list_models(client: httpx.Client, base: str) -> list[str]:
    try:
        r = client.get(base + "/models")
        if r.status_code != 200:
            return []
        return [str(m.get("id")) for m in r.json().get("data", []) if isinstance(m, dict)]
    except Exception:  # /models is optional
        return []


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


# ---------------------------------------------------------------------------- the command
def format_table(checks: list[Check]) -> str:
    """The pass/fail table, then one fix line per check that did not pass."""
    w = max(len(c.name) for c in checks)
    lines = [f"{'check':<{w}}  result  detail", f"{'-' * w}  ------  {'-' * 40}"]
    for c in checks:
        lines.append(f"{c.name:<{w}}  {c.status:<6}  {c.detail}")
    fixes = [c for c in checks if c.fix and c.status in (FAIL, WARN)]
    if fixes:
        lines.append("")
        lines.append("how to fix:")
        for c in fixes:
            lines.append(f"  [{c.status}] {c.name}: {c.fix}")
    return "\n".join(lines)


def _check_remote(args: argparse.Namespace) -> list[Check]:
    key_env = args.api_key_env
    key = os.environ.get(key_env) if key_env else (
        os.environ.get("QWEN_EMBED_API_KEY") or os.environ.get("OPENAI_API_KEY")
    )
    return run_remote(args.base_url, args.model or "Qwen3-Embedding-0.6B", api_key=key or None,
                      dimensions=args.dimensions, timeout=args.timeout, norm_samples=args.samples,
                      reference=getattr(args, "reference", None))


def _check_in_process(args: argparse.Namespace) -> list[Check]:
    from .options import build_embedder

    try:
        embedder = build_embedder(args)
    except MemoryError:
        return [Check("model loads", FAIL, "out of memory while loading", FIXES["oom"])]
    except Exception as exc:
        return [Check("model loads", FAIL, " ".join(str(exc).split())[:400], FIXES["load"])]
    try:
        return run_embedder(embedder, norm_samples=args.samples)
    finally:
        embedder.close()


def run(args: argparse.Namespace) -> int:
    """Run the checks, print the table; exit 1 when any check FAILs."""
    engine = args.engine if args.engine != "auto" else ("remote" if args.base_url else "local")
    if engine == "remote":
        if not args.base_url:
            print("error: --engine remote needs --base-url", file=sys.stderr)
            return 2
        checks = _check_remote(args)
        target = f"endpoint {args.base_url}"
    else:
        checks = _check_in_process(args)
        target = f"in-process model {args.model or 'Qwen/Qwen3-Embedding-0.6B'}"
    if args.json:
        print(json.dumps({"target": target, "checks": [asdict(c) for c in checks]}, ensure_ascii=False))
    else:
        print(f"qwen-embed doctor: {target}\n")
        print(format_table(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0
