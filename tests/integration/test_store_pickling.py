"""Stores pickle by their settings (issue 26): ``pickle.loads(pickle.dumps(store))`` opens the same collection
with the same settings and an equal embedder, in this process or another. A FAISS store with writes not yet
saved refuses, since the other side would open the saved folder and silently miss them."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.adapters.spec import store_from_spec
from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.testing import FakeEmbedder

pytestmark = pytest.mark.integration

TEXTS = ["Beijing is the capital of China", "北京是中国的首都", "def add(a, b): return a + b"]


def _same(store: Any, again: Any) -> None:
    assert type(again) is type(store)
    assert again.to_config() == store.to_config()
    assert again.embedder.to_config() == store.embedder.to_config()
    assert again.count() == store.count() == 3
    assert [h.id for h in again.search("capital of China", top_k=3)] == [
        h.id for h in store.search("capital of China", top_k=3)
    ]


@pytest.mark.parametrize("spec", ["faiss", "chroma", "milvus"])
def test_a_store_round_trips_through_pickle(spec: str, tmp_path: Path) -> None:
    uri = {
        "faiss": f"faiss://{tmp_path}/kb",
        "chroma": f"chroma://{tmp_path}/chroma/kb_pickle",
        "milvus": f"milvus://{tmp_path}/kb.db?collection=kb_pickle",
    }[spec]
    store = store_from_spec(uri, FakeEmbedder(dimensions=32, batch_size=7))
    store.add_texts(TEXTS)
    if isinstance(store, FaissStore):
        store.save()
    again = pickle.loads(pickle.dumps(store))
    try:
        _same(store, again)
    finally:
        again.close()
        store.close()


def test_a_faiss_store_with_unsaved_writes_refuses_to_pickle(tmp_path: Path) -> None:
    """Bad input: pickling a FAISS store whose last writes are only in memory."""
    store = FaissStore(FakeEmbedder(dimensions=16), path=tmp_path / "kb")
    store.add_texts(TEXTS)
    with pytest.raises(ConfigurationError, match="not saved: call save"):
        pickle.dumps(store)
    store.save()
    assert pickle.loads(pickle.dumps(store)).count() == 3
    store.delete([store.search("capital", top_k=1)[0].id])
    with pytest.raises(ConfigurationError, match="not saved"):
        pickle.dumps(store)
