"""LightRAG with Qwen3-Embedding through qwen_embed_adapters, runnable offline.

    python examples/lightrag_quickstart.py                      # no model, no network (FakeEmbedder)
    python examples/lightrag_quickstart.py --model ./Qwen3-Embedding-0.6B   # in-process model folder
    python examples/lightrag_quickstart.py --url http://localhost:30000/v1  # SGLang / vLLM / qwen-embed serve

OFFLINE NOTE: the LLM below is a stub that extracts no entities and answers with a fixed sentence, and
the tokenizer counts characters (LightRAG's default tiktoken tokenizer would download its vocabulary).
So this shows the embedding side only: chunks are embedded as documents, the query with Qwen3's
instruction, and a `naive` query retrieves the matching chunk. Plug in a real `llm_model_func` (e.g.
lightrag.llm.openai.openai_complete) for real answers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from qwen_embed_adapters import Embedder, RemoteEmbedder
from qwen_embed_adapters.adapters.lightrag import (
    ensure_lightrag_dimension,
    lightrag_embedding_func,
    lightrag_env_block,
)
from qwen_embed_adapters.testing import FakeEmbedder

DOCS = [
    "Paris is the capital of France. The Eiffel Tower stands on the Champ de Mars.",
    "Photosynthesis lets green plants convert sunlight into chemical energy stored as sugar.",
    "The Rust borrow checker enforces memory safety without a garbage collector.",
    "Ocean tides rise and fall because of the gravitational pull of the Moon.",
]
QUERY = "How do plants turn sunlight into energy?"


class CharTokenizer:
    """One token per character (offline stand-in for tiktoken)."""

    def encode(self, content: str) -> list[int]:
        return [ord(c) for c in content]

    def decode(self, tokens: list[int]) -> str:
        return "".join(chr(t) for t in tokens)


async def stub_llm(prompt: str, system_prompt: str | None = None, history_messages: Any = None,
                   keyword_extraction: bool = False, **kwargs: Any) -> str:
    """A stub LLM: no entities, no keywords, a fixed answer. Replace it with a real one."""
    if keyword_extraction:
        return '{"high_level_keywords": [], "low_level_keywords": []}'
    return "<|COMPLETE|>"


def build_embedder(args: argparse.Namespace) -> Embedder:
    if args.url:
        return RemoteEmbedder(args.url, args.served_model, dimensions=args.dimensions)
    if args.model:
        from qwen_embed_adapters import LocalEmbedder

        return LocalEmbedder(args.model, dimensions=args.dimensions)  # type: ignore[no-any-return]
    # Not a real model: deterministic vectors from hashed words, so the example runs anywhere.
    return FakeEmbedder("Qwen3-Embedding-fake", dimensions=args.dimensions or 64,
                        query_instruction="Given a web search query, retrieve relevant passages that answer the query")


async def main(args: argparse.Namespace) -> int:
    from lightrag import LightRAG, QueryParam
    from lightrag.kg.shared_storage import finalize_share_data
    from lightrag.utils import Tokenizer

    embedder = build_embedder(args)
    print(f"embedder: {embedder!r}")
    print("LLM: an offline stub (no entity extraction, no real answers); tokenizer: characters")
    working_dir = Path(args.working_dir or tempfile.mkdtemp(prefix="lightrag-qwen-"))

    # Before LightRAG opens an existing dir: a different dimension fails here, clearly.
    ensure_lightrag_dimension(working_dir, embedder)

    rag = LightRAG(
        working_dir=str(working_dir),
        embedding_func=lightrag_embedding_func(embedder),
        llm_model_func=stub_llm,
        tokenizer=Tokenizer("chars", CharTokenizer()),
        chunk_token_size=400,
        chunk_overlap_token_size=20,
        enable_llm_cache=False,
    )
    await rag.initialize_storages()
    try:
        await rag.ainsert(DOCS)
        context = await rag.aquery(
            QUERY, param=QueryParam(mode="naive", only_need_context=True, chunk_top_k=1, enable_rerank=False)
        )
    finally:
        await rag.finalize_storages()
        finalize_share_data()
    print(f"\nquery: {QUERY}\nretrieved context:\n{context}")
    if isinstance(embedder, RemoteEmbedder):
        print("\n.env block for lightrag-server with the same embedding settings:\n")
        print(lightrag_env_block(embedder))
    found = any(d in str(context) for d in DOCS[1:2])
    print("OK: the photosynthesis chunk was retrieved" if found else "note: another chunk ranked first")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an OpenAI-compatible /v1 endpoint serving Qwen3-Embedding")
    parser.add_argument("--served-model", default="Qwen3-Embedding-0.6B", help="the model name the server knows")
    parser.add_argument("--model", help="a local model folder (or hub id) for the in-process engine")
    parser.add_argument("--dimensions", type=int, default=None, help="MRL dimension (e.g. 512)")
    parser.add_argument("--working-dir", help="LightRAG working dir (default: a fresh temporary one)")
    sys.exit(asyncio.run(main(parser.parse_args())))
