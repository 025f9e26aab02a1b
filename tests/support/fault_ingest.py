"""The kill-and-restart scenario shared by the Chroma and Milvus fault tests (real servers and containers).

A 20,000-text ingest runs; after 3,000 records are written the database process (or container) gets
SIGKILL and a restart begins in the background. The run must either recover by itself or stop with
``IngestError`` naming ids not written, within ``bound`` seconds. A re-run on a fresh store then ends with
exactly 20,000 records, every id present once, every stored vector equal to ``embed_documents``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from qwen_embed_adapters.errors import IngestError
from qwen_embed_adapters.ingest import IngestReport, ingest
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support.milvus_fixtures import corpus

DIM = 64
N = 20_000


def stored_vectors(store: Any, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Vectors by id, read back with the store's raw client (Milvus, Chroma or PostgreSQL)."""
    out: dict[str, np.ndarray] = {}
    if hasattr(store, "conn"):  # PgVectorStore: SELECT the pgvector column (float32 on the wire)
        from psycopg import sql

        rows = store.conn.execute(sql.SQL("SELECT id, embedding FROM {}").format(sql.Identifier(store.table))).fetchall()
        wanted = set(ids)
        return {r[0]: r[1].to_numpy() for r in rows if r[0] in wanted}
    for i in range(0, len(ids), 1000):
        chunk = list(ids[i : i + 1000])
        if hasattr(store, "client") and hasattr(store.client, "get") and hasattr(store, "id_field"):
            for row in store.client.get(store.collection, ids=chunk, output_fields=["vector"], timeout=60):
                out[row["id"]] = np.asarray(row["vector"], dtype=np.float32)
        else:
            got = store.collection.get(ids=chunk, include=["embeddings"])
            for id_, vec in zip(got["ids"], got["embeddings"], strict=True):
                out[id_] = np.asarray(vec, dtype=np.float32)
    return out


def run_kill_and_rerun(
    open_store: Callable[[float], Any],
    *,
    kill: Callable[[], None],
    start: Callable[[], None],
    n: int = N,
    bound: float = 240.0,
) -> dict[str, Any]:
    """Returns what happened (``outcome`` "recovered" or "IngestError", seconds) for the report."""
    texts = corpus(n, prefix="fault")
    reference = FakeEmbedder(dimensions=DIM).embed_documents(texts)
    restarter: list[threading.Thread] = []
    errors: list[BaseException] = []

    def restart() -> None:
        try:
            start()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def on_batch(report: IngestReport) -> None:
        if not restarter and report.written >= 3000:
            kill()
            t = threading.Thread(target=restart, daemon=True)
            t.start()
            restarter.append(t)

    store = open_store(10.0)
    started = time.monotonic()
    outcome = "recovered"
    try:
        report = ingest(store, texts, progress=False, on_batch=on_batch, write_retries=3, retry_backoff=1.0)
        assert report.written + report.skipped == n, report
    except IngestError as exc:
        outcome = "IngestError"
        assert exc.failed_ids, "IngestError must name the ids not written"
        assert set(exc.failed_ids) <= set(store_ids(texts))
    elapsed = time.monotonic() - started
    assert restarter, "the database was never killed"
    assert elapsed < bound, f"the faulted run took {elapsed:.0f} s"
    with_close(store)
    restarter[0].join(timeout=300)
    assert not errors, errors
    assert not restarter[0].is_alive(), "the database did not come back"

    again = open_store(60.0)
    try:
        ingest(again, texts, progress=False)
        assert again.count() == n
        ids = store_ids(texts)
        assert again.existing_ids(ids) == set(ids)
        got = stored_vectors(again, ids)
        assert len(got) == n
        np.testing.assert_allclose(np.stack([got[i] for i in ids]), reference, atol=1e-6)
    finally:
        with_close(again)
    return {"outcome": outcome, "faulted_seconds": round(elapsed, 1)}


def store_ids(texts: Sequence[str]) -> list[str]:
    from qwen_embed_adapters.adapters.base import content_id

    return [content_id(t) for t in texts]


def with_close(store: Any) -> None:
    try:
        store.close()
    except Exception:  # a store whose server just died may fail to close cleanly
        pass
