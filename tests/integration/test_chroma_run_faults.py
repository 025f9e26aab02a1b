"""Faults on a real ``chroma run`` server (no Docker): SIGKILL during a 20,000-text ingest and between
two calls of one store, then a restart on the same port and data dir."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fault_ingest import DIM, run_kill_and_rerun
from tests.support.milvus_fixtures import corpus

chromadb = pytest.importorskip("chromadb")
pytestmark = [pytest.mark.integration, pytest.mark.standalone]

from qwen_embed_adapters.adapters.chroma import ChromaStore  # noqa: E402
from qwen_embed_adapters.testing import FakeEmbedder  # noqa: E402
from tests.support.chroma_server import ChromaServer  # noqa: E402


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    srv = ChromaServer(tmp_path_factory.mktemp("chroma_fault") / "data").start()
    try:
        yield srv
    finally:
        srv.stop()


def sigkill(srv: ChromaServer) -> None:
    assert srv.proc is not None
    srv.proc.kill()
    srv.proc.wait(timeout=30)
    srv.proc = None


def test_sigkill_during_20000_text_ingest_then_rerun(server: ChromaServer) -> None:
    def open_(timeout: float) -> ChromaStore:
        return ChromaStore(server.client(), "faulted", FakeEmbedder(dimensions=DIM))

    run_kill_and_rerun(open_, kill=lambda: sigkill(server), start=server.start)


def test_restart_between_two_calls_is_reconnected(server: ChromaServer) -> None:
    texts = corpus(200, prefix="crestart")
    store = ChromaStore(server.client(), "restarted", FakeEmbedder(dimensions=DIM))
    ids = store.add_texts(texts)
    sigkill(server)
    server.start()
    assert store.count() == 200
    assert store.search(texts[4], top_k=1)[0].id == ids[4]
