"""Milvus adapter pieces that need no server: row building, filters, URI handling, import failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qwen_embed_adapters._urls import redact_url
from qwen_embed_adapters.adapters.milvus import (
    MilvusStore,
    filter_expression,
    milvus_rows,
)
from qwen_embed_adapters.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
)
from qwen_embed_adapters.testing import FakeEmbedder

ROOT = Path(__file__).resolve().parents[2]


def test_rows_are_float32_and_aligned() -> None:
    vectors = np.arange(6, dtype=np.float64).reshape(2, 3)
    rows = milvus_rows(["a", "b"], vectors, ["ta", "tb"], [{"k": 1}, None], dim=3)
    assert [r["id"] for r in rows] == ["a", "b"]
    assert all(r["vector"].dtype == np.float32 for r in rows)
    np.testing.assert_array_equal(rows[1]["vector"], [3.0, 4.0, 5.0])
    assert rows[0]["text"] == "ta" and rows[0]["metadata"] == {"k": 1} and rows[1]["metadata"] == {}


def test_rows_with_custom_field_names_and_no_text() -> None:
    rows = milvus_rows(["a"], [[1.0, 0.0]], id_field="pk", vector_field="emb")
    assert set(rows[0]) == {"pk", "emb"}


def test_rows_refuse_wrong_width() -> None:
    """Bad input: a 2-wide vector for a 3-d collection."""
    with pytest.raises(DimensionMismatchError) as err:
        milvus_rows(["a"], [[1.0, 0.0]], dim=3)
    assert (err.value.expected, err.value.actual) == (3, 2)


def test_rows_refuse_nan_naming_the_row() -> None:
    """Bad input: row 1 holds a NaN."""
    with pytest.raises(InvalidInputError, match="row 1"):
        milvus_rows(["a", "b"], [[1.0, 0.0], [np.nan, 1.0]])


def test_rows_refuse_count_mismatch() -> None:
    """Bad input: two ids, one vector."""
    with pytest.raises(InvalidInputError, match="2 ids but 1 vectors"):
        milvus_rows(["a", "b"], [[1.0, 0.0]])


def test_rows_refuse_bad_id_and_text() -> None:
    """Bad inputs: an empty id, then a None text (named by its id)."""
    with pytest.raises(InvalidInputError, match=r"ids\[1\]"):
        milvus_rows(["a", ""], [[1.0], [2.0]])
    with pytest.raises(InvalidInputError, match="'b'"):
        milvus_rows(["a", "b"], [[1.0], [2.0]], ["ok", None])  # type: ignore[list-item]


def test_filter_expression() -> None:
    assert filter_expression(None) == ""
    assert filter_expression('metadata["a"] > 1') == 'metadata["a"] > 1'
    assert filter_expression({"lang": "zh"}) == 'metadata["lang"] == "zh"'
    assert filter_expression({"lang": "中文", "n": [1, 2]}) == (
        'metadata["lang"] == "中文" and (metadata["n"] == 1 or metadata["n"] == 2)'
    )
    assert filter_expression({"ok": True}, metadata_field="meta") == 'meta["ok"] == true'
    assert filter_expression({"q": 'say "hi"'}) == 'metadata["q"] == "say \\"hi\\""'


def test_filter_expression_refuses_bad_filters() -> None:
    """Bad inputs: a non-JSON value, an empty list, and a filter of the wrong type."""
    with pytest.raises(InvalidInputError, match="'x'"):
        filter_expression({"x": object()})
    with pytest.raises(InvalidInputError, match="empty list"):
        filter_expression({"x": []})
    with pytest.raises(InvalidInputError, match="int"):
        filter_expression(5)


def test_redact_uri_hides_credentials() -> None:
    assert redact_url("https://user:s3cret@in01.zillizcloud.com:19538/db") == "https://***@in01.zillizcloud.com:19538/db"
    assert redact_url("http://localhost:19530") == "http://localhost:19530"
    assert "s3cret" not in redact_url("http://root:s3cret@h")


def test_uri_that_is_neither_db_nor_http_is_refused(tmp_path: Path) -> None:
    """Bad inputs: an ftp:// URI carrying a password (which must not leak into the message), a .sqlite path."""
    with pytest.raises(ConfigurationError) as err:
        MilvusStore("ftp://user:pw-secret@host/x", "c", FakeEmbedder())
    assert "pw-secret" not in str(err.value) and ".db" in str(err.value)
    with pytest.raises(ConfigurationError):
        MilvusStore(str(tmp_path / "x.sqlite"), "c", FakeEmbedder())


def test_bad_arguments() -> None:
    """Bad inputs: an unknown metric, an empty collection name, a VARCHAR limit above 65535, a non-client."""
    with pytest.raises(ConfigurationError, match="HAMMING"):
        MilvusStore("http://127.0.0.1:1", "c", FakeEmbedder(), metric="HAMMING")
    with pytest.raises(ConfigurationError, match="collection"):
        MilvusStore("http://127.0.0.1:1", "", FakeEmbedder())
    with pytest.raises(ConfigurationError, match="text_max_length"):
        MilvusStore("http://127.0.0.1:1", "c", FakeEmbedder(), text_max_length=70000)
    with pytest.raises(ConfigurationError, match="dict"):
        MilvusStore({"uri": "x.db"}, "c", FakeEmbedder())
    with pytest.raises(TypeError, match="Embedder"):
        MilvusStore("x.db", "c", object())  # type: ignore[arg-type]


def test_async_client_in_the_wrong_place_is_refused() -> None:
    """Bad input: an AsyncMilvusClient given as uri_or_client (it must go in async_client=)."""
    pymilvus = pytest.importorskip("pymilvus")
    aclient = pymilvus.AsyncMilvusClient("http://127.0.0.1:1")  # does not connect until first use
    with pytest.raises(ConfigurationError, match="async_client"):
        MilvusStore(aclient, "c", FakeEmbedder())


def test_missing_pymilvus_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(MissingDependencyError) as err:
        MilvusStore("x.db", "c", FakeEmbedder())
    assert 'pip install "qwen-embed-adapters[milvus]"' in str(err.value)


def test_milvus_uri_import_trap_is_explained(tmp_path: Path) -> None:
    """Bad environment: MILVUS_URI holds a .db path (with a secret-looking name), which makes pymilvus
    fail at import. The adapter module itself imports fine; opening a store says which variable to unset,
    without repeating its value."""
    env = {**os.environ, "MILVUS_URI": str(tmp_path / "secret-token-xyz.db"), "PYTHONPATH": str(ROOT)}
    code = (
        "from qwen_embed_adapters.adapters.milvus import MilvusStore\n"
        "from qwen_embed_adapters.testing import FakeEmbedder\n"
        "from qwen_embed_adapters.errors import ConfigurationError\n"
        "try:\n"
        "    MilvusStore('x.db', 'c', FakeEmbedder())\n"
        "except ConfigurationError as e:\n"
        "    print('CONFIG:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert "CONFIG:" in out.stdout, out.stderr[-2000:]
    assert "MILVUS_URI" in out.stdout
    assert "secret-token-xyz" not in out.stdout


@pytest.mark.parametrize(
    ("version", "has_bm25"),
    [("v2.3.5", False), ("v2.3.5-lite", False), ("v2.4.13", False), ("2.4.0-rc1", False), ("v2.5.0", True), ("v2.6.3", True),
     ("v3.0.0", True), ("milvus_lite-3.2.2", True), ("unknown", True)],
)
def test_bm25_is_known_from_milvus_2_5_and_on_lite(version: str, has_bm25: bool) -> None:
    from qwen_embed_adapters.adapters.milvus import bm25_supported

    assert bm25_supported(version) is has_bm25


# ---------------------------------------------------------------------------- compact vectors (issue 32)
@pytest.mark.parametrize(
    ("version", "index_type", "refine"),
    [("milvus_lite-3.2.2", "HNSW_SQ", False), ("v2.3.5", "IVF_SQ8", False), ("v2.3.5-lite", "IVF_SQ8", False),
     ("v2.4.13", "IVF_SQ8", False), ("v2.5.4", "HNSW_SQ", True), ("v2.6.3", "HNSW_SQ", True), ("unknown", "HNSW_SQ", True)],
)
def test_int8_index_follows_the_server_version(version: str, index_type: str, refine: bool) -> None:
    from qwen_embed_adapters.adapters.milvus import int8_index

    got_type, params = int8_index(version)
    assert got_type == index_type
    assert params.get("refine", False) is refine
    if refine:  # Milvus 2.5+: SQ8 codes re-ranked by the engine's float copy
        assert (params["sq_type"], params["refine_type"]) == ("SQ8", "FP32")
    if index_type == "IVF_SQ8":
        assert params == {"nlist": 128}


def test_binary_and_a_float_index_with_int8_are_refused_before_connecting() -> None:
    """Bad inputs: precision='binary' (Milvus Lite has no BINARY_VECTOR type) and precision='int8' with an
    index type that keeps float32 vectors. Both fail in the constructor, before any connection (port 1)."""
    with pytest.raises(ConfigurationError) as err:
        MilvusStore("http://127.0.0.1:1", "c", FakeEmbedder(), precision="binary")
    msg = str(err.value)
    assert msg.startswith("MilvusStore 'c' cannot keep precision='binary': ")
    assert "BINARY_VECTOR" in msg and "(it offers 'float32', 'int8')" in msg
    with pytest.raises(ConfigurationError, match=r"precision='int8' builds a scalar-quantised index \(HNSW_SQ or "
                                                 r"IVF_SQ8\); index_type='HNSW' would keep float32 vectors"):
        MilvusStore("http://127.0.0.1:1", "c", FakeEmbedder(), precision="int8", index_type="HNSW")
    with pytest.raises(ConfigurationError, match="cannot keep precision='binary'"):
        MilvusStore.from_config({"store": "milvus", "uri": "x.db", "collection": "c", "precision": "binary"},
                                FakeEmbedder())


def test_docs_compact_table_matches_the_milvus_precisions() -> None:
    """docs/compact.md's per-store table says "yes" for exactly the precisions MilvusStore keeps."""
    row = next(line for line in (ROOT / "docs" / "compact.md").read_text().splitlines() if line.startswith("| Milvus"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    said = {"int8": cells[1], "binary": cells[2]}
    for precision, cell in said.items():
        assert cell.startswith("yes" if precision in MilvusStore.precisions else "refused"), (precision, cell)
