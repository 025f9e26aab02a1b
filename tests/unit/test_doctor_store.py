"""`qwen-embed doctor --store URI` on real stores (FAISS folder, Chroma PersistentClient, Milvus Lite) and real
in-process engines: two random tiny Qwen3 models of the same width, so the mismatch is one a real engine gives
(another model at the same width, LightRAG #1946), not a fake that returns other numbers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_embed_adapters import cli
from qwen_embed_adapters.adapters.spec import store_from_spec
from qwen_embed_adapters.cli.output import EXIT_MISMATCH
from qwen_embed_adapters.diagnostics import diagnose_store
from qwen_embed_adapters.space import PROBES
from qwen_embed_adapters.testing import FakeEmbedder

pytest.importorskip("torch")
pytest.importorskip("transformers")

TEXTS = ["Beijing is the capital of China", "北京是中国的首都", "def add(a, b): return a + b"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    from qwen_embed_adapters.testing import make_tiny_qwen3

    root = tmp_path_factory.mktemp("tiny")
    return make_tiny_qwen3(root / "a", seed=0), make_tiny_qwen3(root / "b", seed=1)


def _faiss(tmp: Path) -> str:
    return f"faiss://{tmp}/faiss-kb"


def _chroma(tmp: Path) -> str:
    return f"chroma://{tmp}/chroma/docs"


def _milvus(tmp: Path) -> str:
    pytest.importorskip("milvus_lite")
    return f"milvus://{tmp}/kb.db?collection=kb"


STORE_URIS: dict[str, Callable[[Path], str]] = {"faiss": _faiss, "chroma": _chroma, "milvus-lite": _milvus}


def _build(uri: str, model: str) -> None:
    from qwen_embed_adapters import LocalEmbedder

    emb = LocalEmbedder(model, device="cpu")
    store = store_from_spec(uri, emb)
    store.add_texts(TEXTS)
    save = getattr(store, "save", None)
    if callable(save):
        save()
    store.close()
    emb.close()


@pytest.mark.parametrize("kind", list(STORE_URIS))
def test_doctor_prints_the_card_and_passes_the_same_model(
    kind: str, models: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = STORE_URIS[kind](tmp_path)
    _build(uri, models[0])
    code = cli.main(["doctor", "--store", uri, "--engine", "local", "--model", models[0], "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"space card\n  model        {models[0]}\n  engine       local\n  dimensions   64\n" in out
    assert "  created      20" in out and "same space: every probe at or above 0.99" in out
    assert sum(line.endswith("  PASS") for line in out.splitlines()) == len(PROBES)


@pytest.mark.parametrize("kind", list(STORE_URIS))
def test_doctor_exits_3_on_another_model_of_the_same_width(
    kind: str, models: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = STORE_URIS[kind](tmp_path)
    _build(uri, models[0])
    args = ["doctor", "--store", uri, "--engine", "local", "--model", models[1], "--device", "cpu"]
    code = cli.main([*args, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == EXIT_MISMATCH
    assert data["same_space"] is False and data["card"]["model"] == models[0] and data["embedder"]["model"] == models[1]
    assert [p["name"] for p in data["probes"]] == [p.name for p in PROBES]
    assert data["worst"]["cosine"] < 0.9 and not all(p["pass"] for p in data["probes"])
    assert "vectors" not in data["card"] and len(data["card"]["fingerprint"]) == 16
    code = cli.main(args)
    out = capsys.readouterr().out
    assert code == EXIT_MISMATCH and f"MISMATCH: probe {data['worst']['probe']!r}" in out
    # the doctor wrote nothing: the store still holds the three texts, under the first model's card
    from qwen_embed_adapters import LocalEmbedder

    again = store_from_spec(uri, LocalEmbedder(models[0], device="cpu"))
    assert again.count() == 3 and again.read_space_card().model == models[0]  # type: ignore[union-attr]
    again.close()


def test_a_store_without_a_card_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["doctor", "--store", f"faiss://{tmp_path}/empty", "--engine", "fake", "--dimensions", "64"])
    assert code == 1 and "no space card recorded" in capsys.readouterr().out


def test_another_width_exits_3_with_one_line_or_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"faiss://{tmp_path}/kb"
    store = store_from_spec(uri, FakeEmbedder(dimensions=64))
    store.add_texts(TEXTS)
    store.save()  # type: ignore[attr-defined]
    # Bad input tried: an embedder of another width than the collection's.
    code = cli.main(["doctor", "--store", uri, "--engine", "fake", "--dimensions", "32"])
    assert code == EXIT_MISMATCH and "holds 64-d vectors, got 32-d" in capsys.readouterr().err
    code = cli.main(["doctor", "--store", uri, "--engine", "fake", "--dimensions", "32", "--json"])
    assert code == EXIT_MISMATCH and "64-d" in json.loads(capsys.readouterr().out)["error"]


def test_the_tolerance_flag_decides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"faiss://{tmp_path}/kb"
    store = store_from_spec(uri, FakeEmbedder(dimensions=64))
    store.add_texts(TEXTS)
    store.save()  # type: ignore[attr-defined]
    found = diagnose_store(store_from_spec(uri, FakeEmbedder(dimensions=64)))
    assert found.same_space and found.tolerance == 0.99 and min(found.cosines.values()) > 0.9999
    # a tolerance no float16 card can reach (above every cosine) turns the same embedder into a mismatch
    code = cli.main(["doctor", "--store", uri, "--engine", "fake", "--dimensions", "64", "--tolerance", "1.0"])
    out = capsys.readouterr().out
    worst = min(found.cosines.values())
    assert (code == EXIT_MISMATCH) == (worst < 1.0), out
