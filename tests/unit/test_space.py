"""The space card: probes, compact JSON, fingerprint, and the check that refuses another space."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from qwen_embed_adapters.errors import ConfigurationError, DimensionMismatchError, VectorSpaceMismatchError
from qwen_embed_adapters.space import (
    CARD_WIDTH,
    DEFAULT_TOLERANCE,
    PROBES,
    SpaceCard,
    check_space,
    compare_cards,
    embed_probes,
    make_card,
)
from qwen_embed_adapters.testing import FakeEmbedder

TASK = "Given a web search query, retrieve relevant passages that answer the query"


class DocsWithInstruction(FakeEmbedder):
    """The xinference #3751 mistake: documents wrapped in the query instruction."""

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        return super().embed_queries(list(texts))


def test_card_round_trips_through_json_and_stays_small() -> None:
    emb = FakeEmbedder(dimensions=1024)
    card = make_card(emb)
    text = card.dumps()
    assert len(text) < 8_000  # 9 probes x 256 float16 values, base64
    again = SpaceCard.from_json(text)
    assert again == card and again.probes == tuple(p.name for p in PROBES)
    assert again.vectors.shape == (len(PROBES), CARD_WIDTH)
    np.testing.assert_array_equal(again.vectors, card.vectors)
    assert again.fingerprint == card.fingerprint
    assert json.loads(text)["dimension"] == 1024 and json.loads(text)["engine"] == "fake"


def test_same_embedder_passes_with_cosines_near_one() -> None:
    emb = FakeEmbedder(dimensions=64)
    card = make_card(emb)
    comparison = check_space(card, FakeEmbedder(dimensions=64), where="kb")
    assert comparison.same_space
    assert min(comparison.cosines.values()) > 0.9999  # float16 storage costs < 1e-4


def test_documents_wrapped_in_the_instruction_fail_naming_the_worst_probe() -> None:
    card = make_card(FakeEmbedder(dimensions=64, query_instruction=TASK))
    with pytest.raises(VectorSpaceMismatchError) as info:
        check_space(card, DocsWithInstruction(dimensions=64, query_instruction=TASK), where="kb")
    err = info.value
    assert err.where == "kb" and err.worst_probe in {p.name for p in PROBES if not p.query}
    assert err.cosine < DEFAULT_TOLERANCE
    assert "qwen-embed doctor --reference" in str(err) and repr(err.worst_probe) in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert (again.where, again.worst_probe, again.cosine) == (err.where, err.worst_probe, err.cosine)


def test_another_width_is_a_dimension_error_not_a_space_error() -> None:
    card = make_card(FakeEmbedder(dimensions=64))
    with pytest.raises(DimensionMismatchError) as info:
        check_space(card, FakeEmbedder(dimensions=32), where="kb")
    assert (info.value.expected, info.value.actual) == (64, 32)


def test_a_nan_vector_counts_as_the_farthest() -> None:
    card = make_card(FakeEmbedder(dimensions=16))
    vectors = card.vectors.copy()
    vectors[2] = np.nan  # fp16 overflow on one probe (QwenLM/Qwen3-Embedding #164)
    comparison = compare_cards(card, vectors)
    assert comparison.worst == (PROBES[2].name, -1.0) and not comparison.same_space


def test_the_query_probe_uses_the_instruction() -> None:
    emb = FakeEmbedder(dimensions=64, query_instruction=TASK)
    plain = embed_probes(emb, instruction="")
    wrapped = embed_probes(emb)
    query_row = [i for i, p in enumerate(PROBES) if p.query][0]
    assert not np.allclose(plain[query_row], wrapped[query_row])
    np.testing.assert_array_equal(np.delete(plain, query_row, 0), np.delete(wrapped, query_row, 0))


@pytest.mark.parametrize(
    "bad",
    [
        "not json",  # not JSON at all
        "[1, 2]",  # JSON but not an object
        '{"model": "m"}',  # fields missing
        json.dumps({**make_card(FakeEmbedder(dimensions=8)).to_json(), "vectors": "!!"}),  # vectors not base64
        json.dumps({**make_card(FakeEmbedder(dimensions=8)).to_json(), "vectors": "AAAA"}),  # wrong value count
    ],
)
def test_a_damaged_card_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="space card"):
        SpaceCard.from_json(bad)


def test_a_cached_embedder_is_carded_as_the_engine_it_wraps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    from qwen_embed_adapters.adapters.faiss import FaissStore
    from qwen_embed_adapters.cache import CachedEmbedder

    inner = FakeEmbedder("qwen3-fake", dimensions=32, query_instruction=TASK)
    cached = CachedEmbedder(inner, tmp_path / "cache.sqlite")
    assert cached.engine == "cached"
    card = make_card(cached)
    assert (card.model, card.engine) == ("qwen3-fake", "fake")
    folder = tmp_path / "kb"
    store = FaissStore(cached, path=str(folder))
    store.add_texts(["Beijing is the capital of China"])
    store.save()
    assert store.space_card is not None and store.space_card.engine == "fake"
    saved = SpaceCard.from_json(_json.loads((folder / "store.json").read_text())["space_card"])
    assert (saved.model, saved.engine) == ("qwen3-fake", "fake")
    # The error names the wrapped engine of the current embedder too.
    wrong = CachedEmbedder(DocsWithInstruction("qwen3-fake", dimensions=32, query_instruction=TASK),
                           tmp_path / "other.sqlite")
    with pytest.raises(VectorSpaceMismatchError, match="the current embedder is qwen3-fake via fake;"):
        FaissStore.load(str(folder), wrong).search("capital")
