"""store_from_spec's parsing: every URI form to its plain dict, and the bad specs it refuses by name."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from qwen_embed_adapters.adapters.spec import STORES, parse_store_spec, redact_spec, store_from_spec
from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.testing import FakeEmbedder

# Every setting of each store, at its default (written out: a changed default must show up here).
SPACE = {"space_check": "adopt", "space_tolerance": 0.99}  # StoreSettings' own: every store has them
COMPACT = {"precision": None, "rescore": 4}  # StoreSettings' own too (compact vectors)
MILVUS = {**SPACE, "token_env": None, "db_name": None, "metric": "COSINE", "index_type": "AUTOINDEX", "index_params": {},
          "text_max_length": 65535, "id_max_length": 512, "id_field": "id", "text_field": "text",
          "metadata_field": "metadata", "vector_field": "vector", "consistency_level": "Strong", "timeout": None,
          "write_batch_size": None, "use_async_client": True, "keyword": True, "keyword_field": "text_bm25",
          "keyword_analyzer": None, **COMPACT}
CHROMA = {**SPACE, "metadata": None, "strict_model": True, "use_async_client": True, **COMPACT}
PINECONE = {**SPACE, "index": None, "namespace": "", "api_key_env": "PINECONE_API_KEY", "controller_host": None,
            "cloud": "aws", "region": "us-east-1", "metric": None, "max_batch_vectors": 1000,
            "max_request_bytes": 2_000_000, "max_metadata_bytes": 40960, "keyword": False, **COMPACT}
FAISS = {**SPACE, "metric": "cosine", "index": "flat", "hnsw_m": 32, "ef_construction": 200, "ef_search": 128, **COMPACT}


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("milvus:///data/kb.db?collection=kb", {"store": "milvus", "uri": "/data/kb.db", "collection": "kb", **MILVUS}),
        ("milvus:kb.db", {"store": "milvus", "uri": "kb.db", "collection": "documents", **MILVUS}),
        ("milvus://./sub/kb.db?collection=c1", {"store": "milvus", "uri": "./sub/kb.db", "collection": "c1", **MILVUS}),
        ("milvus+http://milvus:19530/kb", {"store": "milvus", "uri": "http://milvus:19530", "collection": "kb", **MILVUS}),
        ("milvus+https://m.example.com:443/kb?token_env=ZILLIZ_TOKEN&db_name=prod",
         {"store": "milvus", "uri": "https://m.example.com:443", "collection": "kb", **MILVUS,
          "token_env": "ZILLIZ_TOKEN", "db_name": "prod"}),
        ("chroma+http://chroma:8000/docs", {"store": "chroma", "uri": "http://chroma:8000", "collection": "docs",
                                            **CHROMA}),
        ("chroma+https://chroma.example.com/docs", {"store": "chroma", "uri": "https://chroma.example.com",
                                                  "collection": "docs", **CHROMA}),
        ("chroma:///data/chroma/docs", {"store": "chroma", "uri": "/data/chroma", "collection": "docs", **CHROMA}),
        ("chroma:///data/chroma?collection=docs", {"store": "chroma", "uri": "/data/chroma", "collection": "docs",
                                                   **CHROMA}),
        ("chroma:db/docs", {"store": "chroma", "uri": "db", "collection": "docs", **CHROMA}),
        ("pinecone://kb-x1.svc.aped.pinecone.io?namespace=docs",
         {"store": "pinecone", "host": "https://kb-x1.svc.aped.pinecone.io", **PINECONE, "namespace": "docs"}),
        ("pinecone+http://127.0.0.1:5081?api_key_env=PC_KEY",
         {"store": "pinecone", "host": "http://127.0.0.1:5081", **PINECONE, "api_key_env": "PC_KEY"}),
        ("faiss:///data/faiss-kb", {"store": "faiss", "path": "/data/faiss-kb", **FAISS}),
        ("faiss:indexes/kb?metric=l2&index=hnsw", {"store": "faiss", "path": "indexes/kb", **FAISS, "metric": "l2",
                                                  "index": "hnsw"}),
        # Query values are read as the setting's type.
        ("faiss:kb?hnsw_m=16&ef_search=64", {"store": "faiss", "path": "kb", **FAISS, "hnsw_m": 16, "ef_search": 64}),
        ("milvus:kb.db?use_async_client=false&timeout=2.5&write_batch_size=100&db_name=",
         {"store": "milvus", "uri": "kb.db", "collection": "documents", **MILVUS, "use_async_client": False,
          "timeout": 2.5, "write_batch_size": 100}),
        ("milvus:kb.db?index_params=%7B%22M%22%3A%2016%7D&metric=ip",
         {"store": "milvus", "uri": "kb.db", "collection": "documents", **MILVUS, "index_params": {"M": 16},
          "metric": "IP"}),
        ("pinecone://h.example?max_batch_vectors=50&metric=dotproduct",
         {"store": "pinecone", "host": "https://h.example", **PINECONE, "max_batch_vectors": 50,
          "metric": "dotproduct"}),
    ],
)
def test_every_uri_form_parses_to_its_plain_dict(uri: str, expected: dict[str, Any]) -> None:
    plain = parse_store_spec(uri)
    assert plain == expected
    assert json.loads(json.dumps(plain)) == plain  # plain JSON, fit to ship to a worker
    assert parse_store_spec(plain) == plain  # the dict form is a fixed point


def test_a_dict_spec_gets_the_stores_defaults() -> None:
    assert parse_store_spec({"store": "pinecone", "index": "kb"}) == {"store": "pinecone", "host": None, **PINECONE,
                                                                      "index": "kb"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("redis://localhost:6379/kb", "unknown store 'redis'"),
        ("kb.db", "unknown store 'kb.db'"),
        ({"uri": "./kb.db"}, "unknown store None"),
        (42, "a URI string or a dict"),
        ("milvus+grpc://h:19530/kb", "milvus+grpc is not a transport"),
        ("milvus://milvus-host:19530/kb", "'milvus-host:19530' is a host"),
        ("milvus+http://h:19530/a/b", "the path names one collection"),
        ("milvus+http:///kb", "needs a host"),
        ("chroma:kb", "names a directory and a collection"),
        ("pinecone://host/kb", "takes no path"),
        ("faiss+http://h/x", "has no transport"),
        ("faiss:///tmp/x?dim=3", "unknown faiss store settings: ['dim']"),
        ("faiss:///tmp/x?hnsw_m=many", "hnsw_m='many' is not int"),
        ("faiss:///tmp/x?hnsw_m=0", "hnsw_m must be at least 1, got 0"),
        ("milvus:kb.db?use_async_client=maybe", "use_async_client='maybe' is not true or false"),
        ("milvus:kb.db?metric=HAMMING", "metric must be one of 'COSINE', 'IP', 'L2', got 'HAMMING'"),
        ({"store": "milvus", "uri": "kb.db", "text_max_length": True}, "text_max_length must be an integer, got True"),
        ({"store": "pinecone", "index": "kb", "max_request_bytes": 3_000_000},
         "max_request_bytes must be at most 2000000, got 3000000"),
        ({"store": "milvus", "collection": "kb"}, "the milvus store needs 'uri'"),
        ({"store": "pinecone"}, "needs 'host' or 'index'"),
        ("chroma+http://h:8000/kb", "takes collection names of 3-512 characters"),
    ],
)
def test_bad_specs_are_refused_by_name(spec: Any, message: str) -> None:
    """Bad input: unknown stores and transports, hosts where a path belongs, unknown keys, missing locations."""
    with pytest.raises(ConfigurationError, match="bad store spec") as err:
        parse_store_spec(spec)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "spec",
    [
        "milvus+http://root:Milvus-s3cret@h:19530/kb",
        "pinecone://host.example?namespace=x&api_key=pk-s3cret",
        "milvus+https://h/kb?token=s3cret",
        {"store": "milvus", "uri": "http://h:19530", "token": "s3cret"},
    ],
)
def test_credentials_in_a_spec_are_refused_and_never_echoed(spec: Any) -> None:
    """Bad input: a password, an API key or a token written into the spec itself."""
    with pytest.raises(ConfigurationError, match="credential") as err:
        parse_store_spec(spec)
    assert "s3cret" not in str(err.value)


def test_redact_spec_masks_userinfo_and_secret_query_values() -> None:
    assert redact_spec("milvus+http://u:p4ss@h:19530/kb?token=t0k&db_name=x") == "milvus+http://h:19530/kb?token=***&db_name=x"


def test_a_missing_key_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input: a pinecone spec whose key variable is unset."""
    pytest.importorskip("pinecone")
    monkeypatch.delenv("PC_NOT_SET", raising=False)
    with pytest.raises(ConfigurationError, match=r"\$PC_NOT_SET"):
        store_from_spec("pinecone+http://127.0.0.1:9?api_key_env=PC_NOT_SET", FakeEmbedder(dimensions=8))


def test_the_registry_lists_the_stores() -> None:
    assert list(STORES) == ["milvus", "chroma", "pinecone", "faiss", "pgvector", "postgresql", "postgres", "qdrant"]
    # postgresql:// and postgres:// URIs are pgvector specs: aliases, no --store choice of their own
    assert {n: k.alias_of for n, k in STORES.items() if k.alias_of} == {"postgresql": "pgvector", "postgres": "pgvector"}
    assert parse_store_spec({"store": "postgresql", "conninfo": "postgresql://db/rag"})["store"] == "pgvector"
    assert [n for n, k in STORES.items() if k.local_only is True] == ["faiss"]
    assert [n for n, k in STORES.items() if callable(k.local_only)] == ["qdrant"]  # local mode only
    assert [n for n, k in STORES.items() if k.embedded] == ["milvus", "chroma"]


@pytest.mark.parametrize("name", [n for n, k in STORES.items() if not k.alias_of])
def test_every_registered_store_is_declared_completely(name: str) -> None:
    """Whatever a STORES entry names exists: the class and its settings, the CLI's settings, a dict spec
    built from the CLI's defaults parses, and the defaults are plain JSON."""
    kind = STORES[name]
    cls = kind.store_class()
    assert cls.kind == name and cls.settings_class is kind.settings_class
    fields = {f.name for f in dataclasses.fields(kind.settings_class)}
    for setting in (kind.uri_setting, kind.collection_setting, *(f.setting for f in kind.flags)):
        assert setting is None or setting in fields
    defaults = kind.defaults()
    assert set(defaults) == fields and json.loads(json.dumps(defaults)) == defaults
    spec = {"store": name}
    if kind.uri_setting:
        spec[kind.uri_setting] = kind.default_uri or "http://127.0.0.1:9"
    if kind.collection_setting:
        spec[kind.collection_setting] = "kb-1"
    assert parse_store_spec(spec) == {"store": name, **defaults, **spec}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], {"store": "milvus", "uri": "./qwen_embed.db", "collection": "documents"}),
        (["--store", "chroma", "--collection", "kb1"], {"store": "chroma", "uri": "./chroma_db", "collection": "kb1"}),
        (["--store", "faiss", "--uri", "idx"], {"store": "faiss", "path": "idx"}),
        (["--store", "pinecone", "--collection", "kb", "--namespace", "ns", "--cloud", "gcp",
          "--pinecone-api-key-env", "PC"],
         {"store": "pinecone", "index": "kb", "namespace": "ns", "cloud": "gcp", "api_key_env": "PC"}),
        (["--store", "pinecone", "--uri", "http://127.0.0.1:5080"],
         {"store": "pinecone", "index": "documents", "controller_host": "http://127.0.0.1:5080"}),
    ],
)
def test_cli_store_flags_become_the_registered_settings(
    flags: list[str], expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from qwen_embed_adapters.cli.options import add_store_args, store_spec

    monkeypatch.delenv("QWEN_EMBED_STORE", raising=False)
    parser = argparse.ArgumentParser()
    add_store_args(parser)
    spec = store_spec(parser.parse_args(flags))
    assert spec == parse_store_spec(expected)
    assert {k: spec[k] for k in expected} == expected


def test_cli_store_help_comes_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from qwen_embed_adapters.cli.options import add_store_args

    monkeypatch.delenv("QWEN_EMBED_STORE", raising=False)
    parser = argparse.ArgumentParser()
    add_store_args(parser)
    text = " ".join(parser.format_help().split())
    assert "{milvus,chroma,pinecone,faiss,pgvector,qdrant}" in text
    assert "faiss: a folder [./faiss_index]" in text
    assert "--region REGION pinecone: region of a new index ['us-east-1']" in text
