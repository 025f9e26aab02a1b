"""Chroma adapter against the real chromadb 1.5 package, in-process (EphemeralClient / PersistentClient).

No network: embedders are FakeEmbedder, or RemoteEmbedder objects that are only configured, never called.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")

from chromadb.config import Settings  # noqa: E402
from chromadb.utils.embedding_functions import known_embedding_functions  # noqa: E402

import qwen_embed_adapters.config as config_module  # noqa: E402
from qwen_embed_adapters import RemoteEmbedder  # noqa: E402
from qwen_embed_adapters.adapters import chroma as qc  # noqa: E402
from qwen_embed_adapters.adapters.base import VectorStore  # noqa: E402
from qwen_embed_adapters.adapters.chroma import (  # noqa: E402
    EF_NAME,
    META_DIMENSION,
    META_MODEL,
    META_SPACE_CARD,
    ChromaStore,
    QwenEmbeddingFunction,
    collection_dimension,
    get_or_create_collection,
)
from qwen_embed_adapters.errors import (  # noqa: E402
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
)
from qwen_embed_adapters.space import SpaceCard  # noqa: E402
from qwen_embed_adapters.testing import FakeEmbedder  # noqa: E402
from qwen_embed_adapters.testing.contract import OpenStore, StoreContract  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-DO-NOT-PERSIST-4242"


@pytest.fixture(scope="module")
def client():
    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def fake(dim: int = 32, **kw) -> FakeEmbedder:
    return FakeEmbedder(dimensions=dim, query_instruction="Find the passage", **kw)


DOCS = [
    "Beijing is the capital of China",
    "Paris is the capital of France",
    "Photosynthesis turns light into chemical energy",
    "The Rust borrow checker prevents data races",
]


# ---------------------------------------------------------------- the embedding function
def test_registered_under_our_own_name():
    assert EF_NAME == "qwen-embed-adapters"
    assert QwenEmbeddingFunction.name() == EF_NAME
    assert known_embedding_functions[EF_NAME] is QwenEmbeddingFunction
    assert known_embedding_functions["openai"] is not QwenEmbeddingFunction
    assert known_embedding_functions.get("chroma-cloud-qwen") is not QwenEmbeddingFunction


def test_call_gives_document_vectors_and_embed_query_uses_the_instruction():
    emb = fake(32)
    ef = QwenEmbeddingFunction(emb)
    docs = ef(DOCS[:2])
    assert isinstance(docs, list) and len(docs) == 2
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (32,) for v in docs)
    np.testing.assert_allclose(np.stack(docs), emb.embed_documents(DOCS[:2]), atol=1e-6)
    emb.calls.clear()
    q = ef.embed_query(["capital of China"])
    assert emb.calls == [["Instruct: Find the passage\nQuery:capital of China"]]
    np.testing.assert_allclose(q[0], emb.embed_query("capital of China"), atol=1e-6)
    assert q[0].dtype == np.float32
    assert not np.allclose(q[0], emb.embed_documents(["capital of China"])[0])


def test_spaces():
    ef = QwenEmbeddingFunction(fake())
    assert ef.default_space() == "cosine"
    assert set(ef.supported_spaces()) == {"cosine", "ip", "l2"}


def test_call_rejects_none_naming_the_index():
    """Bad input: a None among the documents handed to the function."""
    ef = QwenEmbeddingFunction(fake())
    with pytest.raises(InvalidInputError, match=r"documents\[1\] is None") as info:
        ef(["ok", None])  # type: ignore[list-item]
    assert info.value.index == 1


def test_non_embedder_is_refused():
    """Bad input: something that is not an Embedder passed as the embedder."""
    with pytest.raises(TypeError, match="must be a qwen_embed_adapters Embedder, got str"):
        QwenEmbeddingFunction("Qwen3-Embedding-0.6B")  # type: ignore[arg-type]


def test_config_round_trip_fake():
    emb = FakeEmbedder(dimensions=48, query_instruction="Find it")
    cfg = QwenEmbeddingFunction(emb).get_config()
    assert cfg["embedder"] == emb.to_config()
    assert cfg["model"] == "fake-embedding" and cfg["dimension"] == 48
    cfg = json.loads(json.dumps(cfg))  # what Chroma persists is JSON
    del emb  # nothing live with this config: a real rebuild
    rebuilt = QwenEmbeddingFunction.build_from_config(cfg)
    assert isinstance(rebuilt.embedder, FakeEmbedder)
    assert rebuilt.embedder.dimension == 48 and rebuilt.embedder.query_instruction == "Find it"
    np.testing.assert_allclose(
        np.stack(rebuilt(["a b c"])), FakeEmbedder(dimensions=48).embed_documents(["a b c"]), atol=1e-6
    )


def test_config_of_a_remote_embedder_keeps_the_env_name_not_the_key(monkeypatch):
    monkeypatch.setenv("MY_EMBED_KEY", SECRET)
    emb = RemoteEmbedder(
        "http://127.0.0.1:9/v1", model="Qwen3-Embedding-0.6B", dimensions=256,
        query_instruction="Find docs", api_key_env="MY_EMBED_KEY",
    )
    ef = QwenEmbeddingFunction(emb)
    text = json.dumps(ef.get_config())
    assert SECRET not in text and SECRET not in repr(ef)
    cfg = ef.get_config()["embedder"]
    assert cfg["api_key_env"] == "MY_EMBED_KEY"
    assert cfg["base_url"] == "http://127.0.0.1:9/v1" and cfg["dimensions"] == 256
    assert cfg["query_instruction"] == "Find docs"


def test_explicit_key_is_never_persisted():
    emb = RemoteEmbedder("http://127.0.0.1:9/v1", api_key=SECRET, dimensions=64)
    cfg = QwenEmbeddingFunction(emb).get_config()
    assert SECRET not in json.dumps(cfg)
    assert "api_key" not in cfg["embedder"]


def test_build_from_config_reuses_a_live_function(monkeypatch):
    """Chroma rebuilds the function on every add/query; no new embedder may be built each time."""
    emb = fake(32)
    ef = QwenEmbeddingFunction(emb)
    built = []
    real = config_module.embedder_from_config
    monkeypatch.setattr(qc, "embedder_from_config", lambda c: built.append(c) or real(c))
    assert QwenEmbeddingFunction.build_from_config(ef.get_config()) is ef
    assert built == []


def test_build_from_config_caches_rebuilt_functions(monkeypatch):
    built = []
    real = config_module.embedder_from_config
    monkeypatch.setattr(qc, "embedder_from_config", lambda c: built.append(c) or real(c))
    cfg = {"version": 1, "embedder": {"engine": "fake", "model": "cache-probe", "dimensions": 24,
                                      "query_instruction": None}}
    a = QwenEmbeddingFunction.build_from_config(cfg)
    b = QwenEmbeddingFunction.build_from_config(json.loads(json.dumps(cfg)))
    assert a is b and len(built) == 1


def test_build_from_config_rejects_a_malformed_config():
    """Bad input: a persisted config without the 'embedder' part."""
    with pytest.raises(ConfigurationError, match="'embedder' dict"):
        QwenEmbeddingFunction.build_from_config({"model": "x"})


def test_validate_config_update():
    ef = QwenEmbeddingFunction(fake(32))
    old = ef.get_config()
    ef.validate_config_update(old, QwenEmbeddingFunction(fake(32)).get_config())  # same: fine
    with pytest.raises(DimensionMismatchError) as info:
        ef.validate_config_update(old, QwenEmbeddingFunction(fake(64)).get_config())
    assert (info.value.expected, info.value.actual) == (32, 64)
    other = QwenEmbeddingFunction(FakeEmbedder("other-model", dimensions=32)).get_config()
    with pytest.raises(ConfigurationError, match=r"model cannot change.*'fake-embedding' -> 'other-model'"):
        ef.validate_config_update(old, other)
    # the same Qwen3 model spelled as a hub id and as a served name is not a change
    a = {"embedder": {"engine": "local", "model": "Qwen/Qwen3-Embedding-0.6B", "dimensions": 512}}
    b = {"embedder": {"engine": "remote", "model": "qwen3-embedding-0.6b", "dimensions": 512}}
    ef.validate_config_update(a, b)


def test_chroma_modify_calls_validate_config_update(client, name):
    col = get_or_create_collection(client, name, fake(32))
    with pytest.raises(DimensionMismatchError, match="32-d vectors, got 64-d"):
        col.modify(configuration={"embedding_function": QwenEmbeddingFunction(fake(64))})


# ---------------------------------------------------------------- get_or_create_collection
def test_new_collection_records_model_dimension_and_cosine(client, name):
    emb = fake(32)
    col = get_or_create_collection(client, name, emb, metadata={"team": "search"})
    meta = dict(col.metadata or {})
    card = SpaceCard.from_json(meta.pop(META_SPACE_CARD))  # the space card, recorded when it was opened
    assert (card.model, card.dimension) == ("fake-embedding", 32)
    assert meta == {"team": "search", META_MODEL: "fake-embedding", META_DIMENSION: 32}
    assert col.configuration_json["hnsw"]["space"] == "cosine"
    persisted = col.configuration_json["embedding_function"]
    assert persisted["name"] == EF_NAME and persisted["config"]["embedder"] == emb.to_config()
    ids = [f"d{i}" for i in range(len(DOCS))]
    col.add(ids=ids, documents=DOCS)
    got = col.get(ids=ids, include=["embeddings", "documents"])
    assert got["ids"] == ids and got["documents"] == DOCS
    np.testing.assert_allclose(np.asarray(got["embeddings"]), emb.embed_documents(DOCS), atol=1e-6)
    emb.calls.clear()
    res = col.query(query_texts=["What is the capital of China?"], n_results=2)
    assert res["ids"][0][0] == "d0"
    assert emb.calls == [["Instruct: Find the passage\nQuery:What is the capital of China?"]]
    assert collection_dimension(col) == 32


def test_reopen_with_same_embedder_and_without_passing_the_function(client, name):
    emb = fake(32)
    get_or_create_collection(client, name, emb).add(ids=["a"], documents=[DOCS[0]])
    again = get_or_create_collection(client, name, emb)
    assert again.count() == 1
    again.add(ids=["b"], documents=[DOCS[1]])
    # opened with plain Chroma and no function: Chroma rebuilds ours from the persisted config
    plain = client.get_collection(name)
    plain.add(ids=["c"], documents=[DOCS[2]])
    got = plain.get(ids=["c"], include=["embeddings"])
    np.testing.assert_allclose(got["embeddings"][0], emb.embed_documents([DOCS[2]])[0], atol=1e-6)
    assert plain.query(query_texts=["photosynthesis: light into chemical energy"], n_results=1)["ids"] == [["c"]]
    assert plain.count() == 3


def test_other_dimension_raises_before_anything_is_written(client, name):
    col = get_or_create_collection(client, name, fake(32))
    col.add(ids=["a", "b"], documents=DOCS[:2])
    with pytest.raises(DimensionMismatchError) as info:
        get_or_create_collection(client, name, fake(64))
    err = info.value
    assert (err.expected, err.actual, err.where) == (32, 64, name)
    assert "32-d" in str(err) and "64-d" in str(err) and name in str(err)
    assert client.get_collection(name).count() == 2


def test_other_dimension_on_an_empty_collection_raises_from_metadata(client, name):
    get_or_create_collection(client, name, fake(32))
    with pytest.raises(DimensionMismatchError, match="recorded in its metadata"):
        get_or_create_collection(client, name, fake(16))


def test_other_model_same_dimension(client, name, caplog):
    get_or_create_collection(client, name, fake(32))
    other = FakeEmbedder("another-model", dimensions=32)
    with pytest.raises(ConfigurationError, match=r"created with model 'fake-embedding'.*'another-model'"):
        get_or_create_collection(client, name, other)
    col = get_or_create_collection(client, name, other, strict_model=False)
    assert col.name == name
    assert "not comparable" in caplog.text


def test_foreign_collection_with_vectors_is_checked_against_a_stored_vector(client, name):
    col = client.create_collection(name, embedding_function=None)
    col.add(ids=["x"], embeddings=[np.ones(24, dtype=np.float32)], documents=["pre-computed"])
    with pytest.raises(DimensionMismatchError, match="width of a stored vector") as info:
        get_or_create_collection(client, name, fake(32))
    assert (info.value.expected, info.value.actual) == (24, 32)
    assert client.get_collection(name, embedding_function=None).count() == 1
    # the right width binds our function although Chroma persisted "default" for this collection
    emb = fake(24)
    bound = get_or_create_collection(client, name, emb)
    bound.add(ids=["y"], documents=["added through ours"])
    got = bound.get(ids=["y"], include=["embeddings"])
    np.testing.assert_allclose(got["embeddings"][0], emb.embed_documents(["added through ours"])[0], atol=1e-6)


def test_foreign_empty_collection_is_accepted(client, name):
    client.create_collection(name)
    col = get_or_create_collection(client, name, fake(32))
    col.add(ids=["a"], documents=["hello"])
    assert col.count() == 1


def test_collection_made_with_our_function_but_not_our_helper(client, name):
    client.create_collection(name, embedding_function=QwenEmbeddingFunction(fake(32)))
    with pytest.raises(DimensionMismatchError, match="persisted embedding function config"):
        get_or_create_collection(client, name, fake(16))
    assert get_or_create_collection(client, name, fake(32)).name == name


def test_collection_of_another_named_function_is_refused(client, name, monkeypatch):
    monkeypatch.setenv("CHROMA_OPENAI_API_KEY", "unused")
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    client.create_collection(
        name, embedding_function=OpenAIEmbeddingFunction(api_base="http://127.0.0.1:9/v1", model_name="m")
    )
    with pytest.raises(ConfigurationError, match=r"created with the 'openai' embedding function"):
        get_or_create_collection(client, name, fake(32))


def test_persistent_client_and_a_fresh_process(tmp_path):
    path = str(tmp_path / "db")
    emb = FakeEmbedder(dimensions=32, query_instruction="Find the passage")
    pc = chromadb.PersistentClient(path, settings=Settings(anonymized_telemetry=False))
    get_or_create_collection(pc, "docs", emb).add(ids=[f"d{i}" for i in range(4)], documents=DOCS)
    script = (
        "import json, sys, chromadb\n"
        "import qwen_embed_adapters.adapters.chroma\n"
        "from chromadb.config import Settings\n"
        "c = chromadb.PersistentClient(sys.argv[1], settings=Settings(anonymized_telemetry=False))\n"
        "col = c.get_collection('docs')\n"
        "r = col.query(query_texts=['Which city is the capital of France?'], n_results=1)\n"
        "col.add(ids=['new'], documents=['Qwen3 embeddings in Chroma'])\n"
        "e = col.get(ids=['new'], include=['embeddings'])['embeddings'][0]\n"
        "print(json.dumps({'ids': r['ids'][0], 'new': [float(x) for x in e], 'count': col.count()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, path], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["ids"] == ["d1"] and data["count"] == 5
    np.testing.assert_allclose(data["new"], emb.embed_documents(["Qwen3 embeddings in Chroma"])[0], atol=1e-6)


def test_fresh_process_without_our_import_gets_chromas_message(tmp_path):
    """Without the import, Chroma cannot rebuild the function: its own error names the function."""
    path = str(tmp_path / "db")
    pc = chromadb.PersistentClient(path, settings=Settings(anonymized_telemetry=False))
    get_or_create_collection(pc, "docs", fake(32)).add(ids=["a"], documents=["x"])
    script = (
        "import sys, chromadb\n"
        "c = chromadb.PersistentClient(sys.argv[1])\n"
        "c.get_collection('docs').query(query_texts=['x'], n_results=1)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "qwen-embed-adapters" in out.stderr and "not found" in out.stderr


def test_missing_chromadb_raises_missing_dependency():
    """Bad environment: chromadb not importable; the module still imports, use raises with the command."""
    script = (
        "import sys\n"
        "sys.modules['chromadb'] = None\n"
        "from qwen_embed_adapters.adapters import chroma\n"
        "from qwen_embed_adapters.testing import FakeEmbedder\n"
        "from qwen_embed_adapters.errors import MissingDependencyError\n"
        "try:\n"
        "    chroma.QwenEmbeddingFunction(FakeEmbedder())\n"
        "except MissingDependencyError as e:\n"
        "    print('OK', e.package, e.extra, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("OK chromadb chroma")
    assert 'pip install "qwen-embed-adapters[chroma]"' in out.stdout


# ---------------------------------------------------------------- ChromaStore
class TestChromaPersistentContract(StoreContract):
    """The shared store contract (qwen_embed_adapters.testing.contract) on an embedded PersistentClient;
    its async twins run the sync calls on worker threads. The `chroma run` server half, with
    AsyncHttpClient, is in tests/integration/test_chroma_server.py."""

    @pytest.fixture
    def open_store(self, tmp_path, name) -> OpenStore:  # type: ignore[no-untyped-def]
        client = chromadb.PersistentClient(str(tmp_path / "db"), settings=Settings(anonymized_telemetry=False))
        return lambda embedder, **kw: ChromaStore(client, name, embedder, **kw)

    refused_precisions = ("int8", "binary")  # Chroma's HNSW keeps float32 and has no quantization setting


def test_store_subclasses_the_shared_base(client, name):
    assert isinstance(ChromaStore(client, name, fake()), VectorStore)


def test_store_takes_chroma_where_filters_and_records_the_dimension(client, name):
    store = ChromaStore(client, name, fake(32))
    ids = store.add_texts(DOCS, metadatas=[{"lang": "en", "n": i} for i in range(len(DOCS))])
    filtered = store.search("capital", top_k=4, filter={"n": {"$gte": 2}})
    assert {h.id for h in filtered} == {ids[2], ids[3]}
    assert store.collection.metadata[META_DIMENSION] == 32


def test_store_explicit_ids_and_stored_vectors(client, name):
    emb = fake(32)
    store = ChromaStore(client, name, emb)
    assert store.add_texts(DOCS[:3], ids=["x", "y", "z"]) == ["x", "y", "z"]
    got = store.collection.get(ids=["x", "y", "z"], include=["embeddings", "documents", "metadatas"])
    np.testing.assert_allclose(np.asarray(got["embeddings"]), emb.embed_documents(DOCS[:3]), atol=1e-6)
    assert got["documents"] == DOCS[:3] and got["metadatas"] == [None, None, None]


def test_store_bad_metadata_names_the_item(client, name):
    """Bad input: a nested dict as a metadata value, which Chroma does not store."""
    store = ChromaStore(client, name, fake())
    with pytest.raises(InvalidInputError, match=r"metadatas\[1\] \(id 'b'\) is not valid Chroma metadata") as info:
        store.add_texts(["one", "two"], ids=["a", "b"], metadatas=[{"ok": 1}, {"nested": {"x": 1}}])
    assert info.value.index == 1 and info.value.item_id == "b"
    assert store.count() == 0


def test_store_on_an_l2_collection_scores_cosine(client, name):
    """A collection made elsewhere in l2 space: scores still come back as cosine similarities."""
    client.create_collection(name, embedding_function=None, configuration={"hnsw": {"space": "l2"}})
    emb = fake(32)
    store = ChromaStore(client, name, emb)
    store.add_texts(DOCS)
    hits = store.search("capital of China", top_k=4)
    expected = emb.embed_documents([h.text for h in hits]) @ emb.embed_query("capital of China")
    np.testing.assert_allclose([h.score for h in hits], expected, atol=1e-5)


def test_chroma_store_existing_ids_lets_a_rerun_skip_stored_records(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A re-run of ingest into Chroma embeds only the records the collection does not hold."""
    import chromadb

    from qwen_embed_adapters.adapters.chroma import ChromaStore
    from qwen_embed_adapters.ingest import ingest
    from qwen_embed_adapters.testing import FakeEmbedder

    emb = FakeEmbedder(dimensions=32)
    store = ChromaStore(chromadb.PersistentClient(str(tmp_path / "db")), "skip-test", emb)
    ids = store.add_texts(["alpha text", "beta text"])
    assert store.existing_ids([ids[0], "missing-id", ids[1]]) == set(ids)
    assert store.existing_ids([]) == set()
    emb.calls.clear()
    ingest(store, ["alpha text", "beta text", "gamma text"], progress=False)
    assert [t for batch in emb.calls for t in batch] == ["gamma text"]
    assert store.count() == 3


def test_persistent_keyword_index_is_kept_beside_and_read_by_a_new_process(tmp_path):
    """The keyword side of a PersistentClient collection lives in its directory: a fresh process (here: the
    per-process registry emptied) reads it instead of re-tokenising the collection, and a file that no longer
    matches the collection's size is rebuilt."""
    path = str(tmp_path / "db")
    store = ChromaStore(path, "kwds", fake(32))
    store.add_texts(["raise ERR_QUOTA_EXCEEDED", "向量数据库的混合检索"], ids=["a", "b"])
    assert [h.id for h in store.search("混合检索", top_k=2, mode="keyword")] == ["b"]
    saved = tmp_path / "db" / qc.KEYWORDS_DIR / f"{store.collection.id}.jsonl"
    assert saved.exists()
    store.add_texts(["a third text about quota"], ids=["c"])  # appended to the file as it happens
    assert saved.read_text(encoding="utf-8").splitlines()[-1] == '{"add":"c","tokens":["third","text","about","quota"]}'
    qc._keyword_indexes.clear()  # what a new process starts with

    def no_documents(*args, **kwargs):
        raise AssertionError("the collection's documents were read again")

    again = ChromaStore(path, "kwds", fake(32))
    real_get = again.collection.get
    again.collection.get = lambda *a, **kw: no_documents() if "documents" in kw.get("include", []) and "ids" not in kw else real_get(*a, **kw)  # type: ignore[method-assign]
    assert [h.id for h in again.search("quota", top_k=3, mode="keyword")] == ["c", "a"]
    qc._keyword_indexes.clear()
    saved.write_text(saved.read_text(encoding="utf-8").splitlines()[0] + "\n")  # an empty index: stale
    third = ChromaStore(path, "kwds", fake(32))
    assert [h.id for h in third.search("quota", top_k=3, mode="keyword")] == ["c", "a"]  # rebuilt
    assert len(saved.read_text(encoding="utf-8").splitlines()) == 4
