"""QwenEmbedding (LlamaIndex) over FakeEmbedder: query/text split, batching, Settings, pickling, serialisation."""

from __future__ import annotations

import asyncio
import json
import pickle

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from qwen_embed_adapters.integrations.llamaindex import QwenEmbedding
from qwen_embed_adapters.models import format_query
from qwen_embed_adapters.remote import RemoteEmbedder
from qwen_embed_adapters.testing import FakeEmbedder

TASK = "Given a question, retrieve passages that answer it"


def test_query_wrapped_texts_plain() -> None:
    fake = FakeEmbedder(dimensions=16, query_instruction=TASK)
    emb = QwenEmbedding(fake)
    q = emb.get_query_embedding("capital of China")
    t = emb.get_text_embedding("Beijing is the capital of China")
    assert fake.calls == [[format_query("capital of China", TASK)], ["Beijing is the capital of China"]]
    assert len(q) == len(t) == 16 and all(type(x) is float for x in q + t)
    np.testing.assert_allclose(t, fake.embed_documents(["Beijing is the capital of China"])[0], atol=1e-7)
    assert emb.model_name == "fake-embedding"


def test_embed_batch_size_is_honoured() -> None:
    fake = FakeEmbedder(dimensions=8)
    emb = QwenEmbedding(fake, embed_batch_size=2)
    out = emb.get_text_embedding_batch([f"text {i}" for i in range(5)])
    assert [len(c) for c in fake.calls] == [2, 2, 1]
    assert [c for batch in fake.calls for c in batch] == [f"text {i}" for i in range(5)]
    assert len(out) == 5


async def test_async_versions_match_sync() -> None:
    fake = FakeEmbedder(dimensions=8, query_instruction=TASK)
    emb = QwenEmbedding(fake, embed_batch_size=3)
    assert await emb.aget_query_embedding("q") == emb.get_query_embedding("q")
    assert await emb.aget_text_embedding("t") == emb.get_text_embedding("t")
    texts = [f"t{i}" for i in range(7)]
    assert await emb.aget_text_embedding_batch(texts) == emb.get_text_embedding_batch(texts)
    assert format_query("q", TASK) in [t for b in fake.calls for t in b]


def test_settings_embed_model() -> None:
    from llama_index.core import Settings

    emb = QwenEmbedding(FakeEmbedder(dimensions=8))
    old = Settings._embed_model
    try:
        Settings.embed_model = emb
        assert Settings.embed_model is emb  # not swapped for a wrapper or the OpenAI default
    finally:
        Settings._embed_model = old


def test_pickle_and_serialise_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWEN_EMBED_API_KEY", "sk-very-secret")
    emb = QwenEmbedding(RemoteEmbedder("http://127.0.0.1:9/v1", dimensions=256), embed_batch_size=7)
    blob = pickle.dumps(emb)
    assert b"sk-very-secret" not in blob
    back = pickle.loads(blob)
    assert isinstance(back.embedder, RemoteEmbedder) and back.embedder is not emb.embedder
    assert (back.embed_batch_size, back.dimension, back.embedder._api_key) == (7, 256, "sk-very-secret")

    as_json = emb.to_json()
    assert "sk-very-secret" not in as_json
    data = json.loads(as_json)
    assert data["class_name"] == "QwenEmbedding"
    assert data["embedder_config"]["api_key_env"] == "QWEN_EMBED_API_KEY"
    again = QwenEmbedding.from_dict(data)
    assert again.embedder.to_config() == emb.embedder.to_config()
    assert "sk-very-secret" not in repr(again)


def test_pickled_fake_embeds_the_same() -> None:
    emb = QwenEmbedding(FakeEmbedder(dimensions=8))
    back = pickle.loads(pickle.dumps(emb))
    assert back.get_query_embedding("x") == emb.get_query_embedding("x")


def test_store_retriever_passes_the_mode_through() -> None:
    """QwenStoreRetriever (issue 32): a LlamaIndex retriever over our store, asking for keyword or hybrid."""
    pytest.importorskip("faiss")
    pytest.importorskip("bm25s")
    from qwen_embed_adapters.adapters.faiss import FaissStore
    from qwen_embed_adapters.errors import ConfigurationError
    from qwen_embed_adapters.integrations.llamaindex import QwenStoreRetriever

    texts = ["the server answered ERR_QUOTA_EXCEEDED", "向量数据库支持混合检索", "Paris is the capital of France"]
    store = FaissStore(FakeEmbedder(dimensions=32))
    store.add_texts(texts, ids=["r0", "r1", "r2"], metadatas=[{"n": 0}, {"n": 1}, {"n": 2}])
    nodes = QwenStoreRetriever(store, similarity_top_k=2, mode="keyword").retrieve("ERR_QUOTA_EXCEEDED")
    assert [n.node.node_id for n in nodes] == ["r0"] and nodes[0].node.get_content() == texts[0]
    assert nodes[0].node.metadata["n"] == 0 and nodes[0].node.metadata["keyword_score"] == nodes[0].score
    hybrid = asyncio.run(QwenStoreRetriever(store, similarity_top_k=3, mode="hybrid").aretrieve("混合检索"))
    assert hybrid[0].node.node_id == "r1" and len(hybrid) == 3
    # bad input tried: an unknown mode reaches the store, which names it
    with pytest.raises(ConfigurationError, match="mode must be one of"):
        QwenStoreRetriever(store, mode="sparse").retrieve("x")
