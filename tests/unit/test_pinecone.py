"""PineconeStore without any server: request planning, validation, configuration errors and the
missing-SDK message. These run against an in-memory index object, not Pinecone; what goes over the
wire to a real SDK is tested in tests/integration/test_pinecone_standin.py."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pytest

from qwen_embed_adapters.adapters.pinecone import MAX_REQUEST_BYTES, PineconeStore
from qwen_embed_adapters.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
)
from qwen_embed_adapters.testing import FakeEmbedder


class MemoryIndex:
    """An in-memory object with the sync Index methods the store calls; records each call."""

    def __init__(self, dimension: int = 8) -> None:
        self.dimension = dimension
        self.upserts: list[dict[str, Any]] = []
        self.data: dict[str, dict[str, Any]] = {}

    def upsert(self, *, vectors: list[dict[str, Any]], namespace: str = "") -> Any:
        self.upserts.append({"vectors": vectors, "namespace": namespace})
        for v in vectors:
            self.data[v["id"]] = v
        return SimpleNamespace(upserted_count=len(vectors))

    def query(self, **kw: Any) -> Any:
        return SimpleNamespace(matches=[])

    def describe_index_stats(self) -> Any:
        return SimpleNamespace(dimension=self.dimension, namespaces={"__default__": SimpleNamespace(vector_count=len(self.data))})


class AsyncMemoryIndex(MemoryIndex):
    async def upsert(self, *, vectors: list[dict[str, Any]], namespace: str = "") -> Any:  # type: ignore[override]
        return MemoryIndex.upsert(self, vectors=vectors, namespace=namespace)


def _records(store: PineconeStore, n: int, text_len: int = 10) -> list[dict[str, Any]]:
    texts = [f"{i:05d}" + "t" * text_len for i in range(n)]
    ids = [f"id{i}" for i in range(n)]
    return store._records(ids, store.embedder.embed_documents(texts), texts, [{} for _ in texts])


def test_plan_cuts_at_1000_vectors() -> None:
    """2,500 small records plan as 1000 + 1000 + 500 requests, in input order."""
    store = PineconeStore(MemoryIndex(8), FakeEmbedder(dimensions=8))
    recs = _records(store, 2500)
    chunks = store.plan_requests(recs)
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert [r["id"] for c in chunks for r in c] == [r["id"] for r in recs]


def test_plan_cuts_at_the_byte_limit_measured_like_the_sdk() -> None:
    """Records of ~25 KB plan into requests whose orjson body (what the SDK sends) fits 2 MB."""
    store = PineconeStore(MemoryIndex(1024), FakeEmbedder(dimensions=1024), namespace="ns")
    chunks = store.plan_requests(_records(store, 250, text_len=3000))
    sizes = [len(orjson.dumps({"vectors": c, "namespace": "ns"})) for c in chunks]
    assert len(chunks) > 1
    assert max(sizes) <= MAX_REQUEST_BYTES
    # each request is full: adding the next record would have crossed the limit
    for c, nxt in zip(chunks, chunks[1:], strict=False):
        assert len(orjson.dumps({"vectors": [*c, nxt[0]], "namespace": "ns"})) > MAX_REQUEST_BYTES


def test_plan_respects_smaller_configured_limits() -> None:
    """max_batch_vectors=7 and max_request_bytes=3000 both hold."""
    store = PineconeStore(MemoryIndex(8), FakeEmbedder(dimensions=8), max_batch_vectors=7, max_request_bytes=3000)
    chunks = store.plan_requests(_records(store, 40))
    assert all(len(c) <= 7 for c in chunks)
    assert all(len(orjson.dumps({"vectors": c, "namespace": ""})) <= 3000 for c in chunks)
    assert sum(len(c) for c in chunks) == 40


def test_records_are_python_float_lists_with_text_metadata() -> None:
    """Vectors become lists of Python floats equal to the float32 values; text goes to metadata."""
    store = PineconeStore(MemoryIndex(8), FakeEmbedder(dimensions=8))
    vecs = np.arange(16, dtype=np.float32).reshape(2, 8) / 7
    recs = store._records(["a", "b"], vecs, ["ta", "tb"], [{"k": 1}, {}])
    assert all(type(x) is float for r in recs for x in r["values"])
    np.testing.assert_array_equal(np.asarray(recs[0]["values"], dtype=np.float32), vecs[0])
    assert recs[0]["metadata"] == {"k": 1, "text": "ta"} and recs[1]["metadata"] == {"text": "tb"}


def test_wrong_width_vectors_raise_dimension_mismatch() -> None:
    """Bad input: 4-wide vectors written to a store that knows its index is 8-d."""
    store = PineconeStore(MemoryIndex(8), FakeEmbedder(dimensions=8), dimension=8, name="ix")
    with pytest.raises(DimensionMismatchError) as err:
        store._records(["a"], np.ones((1, 4), dtype=np.float32), ["t"], [{}])
    assert (err.value.expected, err.value.actual, err.value.where) == (8, 4, "ix")


def test_add_texts_on_memory_index_and_default_namespace_count() -> None:
    """add_texts writes every record once; count reads the ``__default__`` namespace of the stats."""
    index = MemoryIndex(8)
    store = PineconeStore(index, FakeEmbedder(dimensions=8))
    ids = store.add_texts(["a", "b", "c"])
    assert len(index.upserts) == 1 and [v["id"] for v in index.upserts[0]["vectors"]] == ids
    assert store.count() == 3


def test_numpy_float_metadata_goes_out_as_python_float() -> None:
    """Bad input: a numpy float64 metadata value (a pandas cell) passes the float check, but orjson (the
    SDK's encoder) cannot serialise it; it is sent as a plain Python float instead of failing."""
    index = MemoryIndex(8)
    store = PineconeStore(index, FakeEmbedder(dimensions=8))
    store.add_texts(["a"], metadatas=[{"score": np.float64(0.25), "tag": np.str_("x")}])
    meta = index.upserts[0]["vectors"][0]["metadata"]
    assert meta == {"score": 0.25, "tag": "x", "text": "a"}
    assert type(meta["score"]) is float and type(meta["tag"]) is str
    orjson.dumps(index.upserts[0])


def test_metadata_size_counts_the_text() -> None:
    """Bad input: a 40,950-character text with a small user field crosses 40,960 bytes only with
    the text included; the error names the id."""
    store = PineconeStore(MemoryIndex(8), FakeEmbedder(dimensions=8))
    with pytest.raises(InvalidInputError, match="'big'") as err:
        store._validate_batch(["big"], ["x" * 40_950], [{"source": "file.md"}])
    assert err.value.item_id == "big"
    store._validate_batch(["ok"], ["x" * 40_000], [{"source": "file.md"}])


def test_unicode_text_is_measured_in_bytes() -> None:
    """Bad input: 14,000 three-byte characters (42,000 bytes) are over 40 KB though under 40,960 chars."""
    store = PineconeStore(MemoryIndex(8), FakeEmbedder(dimensions=8))
    with pytest.raises(InvalidInputError, match="bytes"):
        store._validate_batch(["cjk"], ["中" * 14_000], [{}])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"namespace": 3}, "namespace must be a str"),
        ({"max_batch_vectors": 1001}, "max_batch_vectors"),
        ({"max_request_bytes": 3_000_000}, "max_request_bytes"),
        ({"max_metadata_bytes": 0}, "max_metadata_bytes"),
    ],
)
def test_constructor_refuses_bad_settings(kwargs: dict[str, Any], match: str) -> None:
    """Bad input: a non-str namespace and limits above Pinecone's."""
    with pytest.raises(ConfigurationError, match=match):
        PineconeStore(MemoryIndex(), FakeEmbedder(dimensions=8), **kwargs)


def test_constructor_refuses_a_non_index() -> None:
    """Bad input: a Pinecone client object passed where an index handle belongs."""
    with pytest.raises(ConfigurationError, match="index handle"):
        PineconeStore(object(), FakeEmbedder(dimensions=8))


def test_async_index_is_detected_and_sync_calls_refused() -> None:
    """Bad input: sync add_texts on a store over an asyncio index."""
    store = PineconeStore(AsyncMemoryIndex(8), FakeEmbedder(dimensions=8))
    assert store.is_async
    with pytest.raises(ConfigurationError, match="aadd_texts"):
        store.add_texts(["x"])


async def test_async_index_write_path() -> None:
    """aadd_texts on an asyncio-style index awaits its upsert and returns the ids."""
    index = AsyncMemoryIndex(8)
    index.describe_index_stats = None  # type: ignore[assignment]  # must not be needed: dimension given
    store = PineconeStore(index, FakeEmbedder(dimensions=8), dimension=8)
    ids = await store.aadd_texts(["x", "y"])
    assert [v["id"] for v in index.upserts[0]["vectors"]] == ids


def test_missing_sdk_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the pinecone package, create() raises MissingDependencyError with the pip line."""
    monkeypatch.setitem(sys.modules, "pinecone", None)
    with pytest.raises(MissingDependencyError) as err:
        PineconeStore.create(object(), "docs", FakeEmbedder(dimensions=8))
    assert 'pip install "qwen-embed-adapters[pinecone]"' in str(err.value)


def test_module_imports_without_the_sdk() -> None:
    """The adapter module itself imports no Pinecone code (checked in a fresh interpreter)."""
    import subprocess

    code = (
        "import sys; sys.modules['pinecone'] = None; "
        "import qwen_embed_adapters.adapters.pinecone as m; print(m.PineconeStore.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "PineconeStore"
