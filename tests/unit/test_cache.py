"""CachedEmbedder: exact vectors, keys, counters, a changed space never answered from stale entries."""

from __future__ import annotations

import asyncio
import logging
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from qwen_embed_adapters.cache import CachedEmbedder
from qwen_embed_adapters.config import embedder_from_config
from qwen_embed_adapters.errors import ConfigurationError, InvalidInputError
from qwen_embed_adapters.testing import FakeEmbedder

TASK = "Given a web search query, retrieve relevant passages"
TEXTS = ["Beijing is the capital of China", "机器学习", "the quick brown fox", "hello"]


class DocumentsAsQueries(FakeEmbedder):
    """Another space: documents embedded with the query instruction (the xinference #3751 bug)."""

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        return self.embed_queries(texts)


def rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])


def test_vectors_are_the_inner_embedders_bit_for_bit(tmp_path: Path) -> None:
    inner = FakeEmbedder(dimensions=32)
    cached = CachedEmbedder(FakeEmbedder(dimensions=32), tmp_path / "c.sqlite")
    cold = cached.embed_documents(TEXTS)
    warm = cached.embed_documents(TEXTS)
    expected = inner.embed_documents(TEXTS)
    np.testing.assert_array_equal(cold, expected)
    np.testing.assert_array_equal(warm, expected)
    assert warm.dtype == np.float32 and warm.shape == (4, 32)
    np.testing.assert_array_equal(cached.embed_queries(["capital"]), inner.embed_queries(["capital"]))
    np.testing.assert_array_equal(cached.embed_query("capital"), inner.embed_query("capital"))
    np.testing.assert_array_equal(cached.embed_texts(TEXTS), inner.embed_texts(TEXTS))


def test_hits_and_misses_are_counted_and_only_misses_reach_the_inner_embedder(tmp_path: Path) -> None:
    inner = FakeEmbedder(dimensions=32)
    cached = CachedEmbedder(inner, tmp_path / "c.sqlite")
    cached.embed_documents(TEXTS[:2])
    assert (cached.hits, cached.misses) == (0, 2)
    inner.calls.clear()  # the probes of the space card were embedded on first use
    out = cached.embed_documents(["new one", TEXTS[0], "new two", TEXTS[1]])
    assert (cached.hits, cached.misses) == (2, 4)
    assert cached.hit_rate == pytest.approx(2 / 6)
    assert inner.calls == [["new one", "new two"]]  # one call, the misses in input order
    np.testing.assert_array_equal(out, FakeEmbedder(dimensions=32).embed_documents(
        ["new one", TEXTS[0], "new two", TEXTS[1]]))
    assert rows(tmp_path / "c.sqlite") == 4


def test_a_text_repeated_in_one_call_is_embedded_once(tmp_path: Path) -> None:
    inner = FakeEmbedder(dimensions=16)
    cached = CachedEmbedder(inner, tmp_path / "c.sqlite")
    _ = cached.fingerprint
    inner.calls.clear()
    out = cached.embed_documents(["a b", "c d", "a b"])
    assert inner.calls == [["a b", "c d"]]
    np.testing.assert_array_equal(out[0], out[2])
    assert (cached.hits, cached.misses) == (0, 3)


def test_query_document_text_instruction_and_dimensions_are_different_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    inner = FakeEmbedder(dimensions=32, query_instruction="Given a web search query")
    cached = CachedEmbedder(inner, path)
    cached.embed_documents(["capital of China"])
    cached.embed_queries(["capital of China"])
    cached.embed_queries(["capital of China"], instruction="Find the city")
    cached.embed_queries(["capital of China"], instruction="")
    cached.embed_texts(["capital of China"])
    assert cached.hits == 0 and cached.misses == 5
    assert rows(path) == 5
    q = cached.embed_queries(["capital of China"], instruction="Find the city")
    assert cached.hits == 1
    np.testing.assert_array_equal(q, inner.embed_queries(["capital of China"], instruction="Find the city"))
    # The same file at 16 dimensions: another width, another key (and another card)
    narrow = CachedEmbedder(FakeEmbedder(dimensions=16, native_dim=32), path)
    v = narrow.embed_documents(["capital of China"])
    assert (narrow.hits, narrow.misses) == (0, 1) and v.shape == (1, 16)
    np.testing.assert_array_equal(v, FakeEmbedder(dimensions=16, native_dim=32).embed_documents(["capital of China"]))


def test_a_changed_space_is_never_answered_from_stale_entries(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.sqlite"
    good = CachedEmbedder(FakeEmbedder(dimensions=32, query_instruction=TASK), path)
    good.embed_documents(TEXTS)
    old_fp = good.fingerprint
    good.close()
    wrong_inner = DocumentsAsQueries(dimensions=32, query_instruction=TASK)
    wrong = CachedEmbedder(wrong_inner, path)
    with caplog.at_level(logging.WARNING, logger="qwen_embed_adapters.cache"):
        out = wrong.embed_documents(TEXTS)
    assert wrong.fingerprint != old_fp
    assert (wrong.hits, wrong.misses) == (0, 4)
    np.testing.assert_array_equal(out, DocumentsAsQueries(dimensions=32, query_instruction=TASK).embed_documents(TEXTS))
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert old_fp in warning and wrong.fingerprint in warning and "another vector space" in warning
    # the old entries stay; the right embedder opened again finds its space and its entries
    assert rows(path) == 8
    again = CachedEmbedder(FakeEmbedder(dimensions=32, query_instruction=TASK), path)
    np.testing.assert_array_equal(again.embed_documents(TEXTS), FakeEmbedder(dimensions=32, query_instruction=TASK).embed_documents(TEXTS))
    assert again.fingerprint == old_fp and (again.hits, again.misses) == (4, 0)
    assert set(again.stats()["spaces"]) == {old_fp, wrong.fingerprint}


def test_same_space_reopened_uses_its_entries_without_a_warning(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.sqlite"
    CachedEmbedder(FakeEmbedder(dimensions=32), path).embed_documents(TEXTS)
    with caplog.at_level(logging.WARNING, logger="qwen_embed_adapters.cache"):
        again = CachedEmbedder(FakeEmbedder(dimensions=32, batch_size=2), path)
        again.embed_documents(TEXTS)
    assert again.hits == 4 and not caplog.records


@pytest.mark.parametrize(
    "bad, index",
    [(["ok", None, "fine"], 1), (["ok", "fine", 3], 2), (["", "x"], 0)],
)
def test_bad_input_names_the_index_and_writes_nothing(tmp_path: Path, bad: list[object], index: int) -> None:
    # bad input: None / a non-str / an empty string among good texts
    path = tmp_path / "c.sqlite"
    inner = FakeEmbedder(dimensions=16)
    cached = CachedEmbedder(inner, path)
    with pytest.raises(InvalidInputError, match=rf"texts\[{index}\]") as info:
        cached.embed_documents(bad)  # type: ignore[arg-type]
    assert info.value.index == index
    assert inner.calls == [] and not path.exists()  # nothing embedded, no file, no entry
    with pytest.raises(InvalidInputError, match=rf"queries\[{index}\]"):
        cached.embed_queries(bad)  # type: ignore[arg-type]
    assert (cached.hits, cached.misses) == (0, 0)


def test_empty_list_gives_an_empty_matrix(tmp_path: Path) -> None:
    cached = CachedEmbedder(FakeEmbedder(dimensions=16), tmp_path / "c.sqlite")
    assert cached.embed_documents([]).shape == (0, 16)


def test_async_twins_share_the_entries(tmp_path: Path) -> None:
    inner = FakeEmbedder(dimensions=32)
    cached = CachedEmbedder(FakeEmbedder(dimensions=32), tmp_path / "c.sqlite")

    async def run() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = await cached.aembed_documents(TEXTS)
        b = await cached.aembed_documents(TEXTS)
        q = await cached.aembed_query("capital")
        return a, b, q

    a, b, q = asyncio.run(run())
    np.testing.assert_array_equal(a, inner.embed_documents(TEXTS))
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(q, inner.embed_query("capital"))
    assert (cached.hits, cached.misses) == (4, 5)
    np.testing.assert_array_equal(cached.embed_documents(TEXTS[:1]), a[:1])  # the sync path sees them too
    assert cached.hits == 5


def test_config_round_trip_and_pickling(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cached = CachedEmbedder(FakeEmbedder(dimensions=32, query_instruction="Find it"), path, tolerance=0.95)
    cached.embed_documents(TEXTS)
    cfg = cached.to_config()
    assert cfg == {
        "engine": "cached",
        "embedder": FakeEmbedder(dimensions=32, query_instruction="Find it").to_config(),
        "path": str(path), "tolerance": 0.95, "timeout": 30.0,
    }
    for copy in (embedder_from_config(cfg), pickle.loads(pickle.dumps(cached))):
        assert isinstance(copy, CachedEmbedder) and isinstance(copy.inner, FakeEmbedder)
        assert copy.to_config() == cfg
        np.testing.assert_array_equal(copy.embed_documents(TEXTS), cached.embed_documents(TEXTS))
        assert (copy.hits, copy.misses) == (4, 0)  # counters are per object: the copy starts at zero
    assert repr(cached).startswith("CachedEmbedder(FakeEmbedder(") and str(path) in repr(cached)


def test_bad_settings_are_configuration_errors(tmp_path: Path) -> None:
    # bad settings: a tolerance above 1, a non-embedder, a cache inside a cache, an unknown key
    with pytest.raises(ConfigurationError, match="tolerance must be at most 1.0"):
        CachedEmbedder(FakeEmbedder(), tmp_path / "c.sqlite", tolerance=1.5)
    with pytest.raises(ConfigurationError, match="embedder must be an Embedder, got str"):
        CachedEmbedder("fake", tmp_path / "c.sqlite")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="already a CachedEmbedder"):
        CachedEmbedder(CachedEmbedder(FakeEmbedder(), tmp_path / "c.sqlite"), tmp_path / "d.sqlite")
    cfg = CachedEmbedder(FakeEmbedder(), tmp_path / "c.sqlite").to_config()
    with pytest.raises(ConfigurationError, match=r"unknown CachedEmbedder settings: \['size'\]"):
        embedder_from_config({**cfg, "size": 3})
    with pytest.raises(ConfigurationError, match="needs the inner embedder's config under 'embedder'"):
        embedder_from_config({"engine": "cached", "path": "x.sqlite"})


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.sqlite"
    CachedEmbedder(FakeEmbedder(dimensions=16), path).embed_documents(["x"])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_ingest_report_gives_the_cache_hit_rate(tmp_path: Path) -> None:
    from qwen_embed_adapters.adapters.faiss import FaissStore
    from qwen_embed_adapters.ingest import ingest

    cached = CachedEmbedder(FakeEmbedder(dimensions=32), tmp_path / "c.sqlite")
    records = [f"record {i} of the corpus" for i in range(10)]
    cold = ingest(FaissStore(cached), records[:6], progress=False)
    assert cold.cache_hit_rate == 0.0 and cold.written == 6
    # a new store (a rebuilt index): the 6 texts seen before are hits, 4 are new
    warm = ingest(FaissStore(cached), records, progress=False)
    assert warm.written == 10 and warm.cache_hit_rate == pytest.approx(0.6)
    assert "cache hits 60%" in str(warm) and warm.as_dict()["cache_hit_rate"] == pytest.approx(0.6)
    plain = ingest(FaissStore(FakeEmbedder(dimensions=32)), records, progress=False)
    assert plain.cache_hit_rate is None and "cache" not in str(plain)
