"""Unit tests for models, vectors and the Embedder base class (no network, no model)."""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pytest

import qwen_embed_adapters as qea
from qwen_embed_adapters import models, vectors
from qwen_embed_adapters.config import embedder_from_config
from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.errors import (
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingServiceError,
    InvalidInputError,
    MissingDependencyError,
    QwenEmbedError,
)
from qwen_embed_adapters.testing import FakeEmbedder, _hash_vector


# ---------------------------------------------------------------------------- models
@pytest.mark.parametrize(
    "name,native",
    [
        ("Qwen/Qwen3-Embedding-0.6B", 1024),
        ("Qwen3-Embedding-0.6B", 1024),
        ("qwen3-embedding:0.6b", 1024),
        ("Qwen/Qwen3-Embedding-4B", 2560),
        ("/models/Qwen3-Embedding-8B-GGUF", 4096),
    ],
)
def test_lookup_known_models(name: str, native: int) -> None:
    info = models.lookup(name)
    assert info is not None and info.native_dim == native and info.min_dim == 32
    assert info.max_tokens == 32768
    assert models.default_instruction(name) == models.DEFAULT_QWEN3_INSTRUCTION


def test_unknown_model_has_no_default_instruction() -> None:
    assert models.lookup("all-MiniLM-L6-v2") is None
    assert models.default_instruction("all-MiniLM-L6-v2") == ""


def test_dimensions_above_native_is_a_configuration_error() -> None:
    """Bad input: dimensions=2048 for the 0.6B model, whose native dimension is 1024."""
    with pytest.raises(ConfigurationError, match=r"2048 is above the native dimension 1024"):
        models.check_dimensions("Qwen3-Embedding-0.6B", 2048)
    with pytest.raises(ConfigurationError, match="below the smallest dimension 32"):
        models.check_dimensions("Qwen3-Embedding-0.6B", 16)
    models.check_dimensions("Qwen3-Embedding-8B", 4096)
    models.check_dimensions("some-unknown-model", 4096)


def test_query_format_has_no_space_after_query() -> None:
    assert models.format_query("what is MRL?", "Find docs") == "Instruct: Find docs\nQuery:what is MRL?"
    assert models.format_query("plain", "") == "plain"


# ---------------------------------------------------------------------------- vectors
def test_truncate_normalize_is_prefix_then_unit_norm() -> None:
    m = np.array([[3.0, 4.0, 12.0], [1.0, 0.0, 5.0]])
    out = vectors.truncate_normalize(m, 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [1.0, 0.0]], atol=1e-7)


def test_truncate_to_a_larger_dimension_fails() -> None:
    with pytest.raises(DimensionMismatchError) as info:
        vectors.truncate_normalize(np.ones((1, 4)), 8)
    assert (info.value.expected, info.value.actual) == (8, 4)


def test_to_lists_gives_python_floats_of_float32_values() -> None:
    m = np.array([[0.1, 0.2]], dtype=np.float64)
    out = vectors.to_lists(m)
    assert type(out[0][0]) is float
    assert out[0][0] == float(np.float32(0.1))  # float32 precision, widened exactly
    one = vectors.to_list(np.float32([1.5, 2.5]))
    assert one == [1.5, 2.5] and all(type(x) is float for x in one)


def test_as_float32_matrix_names_the_nan_row() -> None:
    """Bad input: a matrix whose row 2 holds a NaN."""
    m = np.ones((4, 3))
    m[2, 1] = np.nan
    with pytest.raises(InvalidInputError, match="row 2") as info:
        vectors.as_float32_matrix(m)
    assert info.value.index == 2
    with pytest.raises(DimensionMismatchError, match="'coll'"):
        vectors.as_float32_matrix(np.ones((2, 3)), dim=4, where="coll")


def test_zero_vector_cannot_be_normalised() -> None:
    """Bad input: a zero row, which has no direction."""
    with pytest.raises(InvalidInputError, match="row 1 is a zero vector"):
        vectors.l2_normalize(np.array([[1.0, 0.0], [0.0, 0.0]]))


def test_decode_base64_round_trip() -> None:
    import base64

    v = np.float32([0.25, -1.5, 3.0])
    assert vectors.decode_base64(base64.b64encode(v.tobytes()).decode()).tolist() == [0.25, -1.5, 3.0]
    with pytest.raises(InvalidInputError):
        vectors.decode_base64("not base64!!")


# ---------------------------------------------------------------------------- Embedder base via FakeEmbedder
@pytest.mark.parametrize(
    "bad,index,msg",
    [
        (["ok", None, "x"], 1, r"texts\[1\] is None"),
        (["ok", "y", 3], 2, r"texts\[2\] is int"),
        (["", "y"], 0, r"texts\[0\] is an empty string"),
    ],
)
def test_bad_input_names_its_index_before_any_request(bad: list, index: int, msg: str) -> None:
    """Bad input: None, a non-str and an empty string inside a list; no batch may be sent."""
    emb = FakeEmbedder()
    with pytest.raises(InvalidInputError, match=msg) as info:
        emb.embed_documents(bad)
    assert info.value.index == index
    assert emb.calls == []


def test_a_single_string_is_refused() -> None:
    """Bad input: a bare str where a list of str is expected (it would embed each character)."""
    with pytest.raises(InvalidInputError, match="single str; wrap it in a list"):
        FakeEmbedder().embed_documents("hello")


def test_output_is_float32_unit_rows_in_input_order_across_batches() -> None:
    texts = [f"text number {i} " + "x" * (i % 7) for i in range(23)]
    emb = FakeEmbedder(dimensions=16, native_dim=64, batch_size=5, max_concurrency=3)
    out = emb.embed_documents(t for t in texts)  # any iterable
    assert out.shape == (23, 16) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    ref = np.stack([_hash_vector(t, 64)[:16] for t in texts])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert sorted(len(c) for c in emb.calls) == [3, 5, 5, 5, 5]


def test_queries_get_the_instruction_documents_do_not() -> None:
    emb = FakeEmbedder(query_instruction="Find the answer")
    emb.embed_documents(["doc"])
    emb.embed_query("what?")
    emb.embed_queries(["q"], instruction="")
    assert emb.calls == [["doc"], ["Instruct: Find the answer\nQuery:what?"], ["q"]]


def test_qwen3_models_get_the_default_instruction() -> None:
    emb = FakeEmbedder(model="Qwen3-Embedding-0.6B", dimensions=32, native_dim=1024)
    assert emb.format_queries(["hi"]) == [f"Instruct: {models.DEFAULT_QWEN3_INSTRUCTION}\nQuery:hi"]
    assert FakeEmbedder(model="Qwen3-Embedding-0.6B", query_instruction="", dimensions=32).format_queries(["hi"]) == ["hi"]


def test_async_twins_equal_sync() -> None:
    emb = FakeEmbedder(batch_size=2)
    texts = ["a b", "c d", "e f", "g h", "i j"]

    async def run() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            await emb.aembed_documents(texts),
            await emb.aembed_queries(texts, instruction="t"),
            await emb.aembed_query("a b", instruction="t"),
        )

    d, q, one = asyncio.run(run())
    np.testing.assert_array_equal(d, emb.embed_documents(texts))
    np.testing.assert_array_equal(q, emb.embed_queries(texts, instruction="t"))
    np.testing.assert_array_equal(one, q[0])


def test_sync_api_works_inside_a_running_event_loop() -> None:
    emb = FakeEmbedder(batch_size=2, max_concurrency=2)

    async def inside() -> np.ndarray:
        return emb.embed_documents(["a", "b", "c"])  # no asyncio.run inside: must not raise

    assert asyncio.run(inside()).shape == (3, 64)


def test_empty_list_gives_an_empty_matrix() -> None:
    out = FakeEmbedder(dimensions=8, native_dim=8).embed_documents([])
    assert out.shape == (0, 8) and out.dtype == np.float32


class _Broken(Embedder):
    engine = "broken"

    def __init__(self, answer: np.ndarray, **kw: object) -> None:
        super().__init__("x-model", **kw)  # type: ignore[arg-type]
        self.answer = answer

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return self.answer

    def to_config(self) -> dict:
        return {}


def test_wrong_count_nan_and_wrong_width_are_refused() -> None:
    """Bad backend answers: one vector short, a NaN, and a narrower width than learnt."""
    with pytest.raises(EmbeddingServiceError, match="asked for 2 vectors, got 1"):
        _Broken(np.ones((1, 4))).embed_documents(["a", "b"])
    nan = np.ones((2, 4))
    nan[1, 2] = np.nan
    with pytest.raises(EmbeddingServiceError, match="input 1: the answer holds NaN"):
        _Broken(nan).embed_documents(["a", "b"])
    b = _Broken(np.ones((1, 4)))
    assert b.dimension_if_known is None
    b.embed_documents(["a"])
    assert b.dimension == 4
    b.answer = np.ones((1, 3))
    with pytest.raises(EmbeddingServiceError, match="3-d vectors, expected 4"):
        b.embed_documents(["a"])


def test_config_round_trip_is_plain_json() -> None:
    emb = FakeEmbedder(dimensions=32, query_instruction="Find it")
    cfg = json.loads(json.dumps(emb.to_config()))
    again = embedder_from_config(cfg)
    assert isinstance(again, FakeEmbedder) and again.dimension == 32
    np.testing.assert_array_equal(again.embed_query("q"), emb.embed_query("q"))
    with pytest.raises(ConfigurationError, match="unknown embedder engine 'nope'"):
        embedder_from_config({"engine": "nope"})


def test_thread_safety_of_one_embedder() -> None:
    emb = FakeEmbedder(batch_size=3, max_concurrency=2)
    texts = [f"t{i}" for i in range(30)]
    ref = emb.embed_documents(texts)
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(emb.embed_documents(texts))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6
    for r in results:
        np.testing.assert_array_equal(r, ref)


def test_public_api_imports_no_optional_dependency() -> None:
    import subprocess
    import sys

    code = (
        "import sys, qwen_embed_adapters as q;"
        "bad=[m for m in ('torch','transformers','chromadb','pymilvus','pinecone','lightrag','faiss') if m in sys.modules];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert issubclass(MissingDependencyError, QwenEmbedError) and issubclass(MissingDependencyError, ImportError)
    assert "pip install \"qwen-embed-adapters[milvus]\"" in str(MissingDependencyError("pymilvus", "milvus"))
    for name in ("Embedder", "RemoteEmbedder", "embedder_from_env", "embedder_from_config"):
        assert hasattr(qea, name)
