"""ingest_ray into PostgreSQL + pgvector (the session's bundled server, written by Ray's write tasks in the
worker processes) and into Qdrant local mode on a folder (one process holds it: the workers embed, the driver
writes), exactly once, re-runs skipping everything, vectors as embedded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.errors import ConfigurationError, DimensionMismatchError
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import unique_name

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.integration

N = 2_000


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def _texts(prefix: str) -> list[str]:
    return [f"{prefix} passage {i} about rivers, markets and vector search" for i in range(N)]


def _pg_spec(conninfo: str, table: str) -> str:
    host = dict(p.split("=", 1) for p in urlsplit(conninfo).query.split("&"))["host"]
    return f"postgresql://postgres@localhost/postgres?host={host}&table={table}"


def test_ingest_ray_into_pgvector_from_the_workers_exactly_once(ray_cluster: Any, pg_conninfo: str) -> None:
    import psycopg

    from qwen_embed_adapters.ray import ingest_ray

    table = unique_name("ray").replace("-", "_")
    emb = FakeEmbedder("Qwen3-Embedding-fake", dimensions=32)
    texts = _texts("pg")
    ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=8)
    report = ingest_ray(ds, _pg_spec(pg_conninfo, table), emb, concurrency=2, batch_size=250)
    assert (report.written, report.skipped, report.invalid) == (N, 0, 0)
    with psycopg.connect(pg_conninfo) as conn:
        rows = conn.execute(f'SELECT id, embedding::real[] FROM "{table}"').fetchall()
    got = {r[0]: np.asarray(r[1], dtype=np.float32) for r in rows}
    assert len(rows) == N and set(got) == {content_id(t) for t in texts}
    np.testing.assert_allclose(np.stack([got[content_id(t)] for t in texts]), emb.embed_documents(texts), atol=1e-6)
    again = ingest_ray(ray.data.from_items([{"text": t} for t in texts]), _pg_spec(pg_conninfo, table), emb)
    assert (again.written, again.skipped) == (0, N)
    # A 16-d embedder on the 32-d table: refused before any block is read.
    with pytest.raises(DimensionMismatchError) as err:
        ingest_ray(ray.data.from_items([{"text": "new"}]), _pg_spec(pg_conninfo, table), FakeEmbedder(dimensions=16))
    assert (err.value.expected, err.value.actual, err.value.where) == (32, 16, table)


def test_ingest_ray_into_qdrant_local_folder_is_written_by_the_driver(ray_cluster: Any, tmp_path: Path) -> None:
    from qwen_embed_adapters.adapters.qdrant import QdrantStore, point_id
    from qwen_embed_adapters.ray import ingest_ray

    folder = tmp_path / "qdrant"
    spec = f"qdrant://{folder}?collection=kb"
    emb = FakeEmbedder("Qwen3-Embedding-fake", dimensions=32)
    texts = _texts("qd")
    first = ingest_ray(ray.data.from_items([{"text": t} for t in texts[:1500]], override_num_blocks=6), spec, emb,
                       concurrency=2, batch_size=250)
    assert (first.written, first.skipped) == (1500, 0)
    # The driver closed its client: the folder opens again here, and a re-run with 500 more writes only those.
    again = ingest_ray(ray.data.from_items([{"text": t} for t in texts]), spec, emb, batch_size=250)
    assert (again.written, again.skipped, again.invalid) == (500, 1500, 0)
    store = QdrantStore(str(folder), "kb", emb)
    assert store.count() == N
    records = store.client.retrieve("kb", ids=[point_id(content_id(t)) for t in texts[::100]], with_vectors=True)
    def dense(v: Any) -> np.ndarray:  # the unnamed vector, or the 32-d one of named vectors (the "" name included)
        if isinstance(v, dict):
            v = next(x for x in v.values() if isinstance(x, list) and len(x) == 32)
        return np.asarray(v, dtype=np.float32)

    got = {r.payload["text"]: dense(r.vector) for r in records}
    assert len(got) == N // 100
    np.testing.assert_allclose(np.stack([got[t] for t in texts[::100]]), emb.embed_documents(texts[::100]), atol=1e-6)
    store.close()


def test_ingest_ray_refuses_qdrant_in_memory(ray_cluster: Any) -> None:
    from qwen_embed_adapters.ray import ingest_ray

    # Bad input tried: Qdrant ":memory:", whose points would vanish with the driver's client.
    with pytest.raises(ConfigurationError, match="the qdrant store is local-only"):
        ingest_ray(ray.data.from_items([{"text": "x"}]), {"store": "qdrant", "location": ":memory:", "collection": "kb"},
                   FakeEmbedder())
