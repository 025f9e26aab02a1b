"""The space card's settings (``space_check``, ``space_tolerance``): fields of every store's settings, so they
persist in ``to_config``, specs, pickling and the CLI, and still read as class attributes."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import pytest

from qwen_embed_adapters.adapters.base import StoreSettings, VectorStore
from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.adapters.spec import parse_store_spec, store_from_spec
from qwen_embed_adapters.errors import ConfigurationError, VectorSpaceMismatchError
from qwen_embed_adapters.space import DEFAULT_TOLERANCE
from qwen_embed_adapters.testing import FakeEmbedder

TASK = "Given a web search query, retrieve relevant passages that answer the query"


class DocsWithInstruction(FakeEmbedder):
    """Another space of the same width: documents wrapped in the query instruction (xinference #3751)."""

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        return super().embed_queries(list(texts))


TEXTS = ["Beijing is the capital of China", "北京是中国的首都", "the quick brown fox"]


def test_class_attribute_reads_give_the_defaults() -> None:
    assert VectorStore.space_check == "adopt" and FaissStore.space_check == "adopt"
    assert VectorStore.space_tolerance == DEFAULT_TOLERANCE == 0.99
    settings = StoreSettings()
    assert (settings.space_check, settings.space_tolerance) == ("adopt", DEFAULT_TOLERANCE)


def test_setting_the_attribute_changes_the_settings_and_the_config(tmp_path: Path) -> None:
    store = FaissStore(FakeEmbedder(dimensions=8), path=str(tmp_path / "kb"))
    assert store.to_config()["space_check"] == "adopt"
    store.space_check = "strict"
    store.space_tolerance = 0.95
    assert (store.settings.space_check, store.settings.space_tolerance) == ("strict", 0.95)
    config = store.to_config()
    assert (config["space_check"], config["space_tolerance"]) == ("strict", 0.95)
    assert "space_check='strict'" in repr(store)  # a setting away from its default shows in the repr
    again = pickle.loads(pickle.dumps(store))
    assert (again.space_check, again.space_tolerance) == ("strict", 0.95)
    reopened = FaissStore.from_config(config, FakeEmbedder(dimensions=8))
    assert (reopened.space_check, reopened.space_tolerance) == ("strict", 0.95)
    assert FaissStore.space_check == "adopt"  # the class default did not move


def test_a_spec_carries_both_settings(tmp_path: Path) -> None:
    uri = f"faiss://{tmp_path}/kb?space_check=off&space_tolerance=0.9"
    plain = parse_store_spec(uri)
    assert (plain["space_check"], plain["space_tolerance"]) == ("off", 0.9)
    store = store_from_spec(uri, FakeEmbedder(dimensions=8))
    assert (store.space_check, store.space_tolerance) == ("off", 0.9)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # Bad input tried: a mode that does not exist.
        ({"store": "faiss", "path": "kb", "space_check": "sometimes"},
         "space_check must be one of 'adopt', 'strict', 'off', got 'sometimes'"),
        # Bad input tried: a cosine above 1 (nothing would ever pass).
        ({"store": "faiss", "path": "kb", "space_tolerance": 1.5}, "space_tolerance must be at most 1.0, got 1.5"),
        # Bad input tried: a tolerance that is not a number, in a URI.
        ("faiss:kb?space_tolerance=high", "space_tolerance='high' is not float"),
    ],
)
def test_bad_values_are_refused_by_name(spec: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_store_spec(spec)  # type: ignore[arg-type]


def test_a_bad_attribute_value_is_refused_and_leaves_the_setting(tmp_path: Path) -> None:
    store = FaissStore(FakeEmbedder(dimensions=8), path=str(tmp_path / "kb"))
    with pytest.raises(ConfigurationError, match="space_check must be one of"):
        store.space_check = "never"  # Bad input tried: a mode that does not exist
    assert store.space_check == "adopt"


def test_strict_from_a_spec_refuses_a_collection_without_a_card(tmp_path: Path) -> None:
    folder = str(tmp_path / "kb")
    old = FaissStore(FakeEmbedder(dimensions=8), path=folder)
    old.space_check = "off"  # a collection written before cards existed
    old.add_texts(TEXTS[:2])
    old.save()
    store = store_from_spec(f"faiss://{folder}?space_check=strict", FakeEmbedder(dimensions=8))
    with pytest.raises(VectorSpaceMismatchError, match="no space card"):
        store.add_texts(TEXTS[2:])
    assert store.count() == 2


def test_the_tolerance_from_a_spec_is_the_one_checked(tmp_path: Path) -> None:
    folder = str(tmp_path / "kb")
    store = FaissStore(FakeEmbedder(dimensions=8, query_instruction=TASK), path=folder)
    store.add_texts(TEXTS[:1])
    store.save()
    other = DocsWithInstruction(dimensions=8, query_instruction=TASK)
    with pytest.raises(VectorSpaceMismatchError):
        store_from_spec(f"faiss://{folder}", other).search("capital")
    # a tolerance of -1 accepts anything: the setting reached the check
    assert store_from_spec(f"faiss://{folder}?space_tolerance=-1", other).search("capital", top_k=1)


def test_cli_flags_set_both_settings(tmp_path: Path) -> None:
    from qwen_embed_adapters.cli.options import add_store_args, store_spec

    parser = argparse.ArgumentParser()
    add_store_args(parser)
    folder = str(tmp_path / "kb")
    args = parser.parse_args(["--store", "faiss", "--uri", folder, "--space-check", "strict",
                              "--space-tolerance", "0.97"])
    spec = store_spec(args)
    assert (spec["space_check"], spec["space_tolerance"]) == ("strict", 0.97)
    args = parser.parse_args(["--store-spec", f"faiss://{folder}", "--space-check", "off"])
    assert store_spec(args)["space_check"] == "off"
    assert store_spec(parser.parse_args(["--store", "faiss", "--uri", folder]))["space_check"] == "adopt"
    assert "--space-tolerance COSINE" in parser.format_help()
    # Bad input tried: a tolerance that is not a number.
    with pytest.raises(ConfigurationError, match="--space-tolerance takes a number, got 'high'"):
        store_spec(parser.parse_args(["--store", "faiss", "--uri", folder, "--space-tolerance", "high"]))
