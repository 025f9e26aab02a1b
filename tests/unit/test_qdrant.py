"""QdrantStore on qdrant-client's local mode (in memory and on disk): the shared store contract, the
dimension guard against an existing collection, named vectors, filters, request chunking and the
space-card hooks. A Qdrant server runs only where ``QDRANT_URL`` is set (tests/integration/test_qdrant_server.py)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("qdrant_client", reason="pip install 'qwen-embed-adapters[qdrant]'")

from qdrant_client import QdrantClient, models

from qwen_embed_adapters.adapters import qdrant as qdrant_mod
from qwen_embed_adapters.adapters import sparse
from qwen_embed_adapters.adapters.qdrant import QdrantStore, point_id, qdrant_filter
from qwen_embed_adapters.errors import ConfigurationError, DimensionMismatchError, InvalidInputError
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import TEXTS, OpenStore, StoreContract, unique_name
from tests.support.keyword_checks import NativeKeywordChecks


@pytest.fixture
def client(tmp_path: Path) -> Iterator[QdrantClient]:
    c = QdrantClient(path=str(tmp_path / "qdrant"))
    yield c
    c.close()


class TestQdrantLocalContract(StoreContract):
    """The shared store contract (qwen_embed_adapters/testing/contract.py) on Qdrant's local mode, on disk: one
    client shared by the stores of a test (local mode locks its folder to one client)."""

    # qdrant-client's local mode drops quantization_config and searches exactly: compact precisions are refused
    refused_precisions = ("int8", "binary")

    @pytest.fixture
    def open_store(self, client: QdrantClient) -> OpenStore:
        name = unique_name("kb")
        return lambda embedder, **kw: QdrantStore(client, name, embedder, **kw)


class TestQdrantNamedVectorContract(TestQdrantLocalContract):
    """The same contract on a collection with one named vector."""

    @pytest.fixture
    def open_store(self, client: QdrantClient) -> OpenStore:
        name = unique_name("named")
        return lambda embedder, **kw: QdrantStore(client, name, embedder, vector_name="dense", **kw)


def test_memory_mode_and_a_folder_reopened_after_close(tmp_path: Path) -> None:
    with QdrantStore(":memory:", "kb", FakeEmbedder(dimensions=16)) as store:
        store.add_texts(TEXTS)
        assert store.count() == 5 and store.local
    folder = tmp_path / "data"
    with QdrantStore(str(folder), "kb", FakeEmbedder(dimensions=16)) as store:
        store.add_texts(TEXTS, metadatas=[{"n": i} for i in range(5)])
    with QdrantStore(folder, "kb", FakeEmbedder(dimensions=16)) as again:
        assert again.count() == 5
        assert again.search(TEXTS[4], top_k=1, instruction="")[0].metadata == {"n": 4}
    # Bad input tried: another width on the reopened folder.
    with QdrantStore(folder, "kb", FakeEmbedder(dimensions=8)) as other:
        with pytest.raises(DimensionMismatchError, match=r"holds 16-d vectors.*8") as info:
            other.add_texts(["x"])
        assert (info.value.expected, info.value.actual, info.value.where) == (16, 8, "kb")
        assert "created with model" in str(info.value)


def test_a_collection_made_elsewhere_is_checked(client: QdrantClient) -> None:
    client.create_collection("theirs", vectors_config={"a": models.VectorParams(size=8, distance=models.Distance.COSINE),
                                                       "b": models.VectorParams(size=8, distance=models.Distance.COSINE)})
    # Bad input tried: two named vectors and no vector_name; then a vector name the collection lacks.
    with pytest.raises(ConfigurationError, match=r"named vectors \['a', 'b'\]; pass vector_name"):
        QdrantStore(client, "theirs", FakeEmbedder(dimensions=8)).ensure_dimension()
    with pytest.raises(ConfigurationError, match="has no vector 'c'"):
        QdrantStore(client, "theirs", FakeEmbedder(dimensions=8), vector_name="c").ensure_dimension()
    store = QdrantStore(client, "theirs", FakeEmbedder(dimensions=8), vector_name="b")
    store.add_texts(["x"])
    assert store.count() == 1
    client.create_collection("dot", vectors_config=models.VectorParams(size=8, distance=models.Distance.DOT))
    # Bad input tried: a collection with Dot distance.
    with pytest.raises(ConfigurationError, match="uses distance Dot; this store needs Cosine"):
        QdrantStore(client, "dot", FakeEmbedder(dimensions=8)).ensure_dimension()


def test_filters(client: QdrantClient) -> None:
    store = QdrantStore(client, "f", FakeEmbedder(dimensions=16))
    store.add_texts(TEXTS, ids=[f"t{i}" for i in range(5)],
                    metadatas=[{"n": i, "x": i / 2, "lang": "zh" if i == 2 else "en", "even": i % 2 == 0} for i in range(5)])
    ids = lambda f: sorted(h.id for h in store.search("x", top_k=5, filter=f))  # noqa: E731
    assert ids({"n": [1, 3]}) == ["t1", "t3"]
    assert ids({"n": {"$in": [0, 4]}, "lang": "en"}) == ["t0", "t4"]
    assert ids({"lang": {"$eq": "zh"}}) == ["t2"]
    assert ids({"x": 1.5}) == ["t3"]
    assert ids({"even": [True]}) == ["t0", "t2", "t4"]
    assert ids(models.Filter(must=[models.FieldCondition(key="metadata.n", match=models.MatchValue(value=2))])) == ["t2"]
    # Bad input tried: an unknown operator, a dict value, a str filter.
    with pytest.raises(InvalidInputError, match=r"only \$eq and \$in"):
        qdrant_filter({"n": {"$gt": 1}})
    with pytest.raises(InvalidInputError, match="must be a str, int, float or bool"):
        qdrant_filter({"n": [{"a": 1}]})
    with pytest.raises(InvalidInputError, match="filter must be a dict"):
        store.search("x", filter="n > 1")


def test_ids_are_uuid5_of_ours_and_payload_keeps_ours(client: QdrantClient) -> None:
    store = QdrantStore(client, "ids", FakeEmbedder(dimensions=8))
    store.add_texts(["hello"], ids=["my id/with spaces"])
    (record,) = client.retrieve("ids", ids=[point_id("my id/with spaces")], with_payload=True)
    assert record.payload == {"id": "my id/with spaces", "text": "hello", "metadata": {}}


def test_large_batches_are_cut_under_the_request_limit(client: QdrantClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qdrant_mod, "MAX_REQUEST_BYTES", 10_000)
    store = QdrantStore(client, "chunks", FakeEmbedder(dimensions=64))
    calls: list[int] = []
    real = client.upsert

    def spy(collection_name: str, points: list, wait: bool) -> object:
        calls.append(len(points))
        assert wait is True
        return real(collection_name, points=points, wait=wait)

    monkeypatch.setattr(client, "upsert", spy)
    store.add_texts([f"text {i}" for i in range(20)])
    # 64 floats at 20 bytes + text + metadata + 200 = 1,496 bytes a point: 6 fit in 10,000
    assert calls == [6, 6, 6, 2]
    assert store.count() == 20


def test_space_card_is_collection_metadata_not_a_point(client: QdrantClient) -> None:
    store = QdrantStore(client, "card", FakeEmbedder(dimensions=8))
    assert store._read_card() is None
    card = '{"probe": "' + "y" * 6000 + '"}'
    store._write_card(card)
    assert store._read_card() == card
    assert store.count() == 0
    assert asyncio.run(store._aread_card()) == card
    meta = client.get_collection("card").config.metadata or {}
    assert meta["qwen_embed.dimension"] == 8 and meta["qwen_embed.model"] == store.embedder.model


def test_bad_settings_are_refused(client: QdrantClient) -> None:
    emb = FakeEmbedder(dimensions=8)
    # Bad input tried: a collection name with '/', a zero hnsw_m, a number as location.
    with pytest.raises(ConfigurationError, match="without '/'"):
        QdrantStore(client, "a/b", emb)
    with pytest.raises(ConfigurationError, match="hnsw_m must be at least 1, got 0"):
        QdrantStore(client, "a", emb, hnsw_m=0)
    with pytest.raises(ConfigurationError, match="':memory:', a folder, an http"):
        QdrantStore(42, "a", emb)
    assert "api_key" not in repr(QdrantStore(client, "a", emb))


def test_to_config_reopens_the_same_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_QDRANT_KEY", "s3cret-key")
    folder = str(tmp_path / "cfg")
    store = QdrantStore(folder, "kb", FakeEmbedder(dimensions=8), api_key_env="MY_QDRANT_KEY", ef_search=64)
    store.add_texts(TEXTS[:2])
    config = store.to_config()
    assert config == {"store": "qdrant", "location": folder, "collection": "kb", "api_key_env": "MY_QDRANT_KEY",
                      "vector_name": None, "hnsw_m": None, "hnsw_ef_construct": None, "ef_search": 64,
                      "on_disk": False, "write_batch_size": None, "timeout": None, "prefer_grpc": False,
                      "keyword": True, "precision": None, "rescore": 4, "space_check": "adopt",
                      "space_tolerance": 0.99}
    assert "s3cret" not in repr(store) and "s3cret" not in str(config)
    store.close()
    again = QdrantStore.from_config(config, FakeEmbedder(dimensions=8))
    assert again.count() == 2
    again.close()
    # Bad input tried: a store opened on a client object has no location to put in a config.
    with pytest.raises(ConfigurationError, match="needs 'location'"):
        QdrantStore(QdrantClient(":memory:"), "kb", FakeEmbedder(dimensions=8)).to_config()


def test_another_vector_space_of_the_same_width_is_refused(client: QdrantClient) -> None:
    """Bad input tried: an embedder of the same width (32) whose vectors come from another (64-d) space."""
    from qwen_embed_adapters.errors import VectorSpaceMismatchError

    store = QdrantStore(client, "space", FakeEmbedder(dimensions=32))
    store.add_texts(TEXTS)
    assert store._read_card() is not None and store.count() == len(TEXTS)  # the card is no point
    other = QdrantStore(client, "space", FakeEmbedder(dimensions=32, native_dim=64))
    with pytest.raises(VectorSpaceMismatchError):
        other.add_texts(["another space"])
    assert other.count() == len(TEXTS)


def test_compact_precision_is_configured_for_a_qdrant_server(client: QdrantClient) -> None:
    """No Qdrant server runs here: what the store would send one (quantization at create, rescoring at search)."""
    store = QdrantStore(client, unique_name("q"), FakeEmbedder(dimensions=16), ef_search=64)
    store.add_texts(TEXTS[:2])
    assert store._quantization() is None and store._query_args(store.embedder.embed_query("x"), 3, None)["search_params"].quantization is None
    store.settings = store.settings.replace(precision="int8", rescore=5)
    scalar = store._quantization()
    assert isinstance(scalar, models.ScalarQuantization)
    assert (scalar.scalar.type, scalar.scalar.quantile, scalar.scalar.always_ram) == (models.ScalarType.INT8, 0.99, True)
    params = store._query_args(store.embedder.embed_query("x"), 3, None)["search_params"]
    assert (params.hnsw_ef, params.quantization.rescore, params.quantization.oversampling) == (64, True, 5.0)
    store.settings = store.settings.replace(precision="binary")
    assert isinstance(store._quantization(), models.BinaryQuantization)

    class Info:  # what get_collection answers for a binary-quantized collection
        class config:
            quantization_config = models.BinaryQuantization(binary=models.BinaryQuantizationConfig())

    assert store._recorded_precision(Info) == "binary"
    Info.config.quantization_config = None  # type: ignore[assignment]
    assert store._recorded_precision(Info) == "float32"


# ---------------------------------------------------------------------------- keyword search (issue 32)
class TestQdrantKeyword(NativeKeywordChecks):
    """Keyword and hybrid search through Qdrant's sparse vector with the IDF modifier, in local mode on disk."""

    @pytest.fixture
    def open_store(self, client: QdrantClient) -> OpenStore:
        name = unique_name("kw")
        return lambda embedder: QdrantStore(client, name, embedder)


def test_a_new_collection_has_the_idf_sparse_vector_and_records_its_terms(client: QdrantClient) -> None:
    store = QdrantStore(client, "kw_schema", FakeEmbedder(dimensions=8))
    store.add_texts(["parse_args parses argv"], ids=["a"])
    info = client.get_collection("kw_schema")
    assert info.config.params.sparse_vectors == {
        qdrant_mod.KEYWORD_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
    }
    assert info.config.metadata[qdrant_mod.META_KEYWORD] == sparse.SCHEME
    stored = client.retrieve("kw_schema", ids=[point_id("a")], with_vectors=True)[0].vector
    want_indices, want_values = sparse.document_vector("parse_args parses argv")
    assert stored[qdrant_mod.KEYWORD_VECTOR].indices == want_indices
    assert stored[qdrant_mod.KEYWORD_VECTOR].values == pytest.approx(want_values)


def test_local_mode_applies_idf_to_the_stored_term_weights(client: QdrantClient) -> None:
    # Qdrant's IDF: ln(1 + (N - n + 0.5) / (n + 0.5)) over N points, n of them holding the term; the score is
    # IDF x the stored BM25 term weight (query weight 1.0). "common" is in all 3 texts, "rare" in one.
    store = QdrantStore(client, "kw_idf", FakeEmbedder(dimensions=8))
    texts = ["common rare", "common alpha", "common beta"]
    store.add_texts(texts, ids=["r", "a", "b"])
    weight = dict(zip(*sparse.document_vector(texts[0]), strict=True))
    rare = store.search("rare", mode="keyword")
    assert [h.id for h in rare] == ["r"]
    assert rare[0].score == pytest.approx(math.log(1 + (3 - 1 + 0.5) / 1.5) * weight[sparse.term_index("rare")], rel=1e-5)
    common = store.search("common", mode="keyword", top_k=3)
    assert sorted(h.id for h in common) == ["a", "b", "r"]
    assert common[0].score == pytest.approx(math.log(1 + 0.5 / 3.5) * weight[sparse.term_index("common")], rel=1e-5)


def test_a_collection_without_the_sparse_vector_refuses_keyword_search(client: QdrantClient) -> None:
    old = QdrantStore(client, "kw_off", FakeEmbedder(dimensions=8), keyword=False)
    old.add_texts(["数据库"], ids=["a"])
    assert client.get_collection("kw_off").config.params.sparse_vectors is None
    assert [h.id for h in old.search("数据库")] == ["a"]  # dense search is unchanged
    for mode in ("keyword", "hybrid"):
        with pytest.raises(ConfigurationError, match="has no sparse vector 'bm25'.*ingest into a new collection"):
            old.search("数据库", mode=mode)
    # the collection decides, not the setting: a keyword=True store on it refuses the same way
    with pytest.raises(ConfigurationError, match="has no sparse vector 'bm25'"):
        QdrantStore(client, "kw_off", FakeEmbedder(dimensions=8)).search("数据库", mode="keyword")


def test_terms_made_another_way_are_refused(client: QdrantClient) -> None:
    store = QdrantStore(client, "kw_scheme", FakeEmbedder(dimensions=8))
    store.add_texts(["数据库"], ids=["a"])
    client.update_collection("kw_scheme", metadata={qdrant_mod.META_KEYWORD: "tokenize-v0"})
    with pytest.raises(ConfigurationError, match="keyword terms made as 'tokenize-v0'"):
        QdrantStore(client, "kw_scheme", FakeEmbedder(dimensions=8)).search("数据库", mode="keyword")
