"""Helpers for running a real LightRAG offline: a character tokenizer, a deterministic stub LLM,
a small corpus, and a recorder of the raw texts an embedder was asked to embed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qwen_embed_adapters.embedder import Embedder

REPO_ROOT = Path(__file__).resolve().parents[2]

# Five documents on unrelated subjects: with word-overlap embeddings (FakeEmbedder, the test
# server) the query below shares words with DOCS["photosynthesis"] only.
DOCS: dict[str, str] = {
    "paris": "Paris is the capital of France. The Eiffel Tower stands on the Champ de Mars.",
    "photosynthesis": "Photosynthesis lets green plants convert sunlight into chemical energy stored as sugar.",
    "rust": "The Rust borrow checker enforces memory safety without a garbage collector.",
    "tides": "Ocean tides rise and fall because of the gravitational pull of the Moon.",
    "espresso": "Espresso is brewed by forcing hot water through finely ground coffee beans.",
}
QUERY = "How do green plants convert sunlight into chemical energy?"
RELEVANT = "photosynthesis"


class CharTokenizer:
    """One token per character: stateless, so thread-safe and deep-copyable as LightRAG requires."""

    def encode(self, content: str) -> list[int]:
        return [ord(c) for c in content]

    def decode(self, tokens: list[int]) -> str:
        return "".join(chr(t) for t in tokens)


async def stub_llm(
    prompt: str,
    system_prompt: str | None = None,
    history_messages: list[dict[str, Any]] | None = None,
    keyword_extraction: bool = False,
    **kwargs: Any,
) -> str:
    """A deterministic LLM: extracts no entities, and answers queries with a fixed sentence."""
    if keyword_extraction:
        return '{"high_level_keywords": [], "low_level_keywords": []}'
    if "entit" in (system_prompt or "").lower() or "entit" in prompt.lower()[:2000]:
        return "<|COMPLETE|>"
    return "stub answer"


def record_raw_texts(embedder: Embedder) -> list[list[str]]:
    """Record every raw batch ``embedder`` sends to its backend (after query wrapping)."""
    calls: list[list[str]] = []
    inner: Callable[[list[str]], np.ndarray] = embedder._embed_batch

    def spy(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return inner(texts)

    embedder._embed_batch = spy  # type: ignore[method-assign]
    inner_async = embedder._aembed_batch
    if type(embedder)._aembed_batch is not Embedder._aembed_batch:
        async def aspy(texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return await inner_async(texts)

        embedder._aembed_batch = aspy  # type: ignore[method-assign]
    return calls


async def make_rag(
    working_dir: str | os.PathLike[str],
    embedding_func: Any,
    *,
    vector_storage: str = "NanoVectorDBStorage",
    threshold: float = -1.0,
) -> Any:
    """A real, initialised LightRAG with the stub LLM and the character tokenizer."""
    from lightrag import LightRAG
    from lightrag.utils import Tokenizer

    rag = LightRAG(
        working_dir=os.fspath(working_dir),
        llm_model_func=stub_llm,
        embedding_func=embedding_func,
        tokenizer=Tokenizer("char", CharTokenizer()),
        vector_storage=vector_storage,
        chunk_token_size=400,
        chunk_overlap_token_size=20,
        vector_db_storage_cls_kwargs={"cosine_better_than_threshold": threshold},
        enable_llm_cache=False,
    )
    await rag.initialize_storages()
    return rag


async def close_rag(rag: Any) -> None:
    """Finalise a LightRAG and reset LightRAG's process-wide shared storage state, which is keyed by
    workspace, not by working dir: without the reset the next instance in this process would see
    this one's documents as already inserted."""
    from lightrag.kg.shared_storage import finalize_share_data

    try:
        await rag.finalize_storages()
    finally:
        finalize_share_data()


async def insert_corpus(rag: Any) -> None:
    await rag.ainsert(list(DOCS.values()), ids=[f"doc-{k}" for k in DOCS])


async def naive_context(rag: Any, query: str = QUERY, top_k: int = 1) -> str:
    """The retrieved context of a ``naive`` query (no LLM answer)."""
    from lightrag import QueryParam

    param = QueryParam(mode="naive", only_need_context=True, chunk_top_k=top_k, top_k=top_k, enable_rerank=False)
    result = await rag.aquery(query, param=param)
    return result if isinstance(result, str) else str(result)


def nano_vectors(path: str | os.PathLike[str]) -> dict[str, tuple[str, np.ndarray]]:
    """{id: (content, vector)} from a NanoVectorDB file LightRAG wrote."""
    import base64

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    matrix = np.frombuffer(base64.b64decode(data["matrix"]), dtype=np.float32).reshape(-1, data["embedding_dim"])
    return {row["__id__"]: (row.get("content", ""), matrix[i]) for i, row in enumerate(data["data"])}


def run_lightrag_server_config(cwd: str | os.PathLike[str], code: str, extra_env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh interpreter in ``cwd`` (where lightrag-server reads ``.env``), with no
    EMBEDDING_* / MILVUS_* variables inherited, ``sys.argv`` as for ``lightrag-server``; return the
    JSON the code prints on its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBEDDING_", "MILVUS_", "MAX_EMBED"))}
    env.update(extra_env or {})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    prelude = "import sys, json\nsys.argv = ['lightrag-server']\n"
    proc = subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=os.fspath(cwd), env=env, capture_output=True, text=True,
        timeout=180,
    )
    if proc.returncode != 0:
        raise AssertionError(f"LightRAG config subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
