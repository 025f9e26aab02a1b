"""``qwen-embed doctor``: check an embedding endpoint or a local model the way a careful user would.

Against an endpoint the checks use raw HTTP (so they see what the server really sends): reachable,
model name, dimension, ``dimensions`` support, base64 support, the norms of 1,000 vectors, and similar
pairs scoring above dissimilar ones in a small built-in Chinese/English/code set. Each result is PASS,
WARN (works, because the client compensates), FAIL or SKIP, with a fix for everything that is not PASS.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import models

if TYPE_CHECKING:
    import httpx

    from .embedder import Embedder

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
    from .demo import load_corpus

    corpus = [r["text"] for r in load_corpus()]
    return [f"{corpus[i % len(corpus)]} [{i}]" for i in range(n)]


def run_remote(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    dimensions: int | None = None,
    timeout: float = 30.0,
    norm_samples: int = 1000,
    batch: int = 32,
) -> list[Check]:
    """All checks against an OpenAI-compatible endpoint, with raw requests."""
    import httpx

    from ._http import redact_url
    from .remote import normalise_base_url

    base = normalise_base_url(base_url)
    url = base + "/embeddings"
    shown = redact_url(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    checks: list[Check] = []
    names = ("model name", "dimension", "dimensions support", "base64 support", "vector norms", "similar > dissimilar")

    def skip_rest(after: int) -> list[Check]:
        return checks + [Check(n, SKIP, "needs the checks above") for n in names[after:]]

    with httpx.Client(timeout=timeout, headers=headers) as client:
        # 1. reachable
        t0 = time.perf_counter()
        try:
            first = client.post(url, json={"model": model, "input": ["ping"], "encoding_format": "float"})
        except httpx.ConnectError as exc:
            checks.append(Check("reachable", FAIL, f"connection refused: {shown} ({exc})", FIXES["refused"]))
            return skip_rest(0)
        except httpx.TimeoutException:
            checks.append(Check("reachable", FAIL, f"no answer from {shown} within {timeout:.0f} s", FIXES["timeout"]))
            return skip_rest(0)
        except httpx.TransportError as exc:
            checks.append(Check("reachable", FAIL, f"{type(exc).__name__}: {exc}", FIXES["refused"]))
            return skip_rest(0)
        elapsed = time.perf_counter() - t0
        status = first.status_code
        body = first.text[:300]
        if status in (401, 403):
            checks.append(Check("reachable", FAIL, f"HTTP {status} from {shown}: {body}", FIXES["auth"]))
            return skip_rest(0)
        if status == 404 and "model" not in body.lower():
            checks.append(Check("reachable", FAIL, f"HTTP 404 from {shown}: no embeddings route", FIXES["path"]))
            return skip_rest(0)
        checks.append(Check("reachable", PASS, f"HTTP {status} from {shown} in {elapsed:.2f} s"))

        # 2. model name
        listed = _list_models(client, base)
        if status != 200:
            fix = FIXES["model"] if ("model" in body.lower() or status == 404) else (
                f"The server refused a plain one-string request (HTTP {status}); read its log."
            )
            extra = f"; the server lists {listed}" if listed else ""
            checks.append(Check("model name", FAIL, f"{model!r} refused: HTTP {status}: {body}{extra}", fix))
            return skip_rest(1)
        if listed and model not in listed:
            checks.append(Check("model name", WARN, f"{model!r} answered, but /models lists {listed}", FIXES["model"]))
        else:
            where = "listed by /models" if listed else "accepted (/models not available)"
            checks.append(Check("model name", PASS, f"{model!r} {where}"))
        try:
            ping = np.asarray(first.json()["data"][0]["embedding"], dtype=np.float32)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            checks.append(Check("dimension", FAIL, f"malformed answer ({exc}): {body}", FIXES["path"]))
            return skip_rest(2)

        # 3. dimension
        width = int(ping.shape[0])
        info = models.lookup(model)
        if info is not None and width != info.native_dim:
            checks.append(Check("dimension", FAIL, f"{width}-d, but {model} is natively {info.native_dim}-d",
                                FIXES["dimension"]))
        else:
            known = f" ({model} native)" if info is not None else ""
            checks.append(Check("dimension", PASS, f"{width}-d{known}"))

        # 4. dimensions
        ask = dimensions or max(1, min(256, width // 2))
        r = client.post(url, json={"model": model, "input": ["ping"], "encoding_format": "float", "dimensions": ask})
        if r.status_code == 200:
            try:
                vec = np.asarray(r.json()["data"][0]["embedding"], dtype=np.float32)
            except (ValueError, KeyError, IndexError, TypeError):
                vec = np.empty(0, np.float32)
            norm = float(np.linalg.norm(vec)) if vec.size else 0.0
            if vec.shape[0] == ask and abs(norm - 1.0) < 1e-3:
                checks.append(Check("dimensions support", PASS, f"dimensions={ask}: {ask}-d, renormalised"))
            elif vec.shape[0] == ask:
                checks.append(Check("dimensions support", WARN,
                                    f"dimensions={ask}: sliced without renormalising (norm {norm:.3f})",
                                    FIXES["dimensions"]))
            else:
                checks.append(Check("dimensions support", WARN,
                                    f"dimensions={ask} ignored: answered {vec.shape[0]}-d", FIXES["dimensions"]))
        else:
            checks.append(Check("dimensions support", WARN,
                                f"dimensions={ask} refused: HTTP {r.status_code}: {r.text[:160]}", FIXES["dimensions"]))

        # 5. base64
        r = client.post(url, json={"model": model, "input": ["ping"], "encoding_format": "base64"})
        if r.status_code != 200:
            checks.append(Check("base64 support", WARN, f"refused: HTTP {r.status_code}: {r.text[:160]}", FIXES["base64"]))
        else:
            emb = r.json()["data"][0].get("embedding")
            if isinstance(emb, str):
                try:
                    dec = np.frombuffer(base64.b64decode(emb), dtype=np.float32)
                except (ValueError, TypeError):
                    dec = np.empty(0, np.float32)
                if dec.shape == ping.shape and np.allclose(dec, ping, atol=1e-3):
                    checks.append(Check("base64 support", PASS, "base64 float32 decodes to the float answer"))
                else:
                    checks.append(Check("base64 support", FAIL,
                                        f"base64 decodes to {dec.shape[0]} values that differ from the float answer",
                                        FIXES["base64-wrong"]))
            else:
                checks.append(Check("base64 support", WARN, "ignored: floats returned", FIXES["base64"]))

        # 6. norms of norm_samples vectors
        texts = _norm_texts(norm_samples)
        try:
            vecs = _raw_embed(client, url, model, texts, batch)
        except RuntimeError as exc:
            checks.append(Check("vector norms", FAIL, str(exc), FIXES["refused"]))
            return checks + [Check(names[-1], SKIP, "needs the checks above")]
        checks.append(_norm_check(vecs, raw=True))

        # 7. similar pairs
        flat = [t for _, a, p, n in TRIPLETS for t in (a, p, n)]
        try:
            pv = _raw_embed(client, url, model, flat, batch)
        except RuntimeError as exc:
            checks.append(Check("similar > dissimilar", FAIL, str(exc), FIXES["refused"]))
            return checks
        checks.append(_pairs_check(pv))
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


def run_embedder(embedder: Embedder, *, norm_samples: int = 1000) -> list[Check]:
    """The checks that make sense for an in-process embedder (already loaded)."""
    checks = [Check("model loads", PASS, f"{embedder!r}")]
    info = models.lookup(embedder.model)
    native = getattr(embedder, "_native_dim", None)
    dim = embedder.dimension
    checks.append(Check("dimension", PASS, f"{dim}-d" + (f" (native {native})" if native and native != dim else "")))
    if info is not None and info.supports_mrl:
        checks.append(Check("dimensions support", PASS,
                            f"MRL model: any of {info.min_dim}..{info.native_dim} by truncation + renormalisation"))
    else:
        checks.append(Check("dimensions support", WARN,
                            "not a known MRL model: --dimensions truncates, which may cost quality",
                            "Use the native size unless the model card says it was trained with MRL."))
    checks.append(Check("base64 support", SKIP, "in-process engine: no wire format"))
    texts = _norm_texts(norm_samples)
    checks.append(_norm_check(embedder.embed_documents(texts), raw=False))
    flat = [t for _, a, p, n in TRIPLETS for t in (a, p, n)]
    checks.append(_pairs_check(embedder.embed_documents(flat)))
    return checks


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


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run the checks, print the table; exit 1 when any check FAILs."""
    from .commands import build_embedder

    engine = args.engine if args.engine != "auto" else ("remote" if args.base_url else "local")
    if engine == "remote":
        if not args.base_url:
            print("error: --engine remote needs --base-url", file=sys.stderr)
            return 2
        key_env = args.api_key_env
        key = os.environ.get(key_env) if key_env else (
            os.environ.get("QWEN_EMBED_API_KEY") or os.environ.get("OPENAI_API_KEY")
        )
        checks = run_remote(
            args.base_url, args.model or "Qwen3-Embedding-0.6B", api_key=key or None,
            dimensions=args.dimensions, timeout=args.timeout, norm_samples=args.samples,
        )
        target = f"endpoint {args.base_url}"
    else:
        target = f"in-process model {args.model or 'Qwen/Qwen3-Embedding-0.6B'}"
        try:
            embedder = build_embedder(args)
        except MemoryError:
            checks = [Check("model loads", FAIL, "out of memory while loading", FIXES["oom"])]
        except Exception as exc:
            checks = [Check("model loads", FAIL, " ".join(str(exc).split())[:400], FIXES["load"])]
        else:
            try:
                checks = run_embedder(embedder, norm_samples=args.samples)
            finally:
                embedder.close()
    if args.json:
        print(json.dumps({"target": target, "checks": [asdict(c) for c in checks]}, ensure_ascii=False))
    else:
        print(f"qwen-embed doctor: {target}\n")
        print(format_table(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0
