"""Ray Data on a local cluster (2 CPUs): 20,000 texts into a Milvus server and a `chroma run` server,
exactly once, with an embedding actor SIGKILLed mid-run, and the errors a bad job must give."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.errors import ConfigurationError, DimensionMismatchError, InvalidInputError
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support.chroma_server import ChromaServer
from tests.support.local_fixtures import serve_tiny, tiny_qwen3_dir  # noqa: F401
from tests.support.milvus_fixtures import corpus, milvus_lite_server, milvus_lite_server_mode

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.integration

N = 20_000
PID_DIR = Path(tempfile.mkdtemp(prefix="qwen-ray-pids-"))


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
        runtime_env={"env_vars": {"QWEN_EMBED_RAY_PID_DIR": str(PID_DIR), "TOKENIZERS_PARALLELISM": "false"}},
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ok, reason = milvus_lite_server_mode()
    assert ok, reason  # milvus-lite (the milvus extra) ships `milvus-lite server`
    with milvus_lite_server(tmp_path_factory.mktemp("ray_milvus") / "data") as uri:
        yield uri


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with ChromaServer(tmp_path_factory.mktemp("ray_chroma")) as srv:
        yield srv


def _milvus_rows(uri: str, name: str) -> dict[str, np.ndarray]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    try:
        out: dict[str, np.ndarray] = {}
        it = client.query_iterator(name, batch_size=5000, output_fields=["id", "vector"])
        while True:
            page = it.next()
            if not page:
                break
            for row in page:
                assert row["id"] not in out, f"duplicate id {row['id']}"
                out[row["id"]] = np.asarray(row["vector"], dtype=np.float32)
        it.close()
        return out
    finally:
        client.close()


def _chroma_rows(srv: ChromaServer, name: str) -> dict[str, np.ndarray]:
    col = srv.client().get_collection(name)
    out: dict[str, np.ndarray] = {}
    total = col.count()
    for start in range(0, total, 5000):
        got = col.get(include=["embeddings"], limit=5000, offset=start)
        for i, e in zip(got["ids"], got["embeddings"], strict=True):
            assert i not in out, f"duplicate id {i}"
            out[i] = np.asarray(e, dtype=np.float32)
    return out


def _assert_exact(rows: dict[str, np.ndarray], texts: list[str], expected: np.ndarray) -> None:
    assert len(rows) == len(texts)
    ids = [content_id(t) for t in texts]
    assert set(rows) == set(ids)
    got = np.stack([rows[i] for i in ids])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def _kill_one_actor_when(started: threading.Event, stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL one embedding actor once the job is under way (its pid file exists)."""
    while not stop.is_set():
        pids = sorted(int(p.stem) for p in PID_DIR.glob("*.pid"))
        if pids and started.is_set():
            time.sleep(1.0)
            pid = pids[-1]
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                continue
            return
        time.sleep(0.2)


def test_local_embedder_to_milvus_exactly_once_with_a_killed_actor(
    ray_cluster: Any, milvus_uri: str, tiny_qwen3_dir: str  # noqa: F811
) -> None:
    from qwen_embed_adapters.local import LocalEmbedder
    from qwen_embed_adapters.ray import ingest_ray

    texts = corpus(N, prefix="ray")
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu")
    expected = emb.embed_documents(texts)
    for p in PID_DIR.glob("*.pid"):
        p.unlink()
    started, stop, killed = threading.Event(), threading.Event(), []
    killer = threading.Thread(target=_kill_one_actor_when, args=(started, stop, killed), daemon=True)
    killer.start()
    started.set()
    ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=40)
    try:
        report = ingest_ray(ds, f"milvus+{milvus_uri}/ray_local", emb, concurrency=2, batch_size=500)
    finally:
        stop.set()
        killer.join(timeout=5)
    assert killed, "no embedding actor was killed: the fault was not injected"
    assert report.written + report.skipped == N and report.invalid == 0
    _assert_exact(_milvus_rows(milvus_uri, "ray_local"), texts, expected)
    # A second run finds every record stored and writes nothing.
    again = ingest_ray(ds, f"milvus+{milvus_uri}/ray_local", emb, concurrency=2, batch_size=500)
    assert (again.written, again.skipped) == (0, N)


def test_remote_embedder_to_chroma_server_exactly_once(
    ray_cluster: Any, chroma: ChromaServer, serve_tiny: Any, tiny_qwen3_dir: str  # noqa: F811
) -> None:
    from qwen_embed_adapters.local import LocalEmbedder
    from qwen_embed_adapters.ray import ingest_ray
    from qwen_embed_adapters.remote import RemoteEmbedder

    texts = corpus(N, prefix="remote")
    expected = LocalEmbedder(tiny_qwen3_dir, device="cpu").embed_documents(texts)
    emb = RemoteEmbedder(serve_tiny.base_url, model="tiny-qwen3", batch_size=256)
    spec = f"chroma+http://127.0.0.1:{chroma.port}/ray_remote"
    ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=20)
    report = ingest_ray(ds, spec, emb, concurrency=2, batch_size=1000)
    assert (report.written, report.skipped, report.invalid) == (N, 0, 0)
    _assert_exact(_chroma_rows(chroma, "ray_remote"), texts, expected)


def test_embed_dataset_gives_a_fixed_width_float32_column_and_wraps_queries(ray_cluster: Any) -> None:
    from qwen_embed_adapters.ray import embed_dataset

    emb = FakeEmbedder(dimensions=32, query_instruction="Find the passage")
    texts = [f"question {i}" for i in range(300)]
    ds = ray.data.from_items([{"text": t} for t in texts])
    docs = embed_dataset(ds, emb, batch_size=64, concurrency=2).take_all()
    queries = embed_dataset(ds, emb, kind="query", batch_size=64).take_all()
    by_text = {r["text"]: r["vector"] for r in docs}
    q_by_text = {r["text"]: r["vector"] for r in queries}
    assert by_text[texts[7]].dtype == np.float32 and by_text[texts[7]].shape == (32,)
    np.testing.assert_allclose(np.stack([by_text[t] for t in texts]), emb.embed_documents(texts), atol=1e-6)
    np.testing.assert_allclose(np.stack([q_by_text[t] for t in texts]), emb.embed_queries(texts), atol=1e-6)
    # Queries carry the Qwen3 instruction, documents do not: the vectors differ.
    assert not np.allclose(by_text[texts[0]], q_by_text[texts[0]])


def test_bad_records_are_skipped_and_counted_or_raised_by_id(ray_cluster: Any, chroma: ChromaServer) -> None:
    from qwen_embed_adapters.ray import ingest_ray

    emb = FakeEmbedder(dimensions=16)
    spec = f"chroma+http://127.0.0.1:{chroma.port}/ray_bad"
    # Bad input tried: an empty text and a metadata that is a list.
    rows = [{"id": f"r{i}", "text": f"fine {i}", "metadata": {"n": i}} for i in range(50)]
    rows[10] = {"id": "r10", "text": "", "metadata": {"n": 10}}
    rows[20] = {"id": "r20", "text": "meta is a list", "metadata": None}
    ds = ray.data.from_items(rows)
    report = ingest_ray(ds, spec, emb, on_invalid="skip")
    assert (report.written, report.invalid) == (49, 1)
    col = chroma.client().get_collection("ray_bad")
    assert col.count() == 49 and not col.get(ids=["r10"])["ids"]
    assert col.get(ids=["r3"], include=["metadatas"])["metadatas"] == [{"n": 3}]
    with pytest.raises(InvalidInputError, match="r10"):
        ingest_ray(ray.data.from_items(rows), f"chroma+http://127.0.0.1:{chroma.port}/ray_bad_raise", emb)


def test_dimension_guard_runs_before_any_block_is_written(ray_cluster: Any, chroma: ChromaServer) -> None:
    from qwen_embed_adapters.ray import ingest_ray

    spec = f"chroma+http://127.0.0.1:{chroma.port}/ray_dims"
    ds = ray.data.from_items([{"text": f"t {i}"} for i in range(100)])
    ingest_ray(ds, spec, FakeEmbedder(dimensions=16))
    with pytest.raises(DimensionMismatchError) as err:
        ingest_ray(ray.data.from_items([{"text": f"new {i}"} for i in range(100)]), spec, FakeEmbedder(dimensions=32))
    assert (err.value.expected, err.value.actual) == (16, 32)
    assert chroma.client().get_collection("ray_dims").count() == 100


def test_faiss_is_refused_as_local_only(ray_cluster: Any, tmp_path: Path) -> None:
    from qwen_embed_adapters.ray import ingest_ray

    with pytest.raises(ConfigurationError, match="the faiss store is local-only"):
        ingest_ray(ray.data.from_items([{"text": "x"}]), f"faiss://{tmp_path}", FakeEmbedder())


def test_cli_ingest_on_ray_into_chroma(ray_cluster: Any, chroma: ChromaServer, tmp_path: Path) -> None:
    """`qwen-embed ingest --ray` (attaching to the running local cluster) chunks files and lands every chunk."""
    import json
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [{"id": f"j{i}", "text": f"jsonl record {i}", "metadata": {"n": i}} for i in range(120)]
    (docs / "a.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    spec = f"chroma+http://127.0.0.1:{chroma.port}/ray_cli"
    address = ray.get_runtime_context().gcs_address
    out = subprocess.run(
        [sys.executable, "-m", "qwen_embed_adapters.cli", "ingest", str(docs), "--ray", address,
         "--store-spec", spec, "--engine", "fake", "--dimensions", "16", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert (report["written"], report["invalid"]) == (120, 0)
    col = chroma.client().get_collection("ray_cli")
    assert col.count() == 120
    assert col.get(ids=["j7"], include=["documents", "metadatas"])["documents"] == ["jsonl record 7"]
