"""Unit tests of the LightRAG adapter: the EmbeddingFunc, LightRAG's environment, the .env writer."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from qwen_embed_adapters.adapters.lightrag import (
    DEFAULT_EMBEDDING_BATCH_NUM,
    DEFAULT_EMBEDDING_FUNC_MAX_ASYNC,
    DEFAULT_EMBEDDING_TIMEOUT,
    embedder_from_lightrag_env,
    ensure_lightrag_dimension,
    lightrag_collection_suffix,
    lightrag_embedding_func,
    lightrag_embedding_func_from_env,
    lightrag_env_block,
    lightrag_env_values,
    lightrag_model_name,
    read_lightrag_env,
    write_lightrag_env,
)
from qwen_embed_adapters.errors import ConfigurationError, DimensionMismatchError, InvalidInputError
from qwen_embed_adapters.models import DEFAULT_QWEN3_INSTRUCTION
from qwen_embed_adapters.remote import RemoteEmbedder
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support.lightrag_fixtures import run_lightrag_server_config

lightrag_utils = pytest.importorskip("lightrag.utils")

TASK = "Retrieve the passage that answers the question"


def fake(dim: int = 64) -> FakeEmbedder:
    return FakeEmbedder("Qwen3-Embedding-fake", dimensions=dim, query_instruction=TASK)


# --------------------------------------------------------------------------- the EmbeddingFunc
def test_embedding_func_declares_dim_model_and_asymmetry() -> None:
    func = lightrag_embedding_func(fake(48), max_token_size=2048)
    assert isinstance(func, lightrag_utils.EmbeddingFunc)
    assert func.embedding_dim == 48
    assert func.model_name == "Qwen3-Embedding-fake"
    assert func.supports_asymmetric is True
    assert func.max_token_size == 2048
    assert func.send_dimensions is False


async def test_query_context_gets_the_instruction_documents_do_not() -> None:
    emb = fake()
    func = lightrag_embedding_func(emb)
    q = await func(["what is photosynthesis?"], context="query")
    d = await func(["Plants convert light.", "Tides follow the Moon."], context="document")
    assert emb.calls == [
        [f"Instruct: {TASK}\nQuery:what is photosynthesis?"],
        ["Plants convert light.", "Tides follow the Moon."],
    ]
    assert q.dtype == np.float32 and q.shape == (1, 64)
    assert d.dtype == np.float32 and d.shape == (2, 64)
    ref = FakeEmbedder("Qwen3-Embedding-fake", dimensions=64, query_instruction=TASK)
    np.testing.assert_allclose(q[0], ref.embed_query("what is photosynthesis?"), atol=1e-6)
    np.testing.assert_allclose(d, ref.embed_documents(["Plants convert light.", "Tides follow the Moon."]), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)


async def test_qwen3_model_gets_the_default_instruction() -> None:
    emb = FakeEmbedder("Qwen3-Embedding-0.6B", dimensions=32, native_dim=1024)
    func = lightrag_embedding_func(emb)
    await func(["q"], context="query")
    assert emb.calls == [[f"Instruct: {DEFAULT_QWEN3_INSTRUCTION}\nQuery:q"]]


async def test_no_context_means_document() -> None:
    emb = fake()
    func = lightrag_embedding_func(emb)
    await func(["alpha beta"])
    await func.func(["gamma"], _priority=5)  # what LightRAG's queue wrapper would have consumed
    assert emb.calls == [["alpha beta"], ["gamma"]]


async def test_empty_batch_keeps_the_width() -> None:
    out = await lightrag_embedding_func(fake(16))([], context="document")
    assert out.shape == (0, 16) and out.dtype == np.float32


async def test_send_dimensions_passes_and_checks_embedding_dim() -> None:
    emb = fake(32)
    func = lightrag_embedding_func(emb, send_dimensions=True)
    assert (await func(["x"], context="document")).shape == (1, 32)
    # A LightRAG-side EmbeddingFunc that now declares another width: ours refuses instead of lying.
    wrong = dataclasses.replace(func, embedding_dim=16)
    with pytest.raises(DimensionMismatchError) as exc:
        await wrong(["x"], context="document")
    assert (exc.value.expected, exc.value.actual) == (16, 32)
    assert "16" in str(exc.value) and "32" in str(exc.value)


async def test_unknown_context_is_refused() -> None:
    """Bad input: context='passage', a value LightRAG never sends."""
    with pytest.raises(InvalidInputError, match="context must be 'query' or 'document', got 'passage'"):
        await lightrag_embedding_func(fake())(["x"], context="passage")


async def test_none_text_names_its_index() -> None:
    """Bad input: a None among the texts LightRAG passes."""
    with pytest.raises(InvalidInputError) as exc:
        await lightrag_embedding_func(fake())(["fine", None], context="document")
    assert exc.value.index == 1 and "[1] is None" in str(exc.value)


def test_bad_arguments() -> None:
    """Bad input: a non-Embedder, and max_token_size=0."""
    with pytest.raises(ConfigurationError, match="needs an Embedder, got str"):
        lightrag_embedding_func("Qwen3-Embedding-0.6B")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_token_size must be at least 1, got 0"):
        lightrag_embedding_func(fake(), max_token_size=0)


def test_model_name_and_collection_suffix(tmp_path) -> None:
    folder = tmp_path / "tiny-qwen3"
    folder.mkdir()
    assert lightrag_model_name(str(folder)) == "tiny-qwen3"
    assert lightrag_model_name(str(folder) + "/") == "tiny-qwen3"
    assert lightrag_model_name("Qwen3-Embedding-0.6B") == "Qwen3-Embedding-0.6B"
    assert lightrag_collection_suffix("Qwen/Qwen3-Embedding-0.6B", 512) == "qwen_qwen3_embedding_0_6b_512d"
    emb = FakeEmbedder(str(folder), dimensions=8)
    assert lightrag_embedding_func(emb).model_name == "tiny-qwen3"


def test_collection_suffix_matches_lightrag() -> None:
    from lightrag.base import BaseVectorStorage

    func = lightrag_embedding_func(FakeEmbedder("Qwen/Qwen3-Embedding-0.6B", dimensions=256, native_dim=1024))

    class Probe:
        embedding_func = func

    assert BaseVectorStorage._generate_collection_suffix(Probe()) == lightrag_collection_suffix(  # type: ignore[arg-type]
        "Qwen/Qwen3-Embedding-0.6B", 256
    )


# --------------------------------------------------------------------------- LightRAG's environment
FULL_ENV = {
    "EMBEDDING_BINDING": "openai",
    "EMBEDDING_BINDING_HOST": "http://gpu-box:30000/v1",
    "EMBEDDING_BINDING_API_KEY": "sk-very-secret-123",
    "EMBEDDING_MODEL": "Qwen3-Embedding-4B",
    "EMBEDDING_DIM": "768",
    "EMBEDDING_SEND_DIM": "true",
    "EMBEDDING_TOKEN_LIMIT": "4096",
    "EMBEDDING_FUNC_MAX_ASYNC": "3",
    "EMBEDDING_BATCH_NUM": "24",
    "EMBEDDING_TIMEOUT": "45",
}


def test_read_full_lightrag_env() -> None:
    cfg = read_lightrag_env(FULL_ENV)
    assert (cfg.host, cfg.model, cfg.dim, cfg.send_dim, cfg.token_limit) == (
        "http://gpu-box:30000/v1", "Qwen3-Embedding-4B", 768, True, 4096,
    )
    assert (cfg.func_max_async, cfg.batch_num, cfg.timeout) == (3, 24, 45.0)
    assert "sk-very-secret-123" not in repr(cfg)
    emb = cfg.embedder()
    assert isinstance(emb, RemoteEmbedder)
    assert (emb.base_url, emb.model, emb.dimension) == ("http://gpu-box:30000/v1", "Qwen3-Embedding-4B", 768)
    assert (emb.batch_size, emb.max_concurrency, emb.timeout, emb.send_dimensions) == (24, 3, 45.0, True)
    assert emb.query_instruction == DEFAULT_QWEN3_INSTRUCTION
    config = emb.to_config()
    assert config["api_key_env"] == "EMBEDDING_BINDING_API_KEY"
    assert "sk-very-secret-123" not in repr(emb) + repr(config)
    func = lightrag_embedding_func_from_env(FULL_ENV)
    assert (func.embedding_dim, func.max_token_size, func.model_name) == (768, 4096, "Qwen3-Embedding-4B")


def test_defaults_are_lightrags() -> None:
    from lightrag import constants

    assert DEFAULT_EMBEDDING_BATCH_NUM == constants.DEFAULT_EMBEDDING_BATCH_NUM
    assert DEFAULT_EMBEDDING_FUNC_MAX_ASYNC == constants.DEFAULT_EMBEDDING_FUNC_MAX_ASYNC
    assert DEFAULT_EMBEDDING_TIMEOUT == constants.DEFAULT_EMBEDDING_TIMEOUT
    emb = embedder_from_lightrag_env({"EMBEDDING_BINDING_HOST": "http://localhost:30000"})
    assert emb.base_url == "http://localhost:30000" and emb.openai_base_url == "http://localhost:30000/v1"
    assert emb.model == "Qwen3-Embedding-0.6B" and emb.dimension == 1024
    assert (emb.batch_size, emb.max_concurrency, emb.timeout) == (10, 8, 30.0)
    assert emb.send_dimensions is False


def test_max_embed_tokens_is_an_alias(caplog: pytest.LogCaptureFixture) -> None:
    base = {"EMBEDDING_BINDING_HOST": "http://h:1/v1"}
    assert read_lightrag_env({**base, "MAX_EMBED_TOKENS": "8192"}).token_limit == 8192
    with caplog.at_level(logging.WARNING):
        cfg = read_lightrag_env({**base, "MAX_EMBED_TOKENS": "8192", "EMBEDDING_TOKEN_LIMIT": "2048"})
    assert cfg.token_limit == 2048
    assert "disagree" in caplog.text


def test_special_none_values() -> None:
    cfg = read_lightrag_env(
        {"EMBEDDING_BINDING_HOST": "http://h:1/v1", "EMBEDDING_DIM": "None", "EMBEDDING_MODEL": "None"}
    )
    assert cfg.dim is None and cfg.model == "Qwen3-Embedding-0.6B"


def test_send_dim_off_truncates_client_side() -> None:
    emb = embedder_from_lightrag_env({"EMBEDDING_BINDING_HOST": "http://h:1/v1", "EMBEDDING_DIM": "256"})
    assert emb.dimension == 256 and emb.send_dimensions is False
    assert "dimensions" not in emb._body(["x"])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("EMBEDDING_DIM", "512d", "EMBEDDING_DIM must be an integer, got '512d'"),
        ("EMBEDDING_BATCH_NUM", "0", "EMBEDDING_BATCH_NUM must be a positive integer, got 0"),
        ("EMBEDDING_TIMEOUT", "soon", "EMBEDDING_TIMEOUT must be a number of seconds, got 'soon'"),
        ("EMBEDDING_BINDING", "jina", "EMBEDDING_BINDING='jina': only OpenAI-compatible"),
        ("EMBEDDING_DIM", "2048", "dimensions=2048 is above the native dimension 1024"),
    ],
)
def test_bad_env_values_name_the_variable(key: str, value: str, message: str) -> None:
    """Bad input: one malformed EMBEDDING_* value (non-integer dim, zero batch, word timeout,
    unsupported binding, a dim above the model's native one)."""
    env = {"EMBEDDING_BINDING_HOST": "http://h:1/v1", key: value}
    with pytest.raises(ConfigurationError) as exc:
        embedder_from_lightrag_env(env)
    assert message in str(exc.value)


def test_missing_host() -> None:
    """Bad input: no EMBEDDING_BINDING_HOST at all."""
    with pytest.raises(ConfigurationError, match="missing EMBEDDING_BINDING_HOST"):
        read_lightrag_env({"EMBEDDING_MODEL": "Qwen3-Embedding-0.6B"})


def test_query_prefix_sets_the_instruction() -> None:
    base = {"EMBEDDING_BINDING_HOST": "http://h:1/v1", "EMBEDDING_ASYMMETRIC": "true",
            "EMBEDDING_DOCUMENT_PREFIX": "NO_PREFIX"}
    cfg = read_lightrag_env({**base, "EMBEDDING_QUERY_PREFIX": f"Instruct: {TASK}\nQuery:"})
    assert cfg.query_instruction == TASK
    assert read_lightrag_env({**base, "EMBEDDING_QUERY_PREFIX": "NO_PREFIX"}).query_instruction == ""
    # EMBEDDING_ASYMMETRIC=false: lightrag-server embeds queries bare, so do we.
    off = read_lightrag_env({"EMBEDDING_BINDING_HOST": "http://h:1/v1", "EMBEDDING_ASYMMETRIC": "false"})
    assert off.query_instruction == "" and off.embedder().format_queries(["q"]) == ["q"]


def test_foreign_prefixes_are_refused() -> None:
    """Bad input: an e5-style query prefix, and a non-empty document prefix."""
    base = {"EMBEDDING_BINDING_HOST": "http://h:1/v1", "EMBEDDING_ASYMMETRIC": "true"}
    with pytest.raises(ConfigurationError, match="not a Qwen3 query prefix"):
        read_lightrag_env({**base, "EMBEDDING_QUERY_PREFIX": "query: "})
    with pytest.raises(ConfigurationError, match="Qwen3 embeds documents without any prefix"):
        read_lightrag_env({**base, "EMBEDDING_DOCUMENT_PREFIX": "passage: "})


def test_dotenv_file_and_environment_precedence(tmp_path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("EMBEDDING_BINDING_HOST=http://from-file:1/v1\nEMBEDDING_DIM=128\n", encoding="utf-8")
    cfg = read_lightrag_env({"EMBEDDING_DIM": "64"}, dotenv_path=env_file)
    assert cfg.host == "http://from-file:1/v1" and cfg.dim == 64
    with pytest.raises(ConfigurationError, match="no .env file at"):
        read_lightrag_env({}, dotenv_path=tmp_path / "missing.env")


# --------------------------------------------------------------------------- the .env for lightrag-server
def test_env_values_for_a_remote_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWEN_EMBED_API_KEY", "sk-do-not-write-me")
    emb = RemoteEmbedder("http://gpu:30000/v1", "Qwen3-Embedding-0.6B", dimensions=512, batch_size=32,
                         max_concurrency=4, timeout=12.5)
    values = lightrag_env_values(emb, max_token_size=8192)
    assert values == {
        "EMBEDDING_BINDING": "openai",
        "EMBEDDING_BINDING_HOST": "http://gpu:30000/v1",
        "EMBEDDING_BINDING_API_KEY": "${QWEN_EMBED_API_KEY}",
        "EMBEDDING_MODEL": "Qwen3-Embedding-0.6B",
        "EMBEDDING_DIM": "512",
        "EMBEDDING_SEND_DIM": "true",
        "EMBEDDING_TOKEN_LIMIT": "8192",
        "EMBEDDING_FUNC_MAX_ASYNC": "4",
        "EMBEDDING_BATCH_NUM": "32",
        "EMBEDDING_TIMEOUT": "13",
        "EMBEDDING_ASYMMETRIC": "true",
        "EMBEDDING_QUERY_PREFIX": f"Instruct: {DEFAULT_QWEN3_INSTRUCTION}\nQuery:",
        "EMBEDDING_DOCUMENT_PREFIX": "NO_PREFIX",
    }
    block = lightrag_env_block(emb)
    assert "sk-do-not-write-me" not in block
    assert f'EMBEDDING_QUERY_PREFIX="Instruct: {DEFAULT_QWEN3_INSTRUCTION}\\nQuery:"' in block


def test_env_values_native_dim_and_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QWEN_EMBED_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    emb = RemoteEmbedder("http://gpu:30000/v1", "Qwen3-Embedding-0.6B", query_instruction="")
    values = lightrag_env_values(emb)
    assert values["EMBEDDING_DIM"] == "1024" and values["EMBEDDING_SEND_DIM"] == "false"
    assert values["EMBEDDING_BINDING_API_KEY"] == "EMPTY"
    assert values["EMBEDDING_ASYMMETRIC"] == "false"
    assert "EMBEDDING_QUERY_PREFIX" not in values and "EMBEDDING_TOKEN_LIMIT" not in values


def test_in_process_embedder_needs_a_host() -> None:
    """Bad input: an in-process embedder with no host for lightrag-server to call."""
    with pytest.raises(ConfigurationError, match="runs in-process; lightrag-server needs an HTTP endpoint"):
        lightrag_env_values(fake())
    values = lightrag_env_values(fake(), host="http://127.0.0.1:8000/v1", model="tiny")
    assert values["EMBEDDING_BINDING_HOST"] == "http://127.0.0.1:8000/v1" and values["EMBEDDING_MODEL"] == "tiny"


def test_write_env_keeps_other_lines_and_replaces_ours(tmp_path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "LLM_BINDING=openai\nEMBEDDING_DIM=1024\nMAX_EMBED_TOKENS=8192\n# a comment\nWORKING_DIR=./rag\n",
        encoding="utf-8",
    )
    emb = RemoteEmbedder("http://gpu:30000/v1", dimensions=256, api_key_env="MY_KEY")
    write_lightrag_env(env_file, emb)
    write_lightrag_env(env_file, emb)  # idempotent: one block, one value per variable
    text = env_file.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert [ln for ln in lines if ln.startswith("EMBEDDING_DIM=")] == ["EMBEDDING_DIM=256"]
    assert not any(ln.startswith("MAX_EMBED_TOKENS") for ln in lines)
    assert lines[:3] == ["LLM_BINDING=openai", "# a comment", "WORKING_DIR=./rag"]
    assert text.count(">>> qwen-embed-adapters") == 1
    assert "EMBEDDING_BINDING_API_KEY=${MY_KEY}" in lines


def test_lightrags_own_parser_reads_back_the_same_values(tmp_path) -> None:
    """The block we write, read by lightrag-server's own parser (lightrag.api.config.parse_args)."""
    emb = RemoteEmbedder(
        "http://127.0.0.1:30000/v1", "Qwen3-Embedding-0.6B", dimensions=384, batch_size=16,
        max_concurrency=3, timeout=20, api_key_env="QWEN_KEY_FOR_TEST", query_instruction='Find "the" passage',
    )
    write_lightrag_env(tmp_path / ".env", emb, max_token_size=4096)
    got = run_lightrag_server_config(
        tmp_path,
        "from lightrag.api.config import parse_args\n"
        "a = parse_args()\n"
        "print(json.dumps({k: getattr(a, k) for k in ["
        "'embedding_binding', 'embedding_binding_host', 'embedding_binding_api_key', 'embedding_model',"
        "'embedding_dim', 'embedding_send_dim', 'embedding_token_limit', 'embedding_func_max_async',"
        "'embedding_batch_num', 'embedding_timeout', 'embedding_asymmetric', 'embedding_query_prefix',"
        "'embedding_document_prefix', 'embedding_document_prefix_configured']}))",
        extra_env={"QWEN_KEY_FOR_TEST": "sk-from-the-environment"},
    )
    assert got == {
        "embedding_binding": "openai",
        "embedding_binding_host": "http://127.0.0.1:30000/v1",
        "embedding_binding_api_key": "sk-from-the-environment",
        "embedding_model": "Qwen3-Embedding-0.6B",
        "embedding_dim": 384,
        "embedding_send_dim": True,
        "embedding_token_limit": 4096,
        "embedding_func_max_async": 3,
        "embedding_batch_num": 16,
        "embedding_timeout": 20,
        "embedding_asymmetric": True,
        "embedding_query_prefix": 'Instruct: Find "the" passage\nQuery:',
        "embedding_document_prefix": "",
        "embedding_document_prefix_configured": True,
    }
    # ... and our reader rebuilds the same embedder from the same file.
    back = embedder_from_lightrag_env({"QWEN_KEY_FOR_TEST": "sk-from-the-environment"}, dotenv_path=tmp_path / ".env")
    assert (back.base_url, back.model, back.dimension, back.batch_size, back.max_concurrency, back.timeout) == (
        "http://127.0.0.1:30000/v1", "Qwen3-Embedding-0.6B", 384, 16, 3, 20.0,
    )
    assert back.query_instruction == 'Find "the" passage'
    assert back.format_queries(["q"]) == emb.format_queries(["q"])


# --------------------------------------------------------------------------- the guard, without LightRAG
def test_guard_on_a_fresh_dir_passes(tmp_path) -> None:
    assert ensure_lightrag_dimension(tmp_path / "new", fake(64)) == {}
    assert ensure_lightrag_dimension(tmp_path, 64, vector_storage="MilvusVectorDBStorage",
                                     milvus_uri=str(tmp_path / "none.db")) == {}
    assert not (tmp_path / "none.db").exists()


def test_guard_refuses_an_unknown_storage(tmp_path) -> None:
    """Bad input: a vector storage the guard cannot read."""
    with pytest.raises(ConfigurationError, match="vector_storage='MongoVectorDBStorage' is not checked"):
        ensure_lightrag_dimension(tmp_path, 64, vector_storage="MongoVectorDBStorage")


def test_guard_on_qdrant_needs_a_url(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input: QdrantVectorDBStorage with neither a client, a URL nor $QDRANT_URL."""
    monkeypatch.delenv("QDRANT_URL", raising=False)
    with pytest.raises(ConfigurationError, match="pass qdrant_url= or qdrant_client=, or set QDRANT_URL"):
        ensure_lightrag_dimension(tmp_path, 64, vector_storage="QdrantVectorDBStorage")


def test_guard_reads_a_nano_file(tmp_path) -> None:
    from nano_vectordb import NanoVectorDB

    db = NanoVectorDB(32, storage_file=str(tmp_path / "vdb_chunks.json"))
    db.upsert([{"__id__": "a", "__vector__": np.ones(32, dtype=np.float32)}])
    db.save()
    assert ensure_lightrag_dimension(tmp_path, 32) == {str(tmp_path / "vdb_chunks.json"): 32}
    with pytest.raises(DimensionMismatchError) as exc:
        ensure_lightrag_dimension(tmp_path, fake(64))
    assert (exc.value.expected, exc.value.actual, exc.value.where) == (32, 64, str(tmp_path / "vdb_chunks.json"))
    assert "holds 32-d vectors, got 64-d" in str(exc.value)


def test_guard_on_a_corrupt_nano_file(tmp_path) -> None:
    """Bad input: a vdb_entities.json that is not NanoVectorDB JSON."""
    (tmp_path / "vdb_entities.json").write_text("not json", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="is not a NanoVectorDB file"):
        ensure_lightrag_dimension(tmp_path, 64)


def test_client_side_truncation_cannot_go_to_lightrag_server() -> None:
    """Bad input: a 256-d embedder whose server must not be sent 'dimensions' (lightrag-server
    would receive 1024-d vectors it cannot shorten)."""
    emb = RemoteEmbedder("http://gpu:30000/v1", "Qwen3-Embedding-0.6B", dimensions=256, send_dimensions=False)
    with pytest.raises(ConfigurationError, match="lightrag-server cannot do that"):
        lightrag_env_values(emb)
    # Unknown model, explicit width: the server is asked for it.
    unknown = RemoteEmbedder("http://gpu:30000/v1", "my-embedder", dimensions=48)
    assert lightrag_env_values(unknown)["EMBEDDING_SEND_DIM"] == "true"


def test_guard_reads_a_faiss_index(tmp_path) -> None:
    faiss = pytest.importorskip("faiss")
    faiss.write_index(faiss.IndexFlatIP(24), str(tmp_path / "faiss_index_relationships.index"))
    found = ensure_lightrag_dimension(tmp_path, 24, vector_storage="FaissVectorDBStorage")
    assert found == {str(tmp_path / "faiss_index_relationships.index"): 24}
    with pytest.raises(DimensionMismatchError) as exc:
        ensure_lightrag_dimension(tmp_path, fake(64), vector_storage="FaissVectorDBStorage")
    assert (exc.value.expected, exc.value.actual) == (24, 64)


def test_missing_lightrag_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad environment: lightrag-hku is not installed."""
    import sys

    from qwen_embed_adapters.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "lightrag.utils", None)
    with pytest.raises(MissingDependencyError) as exc:
        lightrag_embedding_func(fake())
    assert exc.value.package == "lightrag-hku"
    assert 'pip install "qwen-embed-adapters[lightrag]"' in str(exc.value)


# --------------------------------------------------------------------------- vector storage variables
def test_storage_values_for_postgres_by_width_and_password_env() -> None:
    from qwen_embed_adapters.adapters.lightrag import lightrag_storage_values

    spec = "postgresql://rag@db.example:5433/kb?password_env=PG_PW&m=24&ef_construction=80"
    assert lightrag_storage_values(spec, 1024) == {
        "LIGHTRAG_VECTOR_STORAGE": "PGVectorStorage", "POSTGRES_HOST": "db.example", "POSTGRES_PORT": "5433",
        "POSTGRES_USER": "rag", "POSTGRES_DATABASE": "kb", "POSTGRES_VECTOR_INDEX_TYPE": "HNSW",
        "POSTGRES_HNSW_M": "24", "POSTGRES_HNSW_EF": "80", "POSTGRES_PASSWORD": "${PG_PW}",
    }
    wide = lightrag_storage_values("postgresql://rag@db.example/kb", 2560, workspace="team")
    assert (wide["POSTGRES_VECTOR_INDEX_TYPE"], wide["POSTGRES_PASSWORD"], wide["POSTGRES_WORKSPACE"]) == (
        "HNSW_HALFVEC", "", "team")
    # Bad input tried: Qwen3-Embedding-8B's full 4,096 dimensions, which no pgvector index takes.
    with pytest.raises(ConfigurationError, match="this embedder gives 4096: embed at 4000 or fewer"):
        lightrag_storage_values("postgresql://rag@db.example/kb", 4096)
    # Bad input tried: the bundled server's folder, which LightRAG cannot connect to by itself.
    with pytest.raises(ConfigurationError, match="start_embedded_postgres"):
        lightrag_storage_values("pgvector:///srv/pgdata?table=kb", 1024)


def test_storage_values_for_qdrant_server_and_local_mode_refused() -> None:
    from qwen_embed_adapters.adapters.lightrag import lightrag_storage_values

    assert lightrag_storage_values("qdrant+https://q.example:6333/kb?api_key_env=QKEY", 1024, workspace="w") == {
        "LIGHTRAG_VECTOR_STORAGE": "QdrantVectorDBStorage", "QDRANT_URL": "https://q.example:6333",
        "QDRANT_API_KEY": "${QKEY}", "QDRANT_WORKSPACE": "w",
    }
    # Bad input tried: Qdrant local mode (a folder), which LightRAG's QdrantClient(url=...) cannot open.
    with pytest.raises(ConfigurationError, match=r"by URL only \(QdrantClient\(url=QDRANT_URL\)"):
        lightrag_storage_values("qdrant:///srv/qdrant?collection=kb", 1024)
    # Bad input tried: a store LightRAG's variables do not describe here.
    with pytest.raises(ConfigurationError, match="not 'faiss'"):
        lightrag_storage_values("faiss:///srv/index", 1024)


def test_write_env_with_a_vector_store_replaces_the_earlier_storage(tmp_path) -> None:
    from dotenv import dotenv_values

    emb = RemoteEmbedder("http://127.0.0.1:9/v1", "Qwen3-Embedding-0.6B")
    path = tmp_path / ".env"
    path.write_text("POSTGRES_PASSWORD=old\nKEEP=1\n", encoding="utf-8")
    write_lightrag_env(path, emb, vector_store="postgresql://rag@/kb?host=/run/pg", workspace="w1")
    values = dotenv_values(path)
    assert (values["KEEP"], values["LIGHTRAG_VECTOR_STORAGE"], values["POSTGRES_HOST"], values["POSTGRES_PASSWORD"]) == (
        "1", "PGVectorStorage", "/run/pg", "")
    assert path.read_text(encoding="utf-8").count("POSTGRES_PASSWORD") == 1
    write_lightrag_env(path, emb, vector_store="qdrant+http://127.0.0.1:6333/kb")
    values = dotenv_values(path)
    assert values["LIGHTRAG_VECTOR_STORAGE"] == "QdrantVectorDBStorage" and "POSTGRES_HOST" not in values
    assert "POSTGRES_PASSWORD" not in values and "POSTGRES_WORKSPACE" not in values
