"""MilvusStore over http:// — the ``milvus-lite server`` process here, a real standalone Milvus through
testcontainers where a Docker engine answers — and with a RemoteEmbedder over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.adapters.milvus import PROP_MODEL, MilvusStore
from qwen_embed_adapters.errors import ConfigurationError, DimensionMismatchError, InvalidInputError
from qwen_embed_adapters.remote import RemoteEmbedder
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import MilvusContract, OpenStore, unique_name
from tests.support.keyword_checks import NativeKeywordChecks
from tests.support.milvus_fixtures import corpus, docker_reason, milvus_lite_server, milvus_lite_server_mode
from tests.support.openai_server import EmbeddingServer

pymilvus = pytest.importorskip("pymilvus")
pytestmark = pytest.mark.integration

DIM = 64


@pytest.fixture(scope="module")
def lite_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # milvus-lite (the milvus extra) ships the `milvus-lite server` command: its absence is a failure
    ok, reason = milvus_lite_server_mode()
    assert ok, reason
    data_dir = tmp_path_factory.mktemp("milvus_server") / "data"
    with milvus_lite_server(data_dir) as uri:
        yield uri


class TestMilvusLiteServerContract(MilvusContract):
    """The shared store contract over http:// against ``milvus-lite server`` (a standalone tier
    subclasses MilvusContract the same way with its own URI)."""

    @pytest.fixture
    def milvus_uri(self, lite_server_uri: str) -> str:
        return lite_server_uri


class TestMilvusLiteServerKeyword(NativeKeywordChecks):
    """Keyword and hybrid search through the BM25 function over http:// against ``milvus-lite server``."""

    @pytest.fixture
    def open_store(self, lite_server_uri: str) -> Iterator[OpenStore]:
        name = unique_name("kw").replace("-", "_")
        opened: list[MilvusStore] = []

        def open_(embedder: Any) -> MilvusStore:
            opened.append(MilvusStore(lite_server_uri, name, embedder))
            return opened[-1]

        yield open_
        for s in opened:
            s.close()
        with MilvusStore(lite_server_uri, name, FakeEmbedder()) as cleanup:
            cleanup.drop()


def exercise_server(uri: str, prefix: str, n: int = 500) -> None:
    """The same checks against any Milvus reached by URI: writes, exact ids/count/vectors, search,
    idempotent re-run, the dimension and metric guards, a bad input, and the async twins."""
    emb = FakeEmbedder(dimensions=DIM)
    texts = corpus(n, prefix=prefix)
    with MilvusStore(uri, f"{prefix}_docs", emb, token="root:Milvus") as store:
        ids = store.add_texts(texts, metadatas=[{"i": i, "even": i % 2 == 0} for i in range(n)])
        assert ids == [content_id(t) for t in texts]
        assert store.count() == n
        rows = {}
        for i in range(0, n, 200):
            for r in store.client.get(store.collection, ids=ids[i : i + 200], output_fields=["vector", "text"]):
                rows[r["id"]] = r
        np.testing.assert_allclose(
            np.array([rows[i]["vector"] for i in ids], dtype=np.float32), emb.embed_documents(texts), atol=1e-6
        )
        for k in (0, n // 2, n - 1):
            hits = store.search(texts[k], top_k=2)
            assert hits[0].id == ids[k] and hits[0].text == texts[k]
            assert hits[0].metadata == {"i": k, "even": k % 2 == 0}
        odd = store.search(texts[4], top_k=5, filter='metadata["even"] == false')
        assert len(odd) == 5 and all(h.metadata["i"] % 2 == 1 for h in odd)
        assert store.add_texts(texts) == ids
        assert store.count() == n
        info = store.client.describe_collection(store.collection)
        assert info["properties"][PROP_MODEL] == "fake-embedding"

        with MilvusStore(uri, f"{prefix}_docs", FakeEmbedder(dimensions=DIM // 2)) as narrow:
            with pytest.raises(DimensionMismatchError) as err:
                narrow.add_texts(["other width"])
        assert (err.value.expected, err.value.actual) == (DIM, DIM // 2)
        with MilvusStore(uri, f"{prefix}_docs", FakeEmbedder(dimensions=DIM), metric="L2") as l2:
            with pytest.raises(ConfigurationError, match="COSINE"):
                l2.add_texts(["x"])
        with pytest.raises(InvalidInputError, match="'huge'"):
            store.add_texts(["fine", "z" * 70000], ids=["fine", "huge"])
        assert store.count() == n
        store.delete(ids[:5])
        assert store.count() == n - 5


def test_lite_server_over_http(lite_server_uri: str) -> None:
    exercise_server(lite_server_uri, "lite_http")


async def test_lite_server_async_twins(lite_server_uri: str) -> None:
    emb = FakeEmbedder(dimensions=DIM)
    texts = corpus(100, prefix="asrv")
    store = MilvusStore(lite_server_uri, "asrv_docs", emb)
    try:
        ids = await store.aadd_texts(texts)
        assert store._aclients
        assert await store.acount() == 100
        hits = await store.asearch(texts[3], top_k=1)
        assert hits[0].id == ids[3]
        await store.adelete(ids[:3])
        assert await store.acount() == 97
    finally:
        await store.aclose()


def test_remote_embedder_over_http_into_milvus(lite_server_uri: str) -> None:
    """RemoteEmbedder against the project's fake OpenAI-compatible server, vectors into Milvus."""
    texts = corpus(200, prefix="remote")
    with EmbeddingServer(dim=DIM) as srv:
        emb = RemoteEmbedder(srv.base_url, model="Qwen3-Embedding-0.6B", dimensions=DIM)
        with emb, MilvusStore(lite_server_uri, "remote_docs", emb) as store:
            ids = store.add_texts(texts)
            assert store.count() == 200
            got = {r["id"]: r["vector"] for r in store.client.get("remote_docs", ids=ids, output_fields=["vector"])}
            reference = FakeEmbedder(dimensions=DIM).embed_documents(texts)
            np.testing.assert_allclose(np.array([got[i] for i in ids], dtype=np.float32), reference, atol=1e-5)
            hits = store.search("remote 17", top_k=3)
            assert len(hits) == 3
            last_inputs = srv.requests[-1]["input"]
            assert last_inputs == [
                "Instruct: Given a web search query, retrieve relevant passages that answer the query\n"
                "Query:remote 17"
            ]


@pytest.mark.docker
def test_standalone_milvus_in_docker(tmp_path: Path) -> None:
    reason = docker_reason()
    if reason is not None:
        pytest.skip(reason)
    from testcontainers.community.milvus import MilvusContainer

    from tests.support.containers import DbContainer, pick_image

    image, how = pick_image("milvus")  # the official image when pullable, else the local build
    if image is None:
        pytest.skip(how)
    if how == "official":
        with MilvusContainer(image) as milvus:
            exercise_server(milvus.get_connection_url(), "docker")
        return
    box = DbContainer("milvus", image, tmp_path / "data")
    box.start()
    try:
        exercise_server(box.uri, "docker")
    finally:
        box.remove()


def test_unknown_uri_is_refused(tmp_path: Path) -> None:
    """A path that is neither .db nor http(s):// (here a .sqlite file) is refused without connecting."""
    with pytest.raises(ConfigurationError, match=r"\.db"):
        MilvusStore(str(tmp_path / "x.sqlite"), "c", FakeEmbedder())


def test_quickstart_example_runs_offline(tmp_path: Path) -> None:
    """examples/milvus_quickstart.py runs in a fresh process on its own Milvus Lite file."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "MILVUS_URI"}
    env["PYTHONPATH"] = str(root)
    out = subprocess.run(
        [sys.executable, str(root / "examples" / "milvus_quickstart.py"), str(tmp_path / "qs.db")],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "stored 7 texts" in out.stdout
    assert "after deleting one: 6 texts" in out.stdout
    milvus_section = out.stdout.split("how do I connect to a Milvus server")[1]
    assert "Paris" not in milvus_section and "Milvus" in milvus_section
