"""store_from_spec's parsing: every URI form to its plain dict, and the bad specs it refuses by name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qwen_embed_adapters.adapters.spec import STORES, parse_store_spec, redact_spec, store_from_spec
from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.testing import FakeEmbedder

MILVUS = {"token_env": None, "db_name": None, "metric": "COSINE"}
PINECONE = {"index": None, "namespace": "", "api_key_env": "PINECONE_API_KEY", "controller_host": None,
            "cloud": "aws", "region": "us-east-1"}


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
        ("chroma+http://chroma:8000/docs", {"store": "chroma", "uri": "http://chroma:8000", "collection": "docs"}),
        ("chroma+https://chroma.example.com/docs", {"store": "chroma", "uri": "https://chroma.example.com",
                                                  "collection": "docs"}),
        ("chroma:///data/chroma/docs", {"store": "chroma", "uri": "/data/chroma", "collection": "docs"}),
        ("chroma:///data/chroma?collection=docs", {"store": "chroma", "uri": "/data/chroma", "collection": "docs"}),
        ("chroma:db/docs", {"store": "chroma", "uri": "db", "collection": "docs"}),
        ("pinecone://kb-x1.svc.aped.pinecone.io?namespace=docs",
         {"store": "pinecone", "host": "https://kb-x1.svc.aped.pinecone.io", **PINECONE, "namespace": "docs"}),
        ("pinecone+http://127.0.0.1:5081?api_key_env=PC_KEY",
         {"store": "pinecone", "host": "http://127.0.0.1:5081", **PINECONE, "api_key_env": "PC_KEY"}),
        ("faiss:///data/faiss-kb", {"store": "faiss", "path": "/data/faiss-kb", "metric": "cosine", "index": "flat"}),
        ("faiss:indexes/kb?metric=l2&index=hnsw", {"store": "faiss", "path": "indexes/kb", "metric": "l2",
                                                  "index": "hnsw"}),
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
        ("faiss:///tmp/x?dim=3", "unknown faiss setting(s) ['dim']"),
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


def test_every_registered_store_parses_from_a_dict() -> None:
    locations = {"milvus": {"uri": "kb.db"}, "chroma": {"uri": "db"}, "pinecone": {"index": "kb"},
                 "faiss": {"path": "f"}, "pgvector": {"pgdata": "pg"}, "postgresql": {"conninfo": "postgresql://h/d"},
                 "postgres": {"conninfo": "postgresql://h/d"}, "qdrant": {"location": "q"}}
    assert set(STORES) == set(locations)
    for name, loc in locations.items():
        # postgresql:// and postgres:// are pgvector on a server
        assert parse_store_spec({"store": name, **loc})["store"] == ("pgvector" if name.startswith("postgres") else name)
