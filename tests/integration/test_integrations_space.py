"""``ensure_space`` (``ensure_dimension``'s successor) in real framework stores: langchain-chroma, langchain-milvus
on Milvus Lite, LlamaIndex's ChromaVectorStore, the plain-chromadb helper, and one of our stores through the
same call. The mismatch is a real one: two random tiny Qwen3 models of the same width (LightRAG #1946's
"another model at the same width"), run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("torch")

from qwen_embed_adapters.adapters.chroma import META_SPACE_CARD, ChromaStore, get_or_create_collection
from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.errors import VectorSpaceMismatchError
from qwen_embed_adapters.integrations.langchain import QwenEmbeddings, ensure_space
from qwen_embed_adapters.local import LocalEmbedder
from qwen_embed_adapters.space import PROBES, SpaceCard

pytestmark = pytest.mark.integration

TEXTS = ["Paris is the capital of France.", "Ocean tides follow the Moon.", "Espresso is strong coffee."]
PROBE_NAMES = {p.name for p in PROBES}


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalEmbedder, LocalEmbedder]:
    from qwen_embed_adapters.testing import make_tiny_qwen3

    root = tmp_path_factory.mktemp("space-models")
    a = LocalEmbedder(make_tiny_qwen3(root / "tiny-a", seed=0), device="cpu")
    b = LocalEmbedder(make_tiny_qwen3(root / "tiny-b", seed=1), device="cpu")
    assert a.dimension == b.dimension
    return a, b


def test_langchain_chroma_records_the_card_and_refuses_another_model(
    tmp_path: Path, two_models: tuple[LocalEmbedder, LocalEmbedder]
) -> None:
    from langchain_chroma import Chroma

    first, other = two_models
    store = Chroma("lc-space", embedding_function=QwenEmbeddings(first), persist_directory=str(tmp_path))
    card = ensure_space(store, QwenEmbeddings(first))
    assert card is not None and card.model == first.model
    assert SpaceCard.from_json(store._collection.metadata[META_SPACE_CARD]) == card
    store.add_texts(TEXTS)
    assert ensure_space(store, first) == card  # the same model passes
    reopened = Chroma("lc-space", embedding_function=QwenEmbeddings(other), persist_directory=str(tmp_path))
    with pytest.raises(VectorSpaceMismatchError) as info:
        ensure_space(reopened, QwenEmbeddings(other))
    assert info.value.where == "lc-space" and info.value.worst_probe in PROBE_NAMES
    assert info.value.cosine is not None and info.value.cosine < 0.9
    assert reopened._collection.count() == 3


def test_a_chromastore_collection_and_langchain_chroma_share_the_card(
    tmp_path: Path, two_models: tuple[LocalEmbedder, LocalEmbedder]
) -> None:
    from langchain_chroma import Chroma

    first, other = two_models
    ChromaStore(str(tmp_path), "shared", first).add_texts(TEXTS)  # records the card in the metadata
    wrapper = Chroma("shared", embedding_function=QwenEmbeddings(other), persist_directory=str(tmp_path))
    with pytest.raises(VectorSpaceMismatchError):
        ensure_space(wrapper, other)


def test_langchain_milvus_lite_keeps_the_card_as_a_property(
    tmp_path: Path, two_models: tuple[LocalEmbedder, LocalEmbedder]
) -> None:
    from langchain_milvus import Milvus

    first, other = two_models
    uri = str(tmp_path / "lc.db")
    store = Milvus(embedding_function=QwenEmbeddings(first), collection_name="lc_space",
                   connection_args={"uri": uri}, auto_id=True)
    assert ensure_space(store, first) is None  # not created yet: nowhere to keep a card
    store.add_texts(TEXTS)
    card = ensure_space(store, first)
    assert card is not None and card.model == first.model
    reopened = Milvus(embedding_function=QwenEmbeddings(other), collection_name="lc_space",
                      connection_args={"uri": uri}, auto_id=True)
    with pytest.raises(VectorSpaceMismatchError) as info:
        ensure_space(reopened, other)
    assert info.value.where == "lc_space"
    assert reopened.client.get_collection_stats("lc_space")["row_count"] == 3


def test_llamaindex_chroma_vector_store(tmp_path: Path, two_models: tuple[LocalEmbedder, LocalEmbedder]) -> None:
    pytest.importorskip("llama_index.vector_stores.chroma")
    import chromadb
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from qwen_embed_adapters.integrations.llamaindex import QwenEmbedding
    from qwen_embed_adapters.integrations.llamaindex import ensure_space as li_ensure_space

    first, other = two_models
    client = chromadb.PersistentClient(path=str(tmp_path))
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection("li-space"))
    card = li_ensure_space(store, QwenEmbedding(first))
    assert card is not None
    with pytest.raises(VectorSpaceMismatchError):
        li_ensure_space(store, QwenEmbedding(other))


def test_the_plain_chromadb_helper_checks_when_it_opens(
    tmp_path: Path, two_models: tuple[LocalEmbedder, LocalEmbedder]
) -> None:
    import chromadb

    first, other = two_models
    client = chromadb.PersistentClient(path=str(tmp_path))
    col = get_or_create_collection(client, "plain", first, strict_model=False)
    col.add(ids=["a", "b"], documents=TEXTS[:2])
    with pytest.raises(VectorSpaceMismatchError):
        get_or_create_collection(client, "plain", other, strict_model=False)
    assert client.get_collection("plain").count() == 2


def test_one_of_our_stores_goes_through_its_own_check(
    tmp_path: Path, two_models: tuple[LocalEmbedder, LocalEmbedder]
) -> None:
    first, other = two_models
    store = FaissStore(first, path=str(tmp_path / "kb"))
    store.add_texts(TEXTS)
    store.save()
    assert ensure_space(store, first) == store.space_card
    with pytest.raises(VectorSpaceMismatchError):  # the same store object: its proof covers its embedder only
        ensure_space(store, QwenEmbeddings(other))
    reopened = FaissStore.load(str(tmp_path / "kb"), other)
    with pytest.raises(VectorSpaceMismatchError):
        ensure_space(reopened, other)
    assert reopened.count() == 3
