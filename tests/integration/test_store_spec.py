"""store_from_spec building each store for real: Milvus Lite files and a ``milvus-lite server`` over
http, a persistent Chroma and a ``chroma run`` server, the Pinecone stand-in, a FAISS folder; and the
CLI's ``--store faiss`` / ``--store-spec``. Each store is written through, searched, and opened again
from the plain dict ``parse_store_spec`` gives back, which must see the same records."""

from __future__ import annotations

import dataclasses
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


# ---------------------------------------------------------------------------- settings round trips
SPACE = ("space_check", "space_tolerance")  # StoreSettings' own, set on a store rather than passed to it


def _every_field_survives(config: dict[str, Any], values: dict[str, Any], emb: FakeEmbedder) -> None:
    """``config`` (from ``to_config``) rebuilds a store whose settings hold ``values``, every field of the
    store's settings dataclass among them and none at its default (so each one is really carried)."""
    store = store_from_spec(config, emb)
    try:
        settings = store.settings
        assert settings is not None
        names = {f.name for f in dataclasses.fields(settings)}
        assert names == set(values), f"the test misses fields: {sorted(names ^ set(values))}"
        for f in dataclasses.fields(settings):
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            assert values[f.name] != default, f"{f.name}: pick a non-default value"
            assert getattr(settings, f.name) == values[f.name], f.name
        assert store.to_config() == config
        assert json.loads(json.dumps(config)) == config
        assert parse_store_spec(config) == config  # a config is a spec
    finally:
        store.close()


def test_milvus_settings_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pymilvus")
    from qwen_embed_adapters.adapters.milvus import MilvusStore

    monkeypatch.setenv("RT_MILVUS_TOKEN", "root:Milvus")
    db = tmp_path / "rt.db"
    values = {"uri": str(db), "collection": "rt_kb", "token_env": "RT_MILVUS_TOKEN", "db_name": "default",
              "metric": "IP", "index_type": "FLAT", "index_params": {"nlist": 8}, "text_max_length": 1000,
              "id_max_length": 100, "id_field": "pk", "text_field": "body", "metadata_field": "meta",
              "vector_field": "emb", "consistency_level": "Bounded", "timeout": 30.0, "write_batch_size": 64,
              "use_async_client": False, "keyword": False, "keyword_field": "body_sparse",
              "keyword_analyzer": {"tokenizer": "standard"},
              "precision": "float32", "rescore": 8, "space_check": "strict", "space_tolerance": 0.95}
    try:
        first = MilvusStore(values["uri"], values["collection"], FakeEmbedder(dimensions=8),
                            **{k: v for k, v in values.items() if k not in ("uri", "collection", *SPACE)})
        first.space_check, first.space_tolerance = "strict", 0.95  # set on the store (VectorStore.from_config does)
        config = first.to_config()
        first.close()
        assert config == {"store": "milvus", **values}
        assert "root:Milvus" not in json.dumps(config) and "root:Milvus" not in repr(first)
        _every_field_survives(config, values, FakeEmbedder(dimensions=8))
    finally:
        release_lite(db)


def test_a_milvus_store_on_a_client_object_knows_its_uri(tmp_path: Path) -> None:
    pymilvus = pytest.importorskip("pymilvus")
    from qwen_embed_adapters.adapters.milvus import MilvusStore

    db = tmp_path / "client.db"
    client = pymilvus.MilvusClient(str(db))
    try:
        with MilvusStore(client, "kb", FakeEmbedder(dimensions=8)) as store:
            config = store.to_config()
        assert (config["store"], config["uri"], config["collection"]) == ("milvus", str(db), "kb")
        roundtrip(config)
    finally:
        client.close()
        release_lite(db)


def test_chroma_settings_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("chromadb")
    import chromadb

    from qwen_embed_adapters.adapters.chroma import ChromaStore

    values = {"uri": str(tmp_path / "chroma"), "collection": "rt-docs", "metadata": {"team": "a"},
              "strict_model": False, "use_async_client": False, "precision": "float32", "rescore": 8, "space_check": "strict", "space_tolerance": 0.95}
    first = ChromaStore(chromadb.PersistentClient(path=values["uri"]), "rt-docs", FakeEmbedder(dimensions=8),
                        metadata={"team": "a"}, strict_model=False, use_async_client=False, precision="float32",
                        rescore=8)
    first.space_check, first.space_tolerance = "strict", 0.95
    config = first.to_config()  # the directory is read back from the client's settings
    assert config == {"store": "chroma", **values}
    _every_field_survives(config, values, FakeEmbedder(dimensions=8))


def test_an_in_memory_chroma_client_has_no_config() -> None:
    """Bad input: to_config() of a store on an EphemeralClient, whose data no config can reach."""
    pytest.importorskip("chromadb")
    import chromadb

    from qwen_embed_adapters.adapters.chroma import ChromaStore

    store = ChromaStore(chromadb.EphemeralClient(), "mem-docs", FakeEmbedder(dimensions=8))
    with pytest.raises(ConfigurationError, match=r"has no config: needs 'uri'"):
        store.to_config()


def test_pinecone_settings_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pinecone")
    from tests.support.pinecone_server import PineconeServer

    monkeypatch.setenv("PC_RT_KEY", "pc-rt-key")
    with PineconeServer(api_key="pc-rt-key") as srv:
        index = srv.add_index("kb", 8, metric="dotproduct")
        values = {"host": index.host, "index": "kb", "namespace": "ns", "api_key_env": "PC_RT_KEY",
                  "controller_host": srv.host, "cloud": "gcp", "region": "europe-west4", "metric": "dotproduct",
                  "max_batch_vectors": 10, "max_request_bytes": 100_000, "max_metadata_bytes": 1000,
                  "keyword": True, "precision": "float32", "rescore": 8, "space_check": "strict", "space_tolerance": 0.95}
        _every_field_survives({"store": "pinecone", **values}, values, FakeEmbedder(dimensions=8))
        # Opened by name through the control plane, the store's config names the index, not its host.
        by_name = store_from_spec({"store": "pinecone", "index": "kb2", "controller_host": srv.host,
                                   "api_key_env": "PC_RT_KEY", "cloud": "gcp"}, FakeEmbedder(dimensions=8))
        try:
            config = by_name.to_config()
        finally:
            by_name.close()
        assert (config["host"], config["index"], config["controller_host"], config["cloud"]) == (
            None, "kb2", srv.host, "gcp")
        assert "pc-rt-key" not in json.dumps(config) and "pc-rt-key" not in repr(by_name)


def test_faiss_settings_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    from qwen_embed_adapters.adapters.faiss import FaissStore

    values = {"path": str(tmp_path / "kb"), "metric": "l2", "index": "hnsw", "hnsw_m": 8, "ef_construction": 40,
              "ef_search": 16, "precision": "float32", "rescore": 8, "space_check": "strict", "space_tolerance": 0.95}
    first = FaissStore(FakeEmbedder(dimensions=8), **{k: v for k, v in values.items() if k not in SPACE})
    first.space_check, first.space_tolerance = "strict", 0.95
    first.add_texts(TEXTS)
    first.save()
    config = first.to_config()
    assert config == {"store": "faiss", **values}
    _every_field_survives(config, values, FakeEmbedder(dimensions=8))
    assert store_from_spec(config, FakeEmbedder(dimensions=8)).count() == 3
