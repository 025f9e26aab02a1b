"""retrieval.py: the keyword tokenizer, reciprocal rank fusion, the client-side BM25 index, and the
``search(mode=...)`` dispatch of the VectorStore base (issue 32)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import Hit, VectorStore
from qwen_embed_adapters.errors import ConfigurationError, InvalidInputError
from qwen_embed_adapters.retrieval import DEFAULT_FUSION, Fusion, KeywordIndex, tokenize
from qwen_embed_adapters.testing import FakeEmbedder

pytest.importorskip("bm25s")
pytest.importorskip("jieba")


# ---------------------------------------------------------------------------------------------- tokenize
def test_identifiers_are_kept_whole_and_split() -> None:
    assert tokenize("os.path.joinPath raises ERR_NO_FILE (E501)") == [
        "os.path.joinpath", "os", "path", "joinpath", "join", "path", "raises",
        "err_no_file", "err", "no", "file", "e501",
    ]
    assert tokenize("HTTPServer --dry-run utf8 v2.0") == [
        "httpserver", "http", "server", "dry-run", "dry", "run", "utf8", "v2.0", "v2", "0",
    ]


def test_stop_words_are_dropped_but_code_words_stay() -> None:
    assert tokenize("The value of x is not None") == ["value", "x", "is", "not", "none"]
    assert tokenize("...,;!") == []


def test_chinese_is_cut_into_words_not_sentences() -> None:
    assert tokenize("向量数据库的混合检索") == ["向量", "数据库", "混合", "检索"]
    # mixed scripts: the identifier and the Chinese words both come out
    assert tokenize("用faiss做向量检索") == ["用", "faiss", "做", "向量", "检索"]


def test_tokenize_refuses_non_text() -> None:
    # bad input tried: bytes instead of str
    with pytest.raises(InvalidInputError, match="tokenize needs a str, got bytes"):
        tokenize(b"abc")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- Fusion
def test_fusion_is_weighted_reciprocal_rank() -> None:
    got = Fusion(dense_weight=1.0, keyword_weight=1.0, k=60).fuse(["a", "b"], ["b", "c"], 3)
    assert [d for d, _ in got] == ["b", "a", "c"]
    assert got[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert got[1][1] == pytest.approx(1 / 61) and got[2][1] == pytest.approx(1 / 62)
    # a heavier keyword side puts its first hit on top
    assert Fusion(dense_weight=0.2, keyword_weight=1.0, k=0).fuse(["a", "b"], ["c"], 1)[0][0] == "c"


def test_fusion_ties_keep_the_dense_order_and_top_k_cuts() -> None:
    # "a" (dense 1) and "x" (keyword 1) tie with equal weights; the dense one comes first
    got = Fusion(dense_weight=1.0, keyword_weight=1.0, k=10).fuse(["a", "b"], ["x", "y"], 3)
    assert [d for d, _ in got] == ["a", "x", "b"]


def test_fusion_settings_are_checked() -> None:
    # bad input tried: negative weight, both weights 0, negative k, zero depth, a bool for k
    with pytest.raises(ConfigurationError, match="dense_weight must be at least 0"):
        Fusion(dense_weight=-1)
    with pytest.raises(ConfigurationError, match="needs dense_weight or keyword_weight above 0"):
        Fusion(dense_weight=0, keyword_weight=0)
    with pytest.raises(ConfigurationError, match="k must be at least 0"):
        Fusion(k=-1)
    with pytest.raises(ConfigurationError, match="depth must be at least 1"):
        Fusion(depth=0)
    with pytest.raises(ConfigurationError, match="k must be an integer"):
        Fusion(k=True)
    assert Fusion.from_config(DEFAULT_FUSION.to_config()) == DEFAULT_FUSION
    assert Fusion(depth=10).side_depth(30) == 30 and Fusion(depth=10).side_depth(3) == 10


# ---------------------------------------------------------------------------------------------- KeywordIndex
def test_keyword_index_ranks_updates_deletes_and_filters() -> None:
    index = KeywordIndex()
    index.add(["a", "b", "c"], ["def read_config(path): raise ConfigError",
                                "def write_file(path, data)", "向量数据库的混合检索"])
    assert [d for d, _ in index.search("ConfigError", 5)] == ["a"]
    assert [d for d, _ in index.search("混合检索", 5)] == ["c"]
    assert index.search("nothing matches this", 5) == []
    assert [d for d, _ in index.search("path", 5, allowed=lambda d: d != "a")] == ["b"]
    index.add(["a"], ["def replaced(): pass"])  # re-adding an id replaces its text
    assert index.search("ConfigError", 5) == [] and len(index) == 3
    index.delete(["b", "missing"])
    assert "b" not in index and index.search("write_file", 5) == []


def test_keyword_index_tokenises_each_text_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import qwen_embed_adapters.retrieval as retrieval

    seen: list[str] = []
    real = retrieval.tokenize

    def counting(text: str) -> list[str]:
        seen.append(text)
        return real(text)

    monkeypatch.setattr(retrieval, "tokenize", counting)
    index = KeywordIndex()
    index.add(["a", "b"], ["alpha beta", "gamma delta"])
    index.search("alpha", 2)
    index.add(["c"], ["epsilon"])
    index.search("gamma", 2)
    index.delete(["a"])
    index.search("beta", 2)
    # each stored text once, each query once: a write or delete never re-tokenises the corpus
    assert seen == ["alpha beta", "gamma delta", "alpha", "epsilon", "gamma", "beta"]


def test_keyword_index_persists(tmp_path: Path) -> None:
    index = KeywordIndex(k1=1.2, b=0.5)
    index.add(["a", "b"], ["json.decoder.JSONDecoder raw_decode", "检索增强生成"])
    assert index.changed
    path = tmp_path / "keywords.jsonl"
    index.save(path)
    assert not index.changed
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["format"] == 1 and [r["add"] for r in rows[1:]] == ["a", "b"]
    assert rows[2]["tokens"] == ["检索", "增强", "生成"]
    again = KeywordIndex.load(path)
    assert (again.k1, again.b, len(again), again.changed) == (1.2, 0.5, 2, False)
    assert again.search("raw_decode", 3) == index.search("raw_decode", 3)
    assert [d for d, _ in again.search("检索", 3)] == ["b"]


def test_keyword_index_journal_appends_each_change(tmp_path: Path) -> None:
    path = tmp_path / "keywords.jsonl"
    KeywordIndex().save(path)
    index = KeywordIndex.load(path, journal=True)
    index.add(["a", "b"], ["alpha beta", "gamma"])
    index.delete(["a", "missing"])
    index.add(["c"], ["alpha again"])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines[1:]] == [
        {"add": "a", "tokens": ["alpha", "beta"]}, {"add": "b", "tokens": ["gamma"]},
        {"delete": ["a"]}, {"add": "c", "tokens": ["alpha", "again"]},
    ]
    again = KeywordIndex.load(path)
    assert sorted(again.ids()) == ["b", "c"] and [d for d, _ in again.search("alpha", 3)] == ["c"]


def test_keyword_index_load_refuses_other_files(tmp_path: Path) -> None:
    # bad input tried: a missing file and a JSON file of another shape
    with pytest.raises(ConfigurationError, match="cannot read the keyword index"):
        KeywordIndex.load(tmp_path / "none.json")
    (tmp_path / "other.json").write_text('{"format": 99}\n')
    with pytest.raises(ConfigurationError, match="is not a keyword index of format 1"):
        KeywordIndex.load(tmp_path / "other.json")


# ---------------------------------------------------------------------------------------------- base dispatch
class _MemoryStore(VectorStore):
    """The smallest store with a client-side keyword side: exact vectors in a dict plus a KeywordIndex."""

    keyword_support: ClassVar[str] = "client"
    keyword_note: ClassVar[str] = "test store"

    def __init__(self, embedder: FakeEmbedder, support: str = "client") -> None:
        super().__init__(embedder)
        self.rows: dict[str, tuple[np.ndarray, str]] = {}
        self.keywords = KeywordIndex()
        self.keyword_support = support  # type: ignore[misc]

    @property
    def name(self) -> str:
        return "memory"

    def ensure_dimension(self) -> int:
        return self.embedder.dimension

    def _write(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        for i, v, t in zip(ids, vectors, texts, strict=True):
            self.rows[i] = (v, t)
        self.keywords.add(ids, texts)

    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        scored = sorted(((float(v @ vector), i, t) for i, (v, t) in self.rows.items()), key=lambda x: (-x[0], x[1]))
        return [Hit(i, s, t) for s, i, t in scored[:top_k]]

    def _search_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        return [Hit(i, s, self.rows[i][1], keyword_score=s) for i, s in self.keywords.search(query, top_k)]

    def count(self) -> int:
        return len(self.rows)

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.rows.pop(i, None)
        self.keywords.delete(ids)


TEXTS = ["raise ConfigurationError in load_settings", "the capital of France is Paris",
         "Beijing is the capital of China", "parse_store_spec reads a URI"]


def test_search_modes_dispatch_and_keep_each_score() -> None:
    store = _MemoryStore(FakeEmbedder(dimensions=16))
    ids = store.add_texts(TEXTS)
    kw = store.search("ConfigurationError", top_k=2, mode="keyword")
    assert [h.id for h in kw] == [ids[0]] and kw[0].keyword_score == kw[0].score > 0 and kw[0].vector_score is None
    dense = store.search("capital of China", top_k=4)
    hybrid = store.search("capital of China", top_k=4, mode="hybrid", fusion=Fusion(keyword_weight=1.0, k=60))
    assert {h.id for h in hybrid} == {h.id for h in dense}
    top = hybrid[0]
    assert top.vector_score is not None and top.keyword_score is not None
    assert top.score == pytest.approx(sum(1 / (60 + r) for r in (
        [h.id for h in dense].index(top.id) + 1,
        [h.id for h in store.search("capital of China", top_k=4, mode="keyword")].index(top.id) + 1,
    )))
    assert asyncio.run(store.asearch("capital of China", top_k=4, mode="hybrid",
                                     fusion=Fusion(keyword_weight=1.0, k=60))) == hybrid


def test_search_refuses_bad_modes_and_keywordless_stores() -> None:
    store = _MemoryStore(FakeEmbedder(dimensions=16), support="none")
    store.add_texts(TEXTS)
    # bad input tried: an unknown mode, a fusion that is not a Fusion, keyword search on a "none" store
    with pytest.raises(ConfigurationError, match=r"mode must be one of \('dense', 'keyword', 'hybrid'\), got 'sparse'"):
        store.search("x", mode="sparse")
    with pytest.raises(ConfigurationError, match="fusion must be a retrieval.Fusion or None, got dict"):
        store.search("x", mode="hybrid", fusion={"k": 1})  # type: ignore[arg-type]
    for mode in ("keyword", "hybrid"):
        with pytest.raises(ConfigurationError, match="_MemoryStore 'memory' has no keyword search, so mode 'keyword' "
                                                     "and 'hybrid' are refused: test store"):
            store.search("capital", mode=mode)
    assert len(store.search("capital", top_k=2)) == 2  # dense still works


# ---------------------------------------------------------------------------------------------- the docs' table
def test_docs_table_says_what_each_store_does() -> None:
    """docs/retrieval.md's per-store table matches every registered store's ``keyword_support`` (a store
    whose SDK is not installed here is skipped)."""
    import re

    from qwen_embed_adapters.adapters.spec import STORES

    page = (Path(__file__).resolve().parents[2] / "docs" / "retrieval.md").read_text(encoding="utf-8")
    table = page.split("## Per store", 1)[1].split("\n\n", 2)[1]
    said = {m.group(1): m.group(2) for m in re.finditer(r"^\| [^|]*\(`(\w+)`\) \| ([^|]+?) \|", table, re.M)}
    words = {"client": "client-side", "native": "native", "none": "none"}
    checked = 0
    for kind, entry in STORES.items():
        if entry.alias_of:
            continue
        try:
            cls = entry.store_class()
        except ImportError:
            continue
        assert kind in said, f"docs/retrieval.md has no row for {kind}"
        assert said[kind].startswith(words[cls.keyword_support]), (kind, said[kind], cls.keyword_support)
        assert cls.keyword_note, kind
        checked += 1
    assert checked >= 4
