"""QwenEmbeddings (LangChain) over FakeEmbedder: langchain-tests' standard unit suite plus our own checks."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

pytest.importorskip("langchain_core")
from langchain_tests.unit_tests import EmbeddingsUnitTests

from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.integrations.langchain import QwenEmbeddings
from qwen_embed_adapters.models import format_query
from qwen_embed_adapters.testing import FakeEmbedder

TASK = "Given a question, retrieve passages that answer it"


class TestQwenEmbeddingsStandardUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[QwenEmbeddings]:
        return QwenEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"embedder": {"engine": "fake", "dimensions": 16}}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # the key comes from the environment; the object remembers only the variable's name
        return ({"QWEN_EMBED_API_KEY": "sk-from-env"},
                {"base_url": "http://127.0.0.1:9/v1", "model": "tiny-qwen3"},
                {"api_key_env": "QWEN_EMBED_API_KEY", "model": "tiny-qwen3"})


def test_documents_plain_queries_wrapped_as_python_floats() -> None:
    fake = FakeEmbedder(dimensions=16, query_instruction=TASK)
    emb = QwenEmbeddings(fake)
    docs = emb.embed_documents(["Beijing is the capital of China", "cats purr"])
    query = emb.embed_query("capital of China")
    assert fake.calls == [["Beijing is the capital of China", "cats purr"],
                          [format_query("capital of China", TASK)]]
    assert fake.calls[1] == ["Instruct: " + TASK + "\nQuery:capital of China"]
    assert len(docs) == 2 and all(len(v) == 16 for v in docs) and len(query) == 16
    assert all(type(x) is float for v in [*docs, query] for x in v)
    np.testing.assert_allclose(docs, fake.embed_documents(["Beijing is the capital of China", "cats purr"]),
                               atol=1e-7)


def test_empty_instruction_turns_wrapping_off() -> None:
    fake = FakeEmbedder(dimensions=8, query_instruction="")
    QwenEmbeddings(fake).embed_query("plain")
    assert fake.calls == [["plain"]]


async def test_async_twins_match_and_do_not_block_the_loop() -> None:
    class Slow(FakeEmbedder):
        def _embed_batch(self, texts: list[str]) -> np.ndarray:
            time.sleep(0.3)  # a blocking engine call, like a torch forward pass
            return super()._embed_batch(texts)

    emb = QwenEmbeddings(Slow(dimensions=8))
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    t = asyncio.create_task(ticker())
    docs = await emb.aembed_documents(["a b", "c d"])
    q = await emb.aembed_query("a b")
    stop.set()
    await t
    assert ticks >= 20  # the loop kept running during two 0.3 s engine calls
    assert docs == emb.embed_documents(["a b", "c d"]) and q == emb.embed_query("a b")
    assert threading.active_count() >= 1


def test_bad_arguments_name_the_problem() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        QwenEmbeddings(FakeEmbedder(), base_url="http://x/v1")  # an embedder and engine settings at once
    with pytest.raises(ConfigurationError, match="pass an embedder"):
        QwenEmbeddings()  # nothing to build from
    with pytest.raises(ConfigurationError, match="Embedder or its to_config"):
        QwenEmbeddings("http://x/v1")  # type: ignore[arg-type]  # a URL where an embedder belongs


def test_remote_kwargs_build_a_remote_embedder_and_hide_the_key() -> None:
    emb = QwenEmbeddings(base_url="http://127.0.0.1:9/v1", model="Qwen3-Embedding-0.6B", api_key="sk-secret",
                         dimensions=256)
    assert type(emb.embedder).__name__ == "RemoteEmbedder"
    assert emb.dimension == 256
    assert "sk-secret" not in repr(emb)


def test_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import importlib
    import sys

    from qwen_embed_adapters.errors import MissingDependencyError

    real_import = builtins.__import__

    def no_langchain(name: str, *a: Any, **k: Any) -> Any:
        if name.startswith("langchain_core"):
            raise ImportError("No module named 'langchain_core'")
        return real_import(name, *a, **k)

    monkeypatch.delitem(sys.modules, "qwen_embed_adapters.integrations.langchain")
    monkeypatch.setattr(builtins, "__import__", no_langchain)
    with pytest.raises(MissingDependencyError, match=r'pip install "qwen-embed-adapters\[langchain\]"'):
        importlib.import_module("qwen_embed_adapters.integrations.langchain")


def test_integrations_package_imports_nothing_optional() -> None:
    import subprocess
    import sys

    code = ("import sys, qwen_embed_adapters.integrations; "
            "print(sorted(m for m in ('langchain_core', 'llama_index', 'haystack') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- QwenStoreRetriever (issue 32)
from langchain_tests.integration_tests import RetrieversIntegrationTests  # noqa: E402

from qwen_embed_adapters.integrations.langchain import QwenStoreRetriever  # noqa: E402

RETRIEVER_TEXTS = ["the server answered ERR_QUOTA_EXCEEDED", "向量数据库支持混合检索", "Paris is the capital of France",
                   "Beijing is the capital of China", "call load_settings() first", "cats sleep a lot"]


def _faiss_store() -> Any:
    pytest.importorskip("faiss")
    pytest.importorskip("bm25s")
    from qwen_embed_adapters.adapters.faiss import FaissStore

    store = FaissStore(FakeEmbedder(dimensions=32))
    store.add_texts(RETRIEVER_TEXTS, ids=[f"r{i}" for i in range(len(RETRIEVER_TEXTS))],
                    metadatas=[{"n": i} for i in range(len(RETRIEVER_TEXTS))])
    return store


class TestQwenStoreRetrieverStandard(RetrieversIntegrationTests):
    """langchain-tests' retriever suite (invoke/ainvoke return Documents, ``k`` in the constructor and per call)."""

    @property
    def retriever_constructor(self) -> type[QwenStoreRetriever]:
        return QwenStoreRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"store": _faiss_store(), "mode": "hybrid"}

    @property
    def retriever_query_example(self) -> str:
        return "capital"


def test_store_retriever_passes_the_mode_through() -> None:
    store = _faiss_store()
    docs = QwenStoreRetriever(store=store, k=2, mode="keyword").invoke("ERR_QUOTA_EXCEEDED")
    assert [d.id for d in docs] == ["r0"] and docs[0].page_content == RETRIEVER_TEXTS[0]
    assert docs[0].metadata["n"] == 0 and docs[0].metadata["keyword_score"] == docs[0].metadata["score"]
    hybrid = asyncio.run(QwenStoreRetriever(store=store, k=3, mode="hybrid").ainvoke("混合检索"))
    assert hybrid[0].id == "r1" and "keyword_score" in hybrid[0].metadata and len(hybrid) == 3
    assert [d.id for d in QwenStoreRetriever(store=store, k=3, mode="hybrid").invoke("混合检索")] == [d.id for d in hybrid]
    # bad input tried: an unknown mode reaches the store, which names it
    with pytest.raises(ConfigurationError, match="mode must be one of"):
        QwenStoreRetriever(store=store, mode="sparse").invoke("x")
