"""Lone UTF-16 surrogates ("\\ud800", what a bad decode or a JSON "\\ud800" escape leaves in a str) are
not text: no UTF-8 encoder, tokenizer, HTTP body or database takes them. Every embedder and every
entry point refuses them with InvalidInputError naming the item, before any request or write (issue
14 item 8). The stores' half runs in the shared contract suite (qwen_embed_adapters.testing.contract)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.adapters.base import check_ids, check_metadata, content_id, prepare_records
from qwen_embed_adapters.errors import InvalidInputError
from qwen_embed_adapters.ingest import ingest
from qwen_embed_adapters.testing import FakeEmbedder
from qwen_embed_adapters.vectors import as_text_list, check_unicode, lone_surrogate

BAD = ["fine", "\ud800 x"]  # texts[1] holds a high surrogate with no low one after it


def test_lone_surrogate_finds_the_position() -> None:
    assert lone_surrogate("plain ascii") is None
    assert lone_surrogate("北京 😀") is None  # a real astral character is one code point, not a pair
    assert lone_surrogate("ab\udc00") == 2
    assert lone_surrogate("\ud83d\ude00") == 0  # a surrogate *pair* in a str is still two lone halves
    assert check_unicode("ok", "x") == "ok"


def test_as_text_list_names_the_index() -> None:
    with pytest.raises(InvalidInputError, match=r"texts\[1\] holds a lone surrogate '\\ud800' at character 0") as err:
        as_text_list(BAD)
    assert err.value.index == 1


def test_ids_metadata_and_content_ids() -> None:
    """Bad input tried: a surrogate in ids[2], in a nested metadata value, in a text hashed for its id."""
    with pytest.raises(InvalidInputError, match=r"ids\[2\] holds a lone surrogate") as err:
        check_ids(["a", "b", "c\udfff"])
    assert err.value.index == 2
    with pytest.raises(InvalidInputError, match=r"metadatas\[3\]\['tags'\]\[1\] \(id 'x'\) holds a lone surrogate") as err:
        check_metadata({"tags": ["ok", "bad\ud800"]}, 3, "x")
    assert (err.value.index, err.value.item_id) == (3, "x")
    with pytest.raises(InvalidInputError, match="text holds a lone surrogate"):
        content_id("\ud800")
    with pytest.raises(InvalidInputError, match=r"metadatas\[0\], key"):
        prepare_records(["t"], ["i"], [{"\udc80": 1}])


@pytest.mark.parametrize("call", ["embed_documents", "embed_queries", "embed_texts", "aembed_documents", "aembed_queries"])
def test_every_embedder_entry_point_refuses_before_embedding(call: str) -> None:
    emb = FakeEmbedder(dimensions=8)
    with pytest.raises(InvalidInputError, match=r"\[1\] holds a lone surrogate") as err:
        result = getattr(emb, call)(BAD)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    assert err.value.index == 1
    assert emb.calls == []


def test_embed_query_refuses_a_surrogate_query() -> None:
    emb = FakeEmbedder(dimensions=8)
    with pytest.raises(InvalidInputError, match=r"queries\[0\] holds a lone surrogate"):
        emb.embed_query("\ud800")
    with pytest.raises(InvalidInputError, match=r"queries\[0\] holds a lone surrogate"):
        asyncio.run(emb.aembed_query("x\udbff"))
    assert emb.calls == []


def test_remote_embedder_refuses_before_any_request() -> None:
    """Before this fix httpx raised a bare UnicodeEncodeError while encoding the JSON body. The URL
    points at a port nothing listens on: a request would fail with a connection error instead."""
    emb = RemoteEmbedder("http://127.0.0.1:9/v1", dimensions=32, max_retries=0)
    try:
        with pytest.raises(InvalidInputError, match=r"texts\[1\] holds a lone surrogate") as err:
            emb.embed_documents(BAD)
        assert err.value.index == 1
        with pytest.raises(InvalidInputError, match=r"queries\[0\] holds a lone surrogate"):
            asyncio.run(emb.aembed_query("\ud800"))
    finally:
        emb.close()


def test_local_embedder_refuses_before_tokenising(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from qwen_embed_adapters.local import LocalEmbedder
    from qwen_embed_adapters.testing import make_tiny_qwen3

    emb = LocalEmbedder(make_tiny_qwen3(tmp_path / "tiny"), device="cpu")
    with pytest.raises(InvalidInputError, match=r"texts\[1\] holds a lone surrogate") as err:
        emb.embed_documents(BAD)
    assert err.value.index == 1
    with pytest.raises(InvalidInputError, match=r"queries\[0\] holds a lone surrogate"):
        emb.embed_query("\ud800")
    assert emb.embed_documents(["fine"]).shape[0] == 1  # still usable


def test_ingest_names_the_record_and_can_skip_it() -> None:
    from qwen_embed_adapters.adapters.faiss import FaissStore

    store = FaissStore(FakeEmbedder(dimensions=8))
    with pytest.raises(InvalidInputError, match=r"record 1 holds a lone surrogate") as err:
        ingest(store, ["ok", "\ud800 bad", "fine"], progress=False)
    assert err.value.index == 1
    assert store.count() == 0
    with pytest.raises(InvalidInputError, match=r"record 0: 'text' holds a lone surrogate"):
        ingest(store, [{"text": "x\udc00", "id": "a"}], progress=False)
    with pytest.raises(InvalidInputError, match=r"record 0 id holds a lone surrogate"):
        ingest(store, [{"text": "fine", "id": "a\ud800"}], progress=False)
    report = ingest(store, ["ok", "\ud800 bad", {"text": "meta", "metadata": {"k": "\udfff"}}, "fine"],
                    progress=False, on_invalid="skip")
    assert (report.written, report.invalid) == (2, 2)
    assert store.count() == 2


def test_chroma_embedding_function_refuses_before_embedding() -> None:
    pytest.importorskip("chromadb")
    from qwen_embed_adapters.adapters.chroma import QwenEmbeddingFunction

    emb = FakeEmbedder(dimensions=8)
    ef = QwenEmbeddingFunction(emb)
    with pytest.raises(InvalidInputError, match=r"documents\[1\] holds a lone surrogate"):
        ef(BAD)
    with pytest.raises(InvalidInputError, match=r"queries\[0\] holds a lone surrogate"):
        ef.embed_query(["\ud800"])
    assert emb.calls == []


def test_lightrag_embedding_func_refuses_before_embedding() -> None:
    pytest.importorskip("lightrag")
    from qwen_embed_adapters.adapters.lightrag import lightrag_embedding_func

    emb = FakeEmbedder(dimensions=8)
    func = lightrag_embedding_func(emb)
    with pytest.raises(InvalidInputError, match=r"texts\[1\] holds a lone surrogate"):
        asyncio.run(func.func(BAD, context="document"))
    with pytest.raises(InvalidInputError, match=r"queries\[0\] holds a lone surrogate"):
        asyncio.run(func.func(["\ud800"], context="query"))
    assert emb.calls == []
