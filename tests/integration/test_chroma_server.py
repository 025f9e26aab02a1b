"""The Chroma adapter against a real Chroma server.

Backends: ``chroma run --path <tmp> --port <free>`` (the binary in the chromadb wheel, always here) and
the ``chromadb/chroma`` image through testcontainers (skipped with a reason where no Docker engine
answers). Embedders: a RemoteEmbedder talking HTTP to the project's OpenAI-compatible test server
(which demands an API key) and a LocalEmbedder running a tiny random Qwen3 model in-process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")

from qwen_embed_adapters import RemoteEmbedder  # noqa: E402
from qwen_embed_adapters.adapters.chroma import (  # noqa: E402
    EF_NAME,
    META_DIMENSION,
    ChromaStore,
    get_or_create_collection,
)
from qwen_embed_adapters.embedder import Embedder  # noqa: E402
from qwen_embed_adapters.errors import DimensionMismatchError  # noqa: E402
from qwen_embed_adapters.models import DEFAULT_QWEN3_INSTRUCTION  # noqa: E402
from qwen_embed_adapters.testing.contract import TEXTS, OpenStore, StoreContract  # noqa: E402
from tests.support.chroma_server import ChromaServer, docker_available  # noqa: E402
from tests.support.openai_server import EmbeddingServer  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV = "QWEN_EMBED_CHROMA_TEST_KEY"
SECRET = "sk-chroma-test-never-persist-9137"
LOCAL_INSTRUCTION = "Find the passage about the query"

ANIMALS = ["otter", "falcon", "badger", "heron", "lynx", "walrus", "gecko", "bison", "marten", "ibis"]
COLORS = ["crimson", "teal", "amber", "violet", "olive", "ivory", "cobalt", "scarlet", "ochre", "jade"]
CITIES = ["Lisbon", "Kyoto", "Nairobi", "Quito", "Oslo", "Hanoi", "Tunis", "Lima", "Riga", "Perth"]


def corpus(n: int = 1000) -> list[str]:
    """n unique texts; text i names one (animal, colour, city) triple no other text names."""
    return [
        f"field note {i}: a {COLORS[(i // 10) % 10]} {ANIMALS[i % 10]} was seen near {CITIES[(i // 100) % 10]}"
        for i in range(n)
    ]


# ---------------------------------------------------------------- servers
@pytest.fixture(scope="module")
def chroma_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with ChromaServer(tmp_path_factory.mktemp("chroma-run") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def chroma_container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ok, why = docker_available()
    if not ok:
        pytest.skip(f"testcontainers chromadb/chroma: {why}")
    from testcontainers.community.chroma import ChromaContainer

    from tests.support.containers import DbContainer, pick_image

    image, how = pick_image("chroma")  # the official image when pullable, else the local build
    if image is None:
        pytest.skip(how)
    if how == "official":
        with ChromaContainer(image) as c:
            yield c.get_config()
        return
    box = DbContainer("chroma", image, tmp_path_factory.mktemp("chroma-box") / "data")
    box.start()
    try:
        yield {"host": "127.0.0.1", "port": box.port}
    finally:
        box.remove()


@pytest.fixture(scope="module", params=["chroma-run", pytest.param("testcontainers", marks=pytest.mark.docker)])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """How to reach the server: host, port, and the data dir when it is ours to read."""
    if request.param == "chroma-run":
        srv: ChromaServer = request.getfixturevalue("chroma_run")
        return {"host": srv.host, "port": srv.port, "path": srv.path}
    cfg = request.getfixturevalue("chroma_container")
    return {"host": cfg["host"], "port": int(cfg["port"]), "path": None}


@pytest.fixture
def http_client(backend: dict[str, Any]) -> Any:
    from chromadb.config import Settings

    return chromadb.HttpClient(
        host=backend["host"], port=backend["port"], settings=Settings(anonymized_telemetry=False)
    )


@pytest.fixture(scope="module")
def embed_server() -> Iterator[EmbeddingServer]:
    old = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = SECRET
    try:
        with EmbeddingServer(dim=64, api_key=SECRET) as srv:
            yield srv
    finally:
        if old is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = old


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from qwen_embed_adapters.testing import make_tiny_qwen3

    return make_tiny_qwen3(tmp_path_factory.mktemp("models") / "tiny-qwen3", seed=7)


def make_embedder(kind: str, request: pytest.FixtureRequest, dimensions: int | None = None) -> Embedder:
    if kind == "remote":
        srv: EmbeddingServer = request.getfixturevalue("embed_server")
        return RemoteEmbedder(
            srv.base_url, model="Qwen3-Embedding-0.6B", dimensions=dimensions or 64, api_key_env=KEY_ENV
        )
    from qwen_embed_adapters.local import LocalEmbedder

    path = request.getfixturevalue("tiny_model")
    return LocalEmbedder(path, device="cpu", dimensions=dimensions, query_instruction=LOCAL_INSTRUCTION)


@pytest.fixture(params=["remote", "local"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def embedder(kind: str, request: pytest.FixtureRequest) -> Iterator[Embedder]:
    emb = make_embedder(kind, request)
    yield emb
    emb.close()


def new_name() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


def run_fresh(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` in a new Python process (our env: the key's env var is set there too)."""
    out = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=240, cwd=ROOT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------- tests
def test_thousand_documents_through_the_function(http_client, embedder, kind, request):
    name = new_name()
    col = get_or_create_collection(http_client, name, embedder)
    texts = corpus(1000)
    ids = [f"doc-{i:04d}" for i in range(1000)]
    col.add(ids=ids, documents=texts)  # Chroma calls our function for the vectors
    assert col.count() == 1000

    got = col.get(ids=ids, include=["embeddings", "documents"])
    assert sorted(got["ids"]) == ids
    stored = {
        i: (np.asarray(e, dtype=np.float32), d)
        for i, e, d in zip(got["ids"], got["embeddings"], got["documents"], strict=True)
    }
    reference = embedder.embed_documents(texts)
    assert reference.shape == (1000, embedder.dimension) and reference.dtype == np.float32
    for n, i in enumerate(ids):
        vec, doc = stored[i]
        assert doc == texts[n]
        np.testing.assert_allclose(vec, reference[n], atol=1e-5, err_msg=i)

    # query_texts: the nearest document, and the query went through the Qwen3 instruction
    query = "a scarlet gecko near Lima"
    expected = int(np.argmax(reference @ embedder.embed_query(query)))
    res = col.query(query_texts=[query], n_results=3, include=["distances", "documents"])
    assert res["ids"][0][0] == ids[expected]
    with_instr = 1.0 - float(reference[expected] @ embedder.embed_query(query))
    without = 1.0 - float(reference[expected] @ embedder.embed_queries([query], instruction="")[0])
    assert abs(res["distances"][0][0] - with_instr) < 1e-4
    assert abs(with_instr - without) > 1e-3  # the check above can tell the two apart
    top3 = np.argsort(-(reference @ embedder.embed_query(query)))[:3]
    assert res["ids"][0] == [ids[int(j)] for j in top3]
    if kind == "remote":
        srv: EmbeddingServer = request.getfixturevalue("embed_server")
        sent = [x for body in srv.requests for x in body["input"]]
        assert f"Instruct: {DEFAULT_QWEN3_INSTRUCTION}\nQuery:{query}" in sent
        assert texts[0] in sent and f"Query:{texts[0]}" not in " ".join(sent)


def test_other_dimension_is_refused_and_nothing_is_written(http_client, kind, request):
    name = new_name()
    first = make_embedder(kind, request)
    col = get_or_create_collection(http_client, name, first)
    col.add(ids=["a", "b", "c"], documents=corpus(3))
    second = make_embedder(kind, request, dimensions=32)
    assert second.dimension == 32
    with pytest.raises(DimensionMismatchError) as info:
        get_or_create_collection(http_client, name, second)
    assert (info.value.expected, info.value.actual, info.value.where) == (first.dimension, 32, name)
    assert f"{first.dimension}-d" in str(info.value) and "32-d" in str(info.value) and name in str(info.value)
    with pytest.raises(DimensionMismatchError):
        ChromaStore(http_client, name, second).add_texts(["must not be written"])
    assert http_client.get_collection(name).count() == 3
    assert http_client.get_collection(name).metadata[META_DIMENSION] == first.dimension


def test_reopen_in_a_fresh_process_without_passing_the_function(http_client, backend, embedder, kind):
    name = new_name()
    texts = corpus(200)
    col = get_or_create_collection(http_client, name, embedder)
    col.add(ids=[f"d{i}" for i in range(200)], documents=texts)
    query = "an ochre badger near Oslo"
    expected = int(np.argmax(embedder.embed_documents(texts) @ embedder.embed_query(query)))
    script = (
        "import json, sys, chromadb\n"
        "import qwen_embed_adapters.adapters.chroma  # registers the function: nothing else is passed\n"
        "from chromadb.config import Settings\n"
        "c = chromadb.HttpClient(host=sys.argv[1], port=int(sys.argv[2]), settings=Settings(anonymized_telemetry=False))\n"
        "col = c.get_collection(sys.argv[3])\n"
        "r = col.query(query_texts=[sys.argv[4]], n_results=1)\n"
        "col.add(ids=['new'], documents=['a jade ibis was seen near Riga today'])\n"
        "e = col.get(ids=['new'], include=['embeddings'])['embeddings'][0]\n"
        "print(json.dumps({'ids': r['ids'][0], 'new': [float(x) for x in e], 'count': col.count()}))\n"
    )
    data = run_fresh(script, backend["host"], str(backend["port"]), name, query)
    assert data["ids"] == [f"d{expected}"]
    assert data["count"] == 201
    np.testing.assert_allclose(
        data["new"], embedder.embed_documents(["a jade ibis was seen near Riga today"])[0], atol=1e-5
    )


def test_persistent_client_reopened_in_a_fresh_process(tmp_path, embedder, kind):
    from chromadb.config import Settings

    path = str(tmp_path / "db")
    texts = corpus(100)
    pc = chromadb.PersistentClient(path, settings=Settings(anonymized_telemetry=False))
    get_or_create_collection(pc, "notes", embedder).add(ids=[f"n{i}" for i in range(100)], documents=texts)
    query = "a teal heron near Lisbon"
    expected = int(np.argmax(embedder.embed_documents(texts) @ embedder.embed_query(query)))
    script = (
        "import json, sys, chromadb\n"
        "import qwen_embed_adapters.adapters.chroma\n"
        "c = chromadb.PersistentClient(sys.argv[1])\n"
        "r = c.get_collection('notes').query(query_texts=[sys.argv[2]], n_results=1)\n"
        "print(json.dumps({'ids': r['ids'][0]}))\n"
    )
    del pc
    assert run_fresh(script, path, query)["ids"] == [f"n{expected}"]


def test_persisted_configuration_holds_no_key(http_client, backend, embed_server, request):
    emb = make_embedder("remote", request)
    name = new_name()
    col = get_or_create_collection(http_client, name, emb)
    col.add(ids=["a"], documents=["the key must stay in the environment"])
    assert embed_server.headers and embed_server.headers[-1].get("Authorization") == f"Bearer {SECRET}"

    persisted = http_client.get_collection(name).configuration_json["embedding_function"]
    assert persisted["name"] == EF_NAME
    cfg = persisted["config"]["embedder"]
    assert cfg["engine"] == "remote" and cfg["api_key_env"] == KEY_ENV and cfg["base_url"] == embed_server.base_url
    assert SECRET not in json.dumps(persisted)

    if backend["path"] is None:
        return  # a container's disk is not ours to read
    data_dir = Path(backend["path"])
    # what the server wrote to its sqlite: the function config is in the collection's schema
    db = sqlite3.connect(f"file:{data_dir / 'chroma.sqlite3'}?mode=ro", uri=True)
    try:
        row = db.execute("select config_json_str, schema_str from collections where name = ?", (name,)).fetchone()
    finally:
        db.close()
    assert row is not None
    stored = " ".join(x or "" for x in row)
    assert EF_NAME in stored and KEY_ENV in stored and SECRET not in stored
    for f in data_dir.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f"the key leaked into {f}"


def test_store_over_http(http_client, embedder):
    store = ChromaStore(http_client, new_name(), embedder)
    texts = corpus(300)
    ids = store.add_texts(texts, metadatas=[{"i": i} for i in range(300)])
    assert store.count() == 300
    assert store.add_texts(texts[:10]) == ids[:10] and store.count() == 300
    query = "a cobalt lynx near Hanoi"
    scores = embedder.embed_documents(texts) @ embedder.embed_query(query)
    hits = store.search(query, top_k=5)
    assert hits[0].id == ids[int(np.argmax(scores))]
    np.testing.assert_allclose([h.score for h in hits], [scores[ids.index(h.id)] for h in hits], atol=1e-5)
    assert hits[0].metadata == {"i": ids.index(hits[0].id)}
    filtered = store.search(query, top_k=3, filter={"i": {"$lt": 5}})
    assert len(filtered) == 3 and all(h.metadata["i"] < 5 for h in filtered)
    store.delete(ids[:100])
    assert store.count() == 200


# ---------------------------------------------------------------- the shared store contract
class TestChromaServerContract(StoreContract):
    """The shared store contract (qwen_embed_adapters.testing.contract) against `chroma run`: the sync API
    over ``HttpClient``, the async twins over ``AsyncHttpClient``."""

    @pytest.fixture
    def open_store(self, chroma_run: ChromaServer) -> OpenStore:
        from chromadb.config import Settings

        name = new_name()

        def open_(embedder: Embedder) -> ChromaStore:
            client = chromadb.HttpClient(
                host=chroma_run.host, port=chroma_run.port, settings=Settings(anonymized_telemetry=False)
            )
            return ChromaStore(client, name, embedder)

        return open_

    async def test_async_twins_go_through_async_http_client(self, store: ChromaStore, monkeypatch) -> None:
        from chromadb.api.models.AsyncCollection import AsyncCollection

        def no_threads(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the async path fell back to the sync client")

        store.ensure_dimension()  # the one sync call the async path makes, done up front here
        for method in ("_write", "_search_vector", "count", "delete"):
            monkeypatch.setattr(store, method, no_threads)
        ids = await store.aadd_texts(TEXTS)
        assert await store.acount() == len(TEXTS)
        hits = await store.asearch(TEXTS[1], top_k=1, instruction="")
        assert hits[0].id == ids[1] and hits[0].score == pytest.approx(1.0, abs=1e-4)
        await store.adelete(ids[:2])
        assert await store.acount() == len(TEXTS) - 2
        col = await store._acollection()
        assert isinstance(col, AsyncCollection)
        assert len(store._aclients) == 1
        await store.aclose()
        assert len(store._aclients) == 0
