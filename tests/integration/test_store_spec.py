"""store_from_spec building each store for real: Milvus Lite files and a ``milvus-lite server`` over
http, a persistent Chroma and a ``chroma run`` server, the Pinecone stand-in, a FAISS folder; and the
CLI's ``--store faiss`` / ``--store-spec``. Each store is written through, searched, and opened again
from the plain dict ``parse_store_spec`` gives back, which must see the same records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qwen_embed_adapters import cli
from qwen_embed_adapters.adapters.spec import parse_store_spec, store_from_spec
from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support.milvus_fixtures import milvus_lite_server, milvus_lite_server_mode, release_lite

pytestmark = pytest.mark.integration

TEXTS = ["Beijing is the capital of China", "北京是中国的首都", "def add(a, b): return a + b"]


def roundtrip(spec: Any, reopen: Any | None = None) -> None:
    """Write three texts through the spec's store, find one, and see them again through ``reopen``."""
    emb = FakeEmbedder(dimensions=16)
    store = store_from_spec(spec, emb)
    try:
        ids = store.add_texts(TEXTS, metadatas=[{"lang": "en"}, {"lang": "zh"}, {"lang": "code"}])
        assert len(ids) == 3 and store.count() == 3
        hit = store.search(TEXTS[1], top_k=1)[0]
        assert (hit.id, hit.text) == (ids[1], TEXTS[1])
        save = getattr(store, "save", None)
        if callable(save):
            save()
    finally:
        getattr(store, "close", lambda: None)()  # ChromaStore has nothing to close
    again = store_from_spec(reopen if reopen is not None else parse_store_spec(spec), FakeEmbedder(dimensions=16))
    try:
        assert again.count() == 3
        assert again.search(TEXTS[0], top_k=1)[0].id == ids[0]
    finally:
        getattr(again, "close", lambda: None)()


def test_milvus_lite_file(tmp_path: Path) -> None:
    pytest.importorskip("pymilvus")
    db = tmp_path / "kb.db"
    try:
        roundtrip(f"milvus://{db}?collection=kb")
    finally:
        release_lite(db)


@pytest.fixture(scope="module")
def milvus_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("pymilvus")
    ok, reason = milvus_lite_server_mode()
    assert ok, reason  # milvus-lite (the milvus extra) ships `milvus-lite server`
    with milvus_lite_server(tmp_path_factory.mktemp("milvus-http") / "data") as uri:
        yield uri


def test_milvus_over_http(milvus_http: str) -> None:
    roundtrip(milvus_http.replace("http://", "milvus+http://") + "/kb_http")


def test_chroma_persistent_folder(tmp_path: Path) -> None:
    pytest.importorskip("chromadb")
    roundtrip(f"chroma://{tmp_path}/docs", {"store": "chroma", "uri": str(tmp_path), "collection": "docs"})


def test_chroma_run_server(tmp_path: Path) -> None:
    pytest.importorskip("chromadb")
    from tests.support.chroma_server import ChromaServer

    with ChromaServer(tmp_path / "chroma-data") as srv:
        roundtrip(srv.url.replace("http://", "chroma+http://") + "/docs")


def test_pinecone_stand_in_by_index_host_and_by_control_plane(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pinecone")
    from tests.support.pinecone_server import PineconeServer

    monkeypatch.setenv("PC_SPEC_KEY", "pc-spec-key")
    with PineconeServer(api_key="pc-spec-key") as srv:
        index = srv.add_index("kb", 16)
        roundtrip(index.host.replace("http://", "pinecone+http://") + "?namespace=ns&api_key_env=PC_SPEC_KEY")
        assert index.count("ns") == 3
        # By name through the control plane: the index is created with the embedder's dimension.
        roundtrip({"store": "pinecone", "index": "kb2", "controller_host": srv.host, "namespace": "ns",
                   "api_key_env": "PC_SPEC_KEY"})
        assert srv.indexes["kb2"].dimension == 16


def test_faiss_folder(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    roundtrip(f"faiss://{tmp_path}/index")
    assert (tmp_path / "index" / "store.json").exists()


def test_a_store_spec_never_echoes_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input: a milvus spec naming a token variable that is not set."""
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match=r"\$NO_SUCH_TOKEN"):
        store_from_spec("milvus+http://127.0.0.1:1/kb?token_env=NO_SUCH_TOKEN", FakeEmbedder(dimensions=8))


# ---------------------------------------------------------------------------- the CLI
def test_cli_ingest_and_search_on_faiss(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("faiss")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Beijing is the capital of China.\n\n西红柿炒鸡蛋要先炒鸡蛋。\n", encoding="utf-8")
    common = ["--store", "faiss", "--uri", str(tmp_path / "kb"), "--engine", "fake", "--dimensions", "32"]
    assert cli.main(["ingest", str(docs), "--json", "--max-tokens", "16", *common]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["written"], report["count"]) == (2, 2)
    assert cli.main(["ingest", str(docs), "--json", "--max-tokens", "16", *common]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["written"], again["skipped"], again["count"]) == (0, 2, 2)
    assert cli.main(["search", "西红柿炒鸡蛋要先炒鸡蛋。", "-k", "1", "--json", *common]) == 0
    hit = json.loads(capsys.readouterr().out)
    assert hit["text"] == "西红柿炒鸡蛋要先炒鸡蛋。" and hit["metadata"]["source"].endswith("a.md")


def test_cli_store_spec_wins_over_store_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("chromadb")
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"id": f"r{i}", "text": f"row {i}"}) + "\n" for i in range(5)), encoding="utf-8")
    spec = f"chroma://{tmp_path}/db/rows"
    args = ["--store", "milvus", "--store-spec", spec, "--engine", "fake", "--dimensions", "16"]
    assert cli.main(["ingest", str(src), "--json", *args]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["count"] == 5
    assert (tmp_path / "db" / "chroma.sqlite3").exists()  # the spec's store, not --store milvus
    assert cli.main(["search", "row 3", "-k", "1", "--json", *args]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "r3"


def test_cli_names_a_bad_store_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input: --store-spec with an unknown scheme and with a password in it."""
    (tmp_path / "a.txt").write_text("x\n", encoding="utf-8")
    assert cli.main(["ingest", str(tmp_path / "a.txt"), "--store-spec", "redis://h/kb", "--engine", "fake"]) == 1
    assert "bad store spec redis://h/kb: unknown store 'redis'" in capsys.readouterr().err
    bad = "milvus+http://root:hunter2@h:19530/kb"
    assert cli.main(["search", "q", "--store-spec", bad, "--engine", "fake"]) == 1
    err = capsys.readouterr().err
    assert "credentials do not belong in a spec" in err and "hunter2" not in err
