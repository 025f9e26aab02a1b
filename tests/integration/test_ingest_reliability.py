"""Bulk ingestion against real parts: a misbehaving HTTP embedding server, Milvus Lite, `chroma run`,
and an ingestion process killed with SIGKILL halfway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.errors import IngestError
from qwen_embed_adapters.ingest import ingest
from qwen_embed_adapters.remote import RemoteEmbedder
from tests.support.openai_server import EmbeddingServer

pytestmark = pytest.mark.integration

DIM = 32
REPO = Path(__file__).resolve().parents[2]


def corpus(n: int) -> Iterator[str]:
    """A generator, like a huge file read lazily: n distinct texts."""
    for i in range(n):
        yield f"passage {i}: 文本编号 {i} about topic {i % 97} and subject {i % 13}"


def expected_ids(n: int) -> set[str]:
    return {content_id(t) for t in corpus(n)}


def flaky_embedder(url: str, **kw: Any) -> RemoteEmbedder:
    # Generous retries with short waits: 20% failures must be absorbed, not slow the suite down.
    defaults: dict[str, Any] = dict(
        model="fake-qwen", batch_size=100, max_concurrency=4, max_retries=12, timeout=5.0,
        backoff_base=0.01, backoff_max=0.05,
    )
    defaults.update(kw)
    return RemoteEmbedder(url, **defaults)


def reference(server: EmbeddingServer, texts: list[str]) -> np.ndarray:
    raw = server.expected(texts)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


# ---------------------------------------------------------------------------- stores
@pytest.fixture
def milvus_store_factory(tmp_path: Path) -> Iterator[Any]:
    from qwen_embed_adapters.adapters.milvus import MilvusStore

    opened: list[Any] = []

    def make(embedder: RemoteEmbedder, name: str = "reliability") -> Any:
        store = MilvusStore(str(tmp_path / "milvus.db"), name, embedder)
        opened.append(store)
        return store

    yield make
    for s in opened:
        s.close()


def milvus_ids(store: Any) -> list[str]:
    rows = store.client.query(store.collection, filter='id != ""', output_fields=["id"], limit=16384)
    return [r["id"] for r in rows]


def milvus_vectors(store: Any, ids: list[str]) -> dict[str, np.ndarray]:
    rows = store.client.get(store.collection, ids=ids, output_fields=["id", "vector"])
    return {r["id"]: np.asarray(r["vector"], dtype=np.float32) for r in rows}


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.support.chroma_server import ChromaServer

    with ChromaServer(tmp_path_factory.mktemp("chroma") / "data") as srv:
        yield srv


# ---------------------------------------------------------------------------- (a) 20% failures
def test_10000_texts_through_a_failing_server_into_milvus_lite(milvus_store_factory: Any) -> None:
    with EmbeddingServer(dim=DIM, fail_rate=0.2, seed=7, retry_after=0.01, slow_seconds=0.05) as srv:
        emb = flaky_embedder(srv.base_url)
        store = milvus_store_factory(emb)
        report = ingest(store, corpus(10_000), batch_size=500, progress=False)
        faults = len(srv.requests) - -(-10_000 // 100)
    assert (report.written, report.skipped, report.failed) == (10_000, 0, 0)
    assert faults > 10, "the server should have failed some requests"
    ids = milvus_ids(store)
    assert len(ids) == 10_000 and set(ids) == expected_ids(10_000)
    assert store.count() == 10_000
    sample = [t for i, t in enumerate(corpus(10_000)) if i % 997 == 0]
    got = milvus_vectors(store, [content_id(t) for t in sample])
    np.testing.assert_allclose(np.stack([got[content_id(t)] for t in sample]), reference(srv, sample), atol=1e-5)
    emb.close()


def test_10000_texts_through_a_failing_server_into_chroma(chroma_server: Any) -> None:
    from qwen_embed_adapters.adapters.chroma import ChromaStore

    with EmbeddingServer(dim=DIM, fail_rate=0.2, seed=11, retry_after=0.01, slow_seconds=0.05) as srv:
        emb = flaky_embedder(srv.base_url)
        store = ChromaStore(chroma_server.client(), "reliability", emb)
        report = ingest(store, corpus(10_000), batch_size=500, progress=False)
    assert (report.written, report.failed) == (10_000, 0)
    col = store.collection
    ids = col.get(include=[])["ids"]
    assert len(ids) == 10_000 and set(ids) == expected_ids(10_000)
    assert col.count() == 10_000
    sample = [t for i, t in enumerate(corpus(10_000)) if i % 997 == 0]
    got = col.get(ids=[content_id(t) for t in sample], include=["embeddings"])
    by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
    np.testing.assert_allclose(
        np.stack([np.asarray(by_id[content_id(t)], np.float32) for t in sample]), reference(srv, sample), atol=1e-5
    )
    emb.close()


# ---------------------------------------------------------------------------- (c) NaN / wrong width
@pytest.mark.parametrize(("fault", "message"), [("nan", "NaN"), ("wrong_width", "31-d vectors, expected 32")])
def test_a_bad_answer_refuses_its_batch_and_stores_nothing_wrong(
    milvus_store_factory: Any, fault: str, message: str
) -> None:
    """Bad input: the server answers one batch (the third request) with a NaN or 31-d vectors."""
    texts = list(corpus(500))
    # The first two requests embed the space card's probes (documents, then the query); then one request per
    # ingest batch, in order: request 5 is batch 2 (records 200..299).
    with EmbeddingServer(dim=DIM, faults=["ok", "ok", "ok", "ok", fault]) as srv:
        emb = flaky_embedder(srv.base_url, max_concurrency=1, dimensions=DIM)  # known width: no probe request
        store = milvus_store_factory(emb, f"bad_{fault}")
        with pytest.raises(IngestError) as info:
            ingest(store, iter(texts), batch_size=100, prefetch=1, progress=False)
        err = info.value
        assert message in str(err) and "stopped at batch 2" in str(err)
        assert err.failed_ids[:100] == [content_id(t) for t in texts[200:300]]
        assert err.report.written == 200
        stored = milvus_ids(store)
        assert set(stored) == {content_id(t) for t in texts[:200]}
        vecs = milvus_vectors(store, stored)
        assert all(v.shape == (DIM,) and np.isfinite(v).all() for v in vecs.values())
        # The server behaves again: the re-run stores only what is missing.
        report = ingest(store, iter(texts), batch_size=100, progress=False)
        assert (report.written, report.skipped) == (300, 200)
        assert store.count() == 500 and set(milvus_ids(store)) == {content_id(t) for t in texts}
    emb.close()


# ---------------------------------------------------------------------------- (b) SIGKILL halfway
def _ingest_cmd(data: Path, store_args: list[str], base_url: str) -> list[str]:
    return [
        sys.executable, "-m", "qwen_embed_adapters.cli", "-v", "ingest", str(data), *store_args,
        "--collection", "killed", "--base-url", base_url, "--model", "fake-qwen",
        "--batch-size", "100", "--embed-batch-size", "50", "--no-progress", "--json",
    ]


@pytest.mark.parametrize("store", ["milvus", "chroma"])
def test_sigkill_halfway_then_rerun_ends_with_exactly_the_full_set(tmp_path: Path, store: str) -> None:
    n = 3000
    data = tmp_path / "corpus.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for i, t in enumerate(corpus(n)):
            fh.write(json.dumps({"id": f"doc-{i:05d}", "text": t, "lang": "mixed"}, ensure_ascii=False) + "\n")
    uri = str(tmp_path / ("killed.db" if store == "milvus" else "chroma"))
    store_args = ["--store", store, "--uri", uri]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("MILVUS_URI", None)
    # service_time makes the run last long enough to be killed in the middle.
    with EmbeddingServer(dim=DIM, service_time=0.03) as srv:
        proc = subprocess.Popen(
            _ingest_cmd(data, store_args, srv.base_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, cwd=tmp_path,
        )
        seen: list[str] = []
        killed_after: list[int] = []

        def watch() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                seen.append(line)
                if "ingest 'killed': batch" in line and " written (" in line:
                    batch = int(line.split("batch ")[1].split()[0])
                    if batch >= 14 and not killed_after:  # 15 of 30 batches are stored
                        killed_after.append(batch)
                        os.kill(proc.pid, signal.SIGKILL)

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        proc.wait(timeout=240)
        t.join(timeout=10)
        assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
        assert killed_after, "the ingestion finished before it could be killed"

        rerun = subprocess.run(
            _ingest_cmd(data, store_args, srv.base_url), capture_output=True, text=True, env=env,
            cwd=tmp_path, timeout=240,
        )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    report = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert report["count"] == n
    assert report["written"] + report["skipped"] == n and report["failed"] == 0
    if store == "milvus":  # MilvusStore answers existing_ids: the killed run's batches are skipped
        assert report["skipped"] >= 1000 and report["written"] <= n - 1000
    ids = _stored_ids(store, uri)
    assert len(ids) == n and set(ids) == {f"doc-{i:05d}" for i in range(n)}


def _stored_ids(store: str, uri: str) -> list[str]:
    if store == "milvus":
        from pymilvus import MilvusClient

        client = MilvusClient(uri)
        try:
            client.load_collection("killed")
            rows = client.query("killed", filter='id != ""', output_fields=["id"], limit=16384)
            return [r["id"] for r in rows]
        finally:
            client.close()
    import chromadb

    ids: list[str] = chromadb.PersistentClient(path=uri).get_collection("killed").get(include=[])["ids"]
    return ids
