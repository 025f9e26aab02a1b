"""The space card of a LightRAG working directory (adapters/lightrag/card.py), without running LightRAG:
``ensure_lightrag_space`` and the check inside ``lightrag_embedding_func(..., working_dir=...)``."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path

import pytest

from qwen_embed_adapters.adapters.lightrag import (
    CARD_FILE,
    ensure_lightrag_space,
    lightrag_card_path,
    lightrag_embedding_func,
)
from qwen_embed_adapters.errors import ConfigurationError, DimensionMismatchError, VectorSpaceMismatchError
from qwen_embed_adapters.space import PROBES, SpaceCard
from qwen_embed_adapters.testing import FakeEmbedder

pytest.importorskip("lightrag")

TASK = "Given a question, retrieve the passage that answers it"


class DocsWithInstruction(FakeEmbedder):
    """Another space of the same width: documents wrapped in the query instruction (xinference #3751)."""

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        return super().embed_queries(list(texts))

    async def aembed_documents(self, texts):  # type: ignore[no-untyped-def]
        return super().embed_queries(list(texts))


def test_the_first_embedder_records_the_card_the_next_one_is_checked(tmp_path: Path) -> None:
    card = ensure_lightrag_space(tmp_path, FakeEmbedder("m", dimensions=32, query_instruction=TASK))
    path = tmp_path / CARD_FILE
    assert card is not None and path.is_file() and lightrag_card_path(tmp_path) == path
    saved = SpaceCard.from_json(path.read_text(encoding="utf-8"))
    assert (saved.model, saved.dimension, saved.engine, saved.instruction) == ("m", 32, "fake", TASK)
    assert ensure_lightrag_space(tmp_path, FakeEmbedder("m", dimensions=32, query_instruction=TASK)) == saved
    before = path.read_bytes()
    with pytest.raises(VectorSpaceMismatchError) as info:
        ensure_lightrag_space(tmp_path, DocsWithInstruction("m", dimensions=32, query_instruction=TASK))
    err = info.value
    assert err.where == str(tmp_path) and err.worst_probe in {p.name for p in PROBES if not p.query}
    assert err.cosine is not None and err.cosine < 0.99
    assert path.read_bytes() == before  # the card of the first embedder stays
    assert pickle.loads(pickle.dumps(err)).worst_probe == err.worst_probe


def test_another_width_is_a_dimension_error(tmp_path: Path) -> None:
    ensure_lightrag_space(tmp_path, FakeEmbedder(dimensions=32))
    # Bad input tried: an embedder of another width than the card's.
    with pytest.raises(DimensionMismatchError) as info:
        ensure_lightrag_space(tmp_path, FakeEmbedder(dimensions=16))
    assert (info.value.expected, info.value.actual) == (32, 16)


def test_a_workspace_keeps_its_own_card(tmp_path: Path) -> None:
    ensure_lightrag_space(tmp_path, FakeEmbedder(dimensions=32), workspace="team-a")
    assert (tmp_path / "team-a" / CARD_FILE).is_file() and not (tmp_path / CARD_FILE).exists()
    ensure_lightrag_space(tmp_path, DocsWithInstruction(dimensions=32, query_instruction=TASK), workspace="team-b")


def test_strict_refuses_a_directory_with_vectors_but_no_card(tmp_path: Path) -> None:
    (tmp_path / "vdb_chunks.json").write_text(json.dumps({"embedding_dim": 32, "data": [], "matrix": ""}))
    with pytest.raises(VectorSpaceMismatchError, match="holds LightRAG vectors but no"):
        ensure_lightrag_space(tmp_path, FakeEmbedder(dimensions=32), space_check="strict")
    assert not (tmp_path / CARD_FILE).exists()
    assert ensure_lightrag_space(tmp_path, FakeEmbedder(dimensions=32), space_check="off") is None
    assert not (tmp_path / CARD_FILE).exists()
    assert ensure_lightrag_space(tmp_path, FakeEmbedder(dimensions=32)) is not None  # adopt


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space_check": "maybe"}, "space_check must be one of"),  # Bad input tried: an unknown mode
        ({"tolerance": 3}, "space_tolerance must be at most 1.0, got 3"),  # Bad input tried: a cosine above 1
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ensure_lightrag_space(tmp_path, FakeEmbedder(dimensions=8), **kwargs)  # type: ignore[arg-type]


def test_a_damaged_card_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / CARD_FILE).write_text("{not json")  # Bad input tried: a card file that is not JSON
    with pytest.raises(ConfigurationError, match="space card: not JSON"):
        ensure_lightrag_space(tmp_path, FakeEmbedder(dimensions=8))


def test_the_embedding_func_checks_before_its_first_call(tmp_path: Path) -> None:
    emb = FakeEmbedder("m", dimensions=32, query_instruction=TASK)
    func = lightrag_embedding_func(emb, working_dir=tmp_path)
    assert not (tmp_path / CARD_FILE).exists()  # nothing happens before LightRAG calls it
    out = asyncio.run(func.func(["a chunk"], context="document"))
    assert out.shape == (1, 32) and (tmp_path / CARD_FILE).is_file()
    probes = len(emb.calls)
    asyncio.run(func.func(["another chunk"], context="document"))
    assert len(emb.calls) == probes + 1  # proved once: later calls embed only their texts

    wrong = DocsWithInstruction("m", dimensions=32, query_instruction=TASK)
    func = lightrag_embedding_func(wrong, working_dir=tmp_path)
    with pytest.raises(VectorSpaceMismatchError, match="the current embedder is m via fake"):
        asyncio.run(func.func(["a chunk"], context="document"))
    assert all(batch != ["a chunk"] for batch in wrong.calls)  # the texts themselves were never embedded


def test_the_embedding_func_without_working_dir_embeds_no_probes(tmp_path: Path) -> None:
    emb = FakeEmbedder(dimensions=8)
    func = lightrag_embedding_func(emb)
    asyncio.run(func.func(["a chunk"], context="document"))
    assert emb.calls == [["a chunk"]]
