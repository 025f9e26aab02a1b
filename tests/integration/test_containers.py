"""The Docker tier: Chroma and Milvus in containers (official images when they can be had, else the
images built locally by tests/containers/build_images.sh), driven through the real SDKs, including a
SIGKILL of the container during a 20,000-text ingest and between two calls of one store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support.containers import DbContainer, pick_image
from tests.support.fault_ingest import DIM, run_kill_and_rerun
from tests.support.milvus_fixtures import corpus

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def _container(kind: str, data_dir: Path) -> Iterator[DbContainer]:
    image, how = pick_image(kind)
    if image is None:
        pytest.skip(how)
    box = DbContainer(kind, image, data_dir)
    try:
        box.start()
        yield box
    finally:
        box.remove()


@pytest.fixture(scope="module")
def chroma_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbContainer]:
    pytest.importorskip("chromadb")
    yield from _container("chroma", tmp_path_factory.mktemp("chroma_box") / "data")


@pytest.fixture(scope="module")
def milvus_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbContainer]:
    pytest.importorskip("pymilvus")
    yield from _container("milvus", tmp_path_factory.mktemp("milvus_box") / "data")


def test_chroma_container_store_and_restart_between_calls(chroma_box: DbContainer) -> None:
    from qwen_embed_adapters.adapters.chroma import ChromaStore

    emb = FakeEmbedder(dimensions=DIM)
    texts = corpus(300, prefix="cbox")
    store = ChromaStore(chroma_box.chroma_client(), "boxed", emb)
    ids = store.add_texts(texts, metadatas=[{"even": i % 2 == 0} for i in range(300)])
    assert ids == [content_id(t) for t in texts] and store.count() == 300
    hits = store.search(texts[9], top_k=3, filter={"even": False})
    assert hits[0].id == ids[9] and all(h.metadata["even"] is False for h in hits)
    chroma_box.kill()
    chroma_box.start()
    assert store.count() == 300  # the same client and store after the restart
    assert store.search(texts[10], top_k=1)[0].id == ids[10]
    got = store.collection.get(ids=ids[:50], include=["embeddings"])
    np.testing.assert_allclose(np.array(got["embeddings"]), emb.embed_documents(texts[:50]), atol=1e-6)


def test_milvus_container_store_and_restart_between_calls(milvus_box: DbContainer) -> None:
    from qwen_embed_adapters.adapters.milvus import MilvusStore
    from tests.integration.test_milvus_server import exercise_server

    exercise_server(milvus_box.uri, "box", n=300)
    texts = corpus(200, prefix="mbox")
    store = MilvusStore(milvus_box.uri, "boxed", FakeEmbedder(dimensions=DIM), timeout=60)
    try:
        ids = store.add_texts(texts)
        milvus_box.kill()
        milvus_box.start()
        assert store.count() == 200
        assert store.search(texts[3], top_k=1)[0].id == ids[3]
    finally:
        store.close()


def test_chroma_container_sigkill_during_20000_text_ingest(chroma_box: DbContainer) -> None:
    from qwen_embed_adapters.adapters.chroma import ChromaStore

    def open_(timeout: float) -> ChromaStore:
        return ChromaStore(chroma_box.chroma_client(), "faulted", FakeEmbedder(dimensions=DIM))

    run_kill_and_rerun(open_, kill=chroma_box.kill, start=chroma_box.start)


def test_milvus_container_sigkill_during_20000_text_ingest(milvus_box: DbContainer) -> None:
    from qwen_embed_adapters.adapters.milvus import MilvusStore

    def open_(timeout: float) -> MilvusStore:
        return MilvusStore(milvus_box.uri, "faulted", FakeEmbedder(dimensions=DIM), timeout=timeout,
                           write_batch_size=500)

    run_kill_and_rerun(open_, kill=milvus_box.kill, start=milvus_box.start)
