"""Store settings without a database: each settings dataclass round-trips through its plain config, refuses
bad values with ConfigurationError naming the setting, and keeps secrets out of configs and reprs."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from qwen_embed_adapters.adapters.base import StoreSettings, VectorStore
from qwen_embed_adapters.adapters.chroma import ChromaSettings
from qwen_embed_adapters.adapters.faiss import FaissSettings
from qwen_embed_adapters.adapters.milvus import MilvusSettings, MilvusStore
from qwen_embed_adapters.adapters.pgvector import PgVectorSettings
from qwen_embed_adapters.adapters.pinecone import PineconeSettings, PineconeStore
from qwen_embed_adapters.adapters.qdrant import QdrantSettings
from qwen_embed_adapters.adapters.spec import STORES
from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.testing import FakeEmbedder
from tests.unit.test_pinecone import MemoryIndex

#: every field of each store's settings at a value other than its default
NON_DEFAULT: dict[type[StoreSettings], dict[str, Any]] = {
    MilvusSettings: {"uri": "http://milvus:19530", "collection": "kb", "token_env": "MILVUS_TOKEN", "db_name": "prod",
                     "metric": "L2", "index_type": "HNSW", "index_params": {"M": 16}, "text_max_length": 2048,
                     "id_max_length": 64, "id_field": "pk", "text_field": "body", "metadata_field": "meta",
                     "vector_field": "emb", "consistency_level": "Bounded", "timeout": 5.0, "write_batch_size": 32,
                     "use_async_client": False, "keyword": False, "keyword_field": "body_sparse",
                     "keyword_analyzer": {"tokenizer": "standard"}},
    ChromaSettings: {"uri": "http://chroma:8000", "collection": "docs", "metadata": {"team": "a"},
                     "strict_model": False, "use_async_client": False},
    PineconeSettings: {"host": "https://kb.svc.pinecone.io", "index": "kb", "namespace": "ns", "api_key_env": "PC_KEY",
                       "controller_host": "http://127.0.0.1:5080", "cloud": "gcp", "region": "europe-west4",
                       "metric": "dotproduct", "max_batch_vectors": 100, "max_request_bytes": 1_000_000,
                       "max_metadata_bytes": 1024, "keyword": True},
    FaissSettings: {"path": "/data/kb", "metric": "ip", "index": "hnsw", "hnsw_m": 16, "ef_construction": 100,
                    "ef_search": 32},
    PgVectorSettings: {"conninfo": "postgresql://me@db/rag", "pgdata": None, "table": "kb", "schema": "rag",
                       "password_env": "PG_PW", "index": None, "vector_type": "halfvec", "m": 24, "ef_construction": 100,
                       "ef_search": 100, "write_batch_size": 500, "connect_timeout": 3.0,
                       "keyword": False},
    QdrantSettings: {"location": "http://qdrant:6333", "collection": "kb", "api_key_env": "QDRANT_API_KEY",
                     "vector_name": "dense", "hnsw_m": 32, "hnsw_ef_construct": 200, "ef_search": 128, "on_disk": True,
                     "write_batch_size": 64, "timeout": 30, "prefer_grpc": True, "keyword": False},
}
# StoreSettings' own fields (the space card's and compact vectors'), which every store has.
for _values in NON_DEFAULT.values():
    _values.update({"space_check": "strict", "space_tolerance": 0.95, "precision": "float32", "rescore": 8})

#: fields that cannot differ from their default together with the others (conninfo and pgdata exclude each other)
AT_DEFAULT = {(PgVectorSettings, "pgdata")}


def test_every_registered_store_has_a_case_here() -> None:
    assert {k.settings_class for k in STORES.values()} == set(NON_DEFAULT)


@pytest.mark.parametrize("cls", list(NON_DEFAULT), ids=lambda c: c.__name__)
def test_every_field_survives_to_config_and_from_config(cls: type[StoreSettings]) -> None:
    values = NON_DEFAULT[cls]
    fields = dataclasses.fields(cls)
    assert {f.name for f in fields} == set(values)
    settings = cls(**values)
    for f in fields:
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        assert values[f.name] != default or (cls, f.name) in AT_DEFAULT, f.name
    config = settings.to_config()
    assert config == values and json.loads(json.dumps(config)) == config
    assert cls.from_config(config) == settings


@pytest.mark.parametrize(
    ("cls", "bad", "message"),
    [
        (MilvusSettings, {"text_max_length": 70000}, "text_max_length must be at most 65535, got 70000"),
        (MilvusSettings, {"timeout": 0}, "timeout must be above 0, got 0"),
        (MilvusSettings, {"write_batch_size": True}, "write_batch_size must be an integer, got True"),
        (MilvusSettings, {"use_async_client": 1}, "use_async_client must be True or False, got 1"),
        (MilvusSettings, {"index_params": [1]}, "index_params must be a dict, got list"),
        (ChromaSettings, {"collection": "a"}, "collection names of 3-512 characters"),
        (ChromaSettings, {"strict_model": "yes"}, "strict_model must be True or False, got 'yes'"),
        (PineconeSettings, {"metric": "manhattan"}, "metric must be one of 'cosine', 'euclidean', 'dotproduct'"),
        (PineconeSettings, {"max_batch_vectors": 0}, "max_batch_vectors must be at least 1, got 0"),
        (PineconeSettings, {"namespace": None}, "namespace must be a string, got None"),
        (FaissSettings, {"index": "ivf"}, "index must be one of 'flat', 'hnsw', got 'ivf'"),
        (FaissSettings, {"ef_construction": 1.5}, "ef_construction must be an integer, got 1.5"),
        (PgVectorSettings, {"conninfo": "postgresql://me:pw@db/rag"}, "a password does not belong in the conninfo"),
        (PgVectorSettings, {"m": 16, "ef_construction": 20}, "ef_construction (20) must be at least 2 * m (32)"),
        (PgVectorSettings, {"vector_type": "bit"}, "vector_type must be one of 'auto', 'vector', 'halfvec'"),
        (PgVectorSettings, {"table": "x" * 64}, "table must be a non-empty str of at most 63 bytes"),
        (QdrantSettings, {"location": "http://u:pw@q:6333"}, "credentials do not belong in the location"),
        (QdrantSettings, {"on_disk": "yes"}, "on_disk must be True or False, got 'yes'"),
        (QdrantSettings, {"keyword": "yes"}, "keyword must be True or False, got 'yes'"),
        (MilvusSettings, {"keyword_analyzer": "jieba"}, "keyword_analyzer must be a dict, got str"),
        (MilvusSettings, {"keyword_field": ""}, "keyword_field must not be empty"),
        (PgVectorSettings, {"keyword": 1}, "keyword must be True or False, got 1"),
        (PineconeSettings, {"keyword": True, "metric": "cosine"},
         "uses metric 'cosine'; keyword search needs sparse-dense records, which Pinecone queries only on dotproduct"),
    ],
)
def test_bad_settings_are_named(cls: type[StoreSettings], bad: dict[str, Any], message: str) -> None:
    """Bad input: the one setting in ``bad`` (out of range, of the wrong type, not a choice)."""
    with pytest.raises(ConfigurationError) as err:
        cls(**bad)
    assert message in str(err.value)


def test_a_milvus_uri_with_credentials_is_refused_without_echoing_them() -> None:
    """Bad input: a password inside the Milvus server URI (the token goes in token= or token_env=)."""
    with pytest.raises(ConfigurationError, match="credentials do not belong in the uri") as err:
        MilvusStore("http://root:pw-s3cret@milvus:19530", "kb", FakeEmbedder())
    assert "pw-s3cret" not in str(err.value)


def test_a_token_variable_that_is_unset_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input: token_env naming a variable that is not set."""
    monkeypatch.delenv("MILVUS_NO_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match=r"\$MILVUS_NO_TOKEN, which is not set"):
        MilvusStore("http://127.0.0.1:1", "kb", FakeEmbedder(), token_env="MILVUS_NO_TOKEN")


def test_a_pinecone_store_on_a_handle_records_its_name_and_key_variable() -> None:
    emb = FakeEmbedder(dimensions=8)
    store = PineconeStore(MemoryIndex(8), emb, namespace="ns", name="kb", api_key_env="PC_KEY", max_batch_vectors=10)
    config = store.to_config()
    assert config == {"store": "pinecone", **PineconeSettings(index="kb", namespace="ns", api_key_env="PC_KEY",
                                                               max_batch_vectors=10).to_config()}
    assert repr(store) == ("PineconeStore(index='kb', namespace='ns', api_key_env='PC_KEY', max_batch_vectors=10, "
                           f"dimension=None, is_async=False, embedder={emb!r})")


def test_a_pinecone_handle_without_name_or_host_has_no_config() -> None:
    """Bad input: to_config() of a store on a handle that names neither an index nor a host."""
    store = PineconeStore(MemoryIndex(8), FakeEmbedder(dimensions=8))
    with pytest.raises(ConfigurationError, match="has no config: needs 'host' or 'index'"):
        store.to_config()


def test_from_config_refuses_another_stores_config() -> None:
    """Bad input: a faiss config handed to MilvusStore.from_config, then an unknown key."""
    with pytest.raises(ConfigurationError, match="MilvusStore config has store='faiss', expected 'milvus'"):
        MilvusStore.from_config({"store": "faiss", "path": "x"}, FakeEmbedder())
    with pytest.raises(ConfigurationError, match=r"unknown MilvusStore settings: \['dim'\]"):
        MilvusStore.from_config({"store": "milvus", "uri": "kb.db", "dim": 3}, FakeEmbedder())


def test_a_store_without_settings_has_no_config() -> None:
    """Bad input: to_config() of a third-party store that declares no settings class."""

    class Bare(VectorStore):
        name = "bare"

        def ensure_dimension(self) -> int:
            return 8

        def _write(self, *args: Any) -> None:
            return None

        def _search_vector(self, *args: Any) -> list[Any]:
            return []

        def count(self) -> int:
            return 0

        def delete(self, ids: Any) -> None:
            return None

    emb = FakeEmbedder(dimensions=8)
    store = Bare(emb)
    with pytest.raises(ConfigurationError, match="Bare declares no settings"):
        store.to_config()
    assert repr(store) == f"Bare(name='bare', embedder={emb!r})"
