"""Every Python and shell code block of README*.md and docs/**/*.md, run as tests.

How a page runs
- One pytest item per block (``test_block[docs/milvus.md:17]``), in page order. The Python blocks of a
  page share one namespace, like cells of a notebook, so a later block may use ``emb`` or ``store`` from
  an earlier one. Top-level ``await`` works (as in Jupyter). Shell blocks run with ``bash -euo pipefail``.
- Each page runs in its own fresh temp dir (cwd), seeded with the small files the pages name
  (``notes.txt``, ``questions.txt``, ``corpus.txt``, ``faq.jsonl``, ``guide.md``, ``docs/``).
- Servers come from fixtures, and the block's text is rewritten before it runs:
  ``http://localhost:30000`` / ``http://127.0.0.1:30000`` become a real ``qwen-embed serve`` on a free port,
  serving a tiny random Qwen3 that is 1024 wide like Qwen3-Embedding-0.6B and is served under the name
  ``Qwen3-Embedding-0.6B``; the hub ids ``Qwen/Qwen3-Embedding-0.6B`` and ``Qwen/Qwen3-Reranker-0.6B``
  become folders of tiny random models. ``qwen-embed`` on a shell line is this checkout's CLI.
- A block that cannot run here is marked in the markdown, on the line right before its fence::

      <!-- not run: needs a GPU -->

  The reason is required (an empty one fails the suite) and the item is reported as skipped with it;
  ``test_marked_blocks_are_counted`` lists them and fails when more than ``MAX_NOT_RUN`` are. A fenced block in another
  language (``text``, ``json``, none) is not code and is not collected.
- Hidden set-up for a page (a stub LLM, a reranker ...) is an HTML comment right before a Python block::

      <!-- setup:
      texts = ["a", "b"]
      -->

  It runs in the page namespace before the block, and is not shown when the page is rendered.
- A failing block fails with ``FILE:LINE`` of its fence and the rewritten source.
New pages are picked up automatically.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_fixtures import ServeProcess, start_serve

REPO = Path(__file__).resolve().parents[2]
PY_LANGS = {"python", "py", "python3"}
SH_LANGS = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:(.*?)-->\s*$")
SETUP_START = re.compile(r"^\s*<!--\s*setup:\s*$")


@dataclass
class Block:
    page: str          # path relative to the repo
    line: int          # 1-based line of the opening fence
    lang: str
    source: str
    not_run: str | None = None
    setup: str = ""

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass
class PageState:
    workdir: Path
    namespace: dict[str, Any] = field(default_factory=dict)


def doc_pages() -> list[Path]:
    pages = sorted(REPO.glob("README*.md")) + sorted((REPO / "docs").rglob("*.md"))
    return [p for p in pages if p.is_file()]


def parse_blocks(path: Path) -> list[Block]:
    rel = str(path.relative_to(REPO))
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    pending_not_run: str | None = None
    pending_setup = ""
    while i < len(lines):
        line = lines[i]
        m_nr = NOT_RUN.match(line)
        if m_nr:
            pending_not_run = m_nr.group(1).strip()
            if not pending_not_run:
                raise AssertionError(f"{rel}:{i + 1}: '<!-- not run: -->' needs a reason")
            i += 1
            continue
        if SETUP_START.match(line):
            j = i + 1
            body = []
            while j < len(lines) and lines[j].strip() != "-->":
                body.append(lines[j])
                j += 1
            pending_setup += "\n".join(body) + "\n"
            i = j + 1
            continue
        m = FENCE.match(line)
        if m:
            indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
            j = i + 1
            body = []
            while j < len(lines) and not lines[j].strip().startswith(fence):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            if lang in PY_LANGS or lang in SH_LANGS:
                blocks.append(Block(rel, i + 1, "python" if lang in PY_LANGS else "bash", "\n".join(body) + "\n",
                                    pending_not_run, pending_setup))
            pending_not_run, pending_setup = None, ""
            i = j + 1
            continue
        if line.strip():
            pending_not_run, pending_setup = None, ""
        i += 1
    return blocks


ALL_BLOCKS = [b for page in doc_pages() for b in parse_blocks(page)]


# ---------------------------------------------------------------- fixtures

def _widen_tiny_qwen3(folder: Path, hidden: int = 1024) -> None:
    """Re-initialise the tiny Qwen3 at ``hidden`` width (Qwen3-Embedding-0.6B's 1024), same tokenizer."""
    import json

    import torch
    from transformers import Qwen3Config, Qwen3Model

    config = Qwen3Config.from_pretrained(str(folder))
    config.hidden_size = hidden
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen3Model(config)
    model.eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    pool = folder / "1_Pooling" / "config.json"
    data = json.loads(pool.read_text())
    data["word_embedding_dimension"] = hidden
    pool.write_text(json.dumps(data))


@pytest.fixture(scope="session")
def docs_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from qwen_embed_adapters.testing import make_tiny_qwen3, make_tiny_qwen3_reranker

    root = tmp_path_factory.mktemp("docs-models")
    emb = Path(make_tiny_qwen3(root / "Qwen3-Embedding-0.6B", seed=0))
    _widen_tiny_qwen3(emb)
    rer = make_tiny_qwen3_reranker(root / "Qwen3-Reranker-0.6B", seed=0)
    return {"embedding": str(emb), "reranker": rer}


@pytest.fixture(scope="session")
def docs_serve(docs_models: dict[str, str]) -> Iterator[ServeProcess]:
    server = start_serve(docs_models["embedding"], ["--reranker", docs_models["reranker"]])
    try:
        yield server
    finally:
        server.stop()


SAMPLE_FILES = {
    "notes.txt": "北京是中国的首都。\nParis is the capital of France.\ndef add(a, b): return a + b\n",
    "questions.txt": "What is the capital of China?\n如何重置密码？\n",
    "corpus.txt": "Beijing is the capital of China.\n长江是中国最长的河流。\nBinary search halves the range.\n",
    "faq.jsonl": '{"id": "faq-1", "text": "Reset your password from the login page.", "metadata": {"lang": "en"}}\n'
                 '{"id": "faq-2", "text": "在登录页面重置密码。", "metadata": {"lang": "zh"}}\n',
    "guide.md": "# Guide\n\nQwen3-Embedding turns text into vectors.\n\nMilvus stores them.\n",
    "notes.md": "# Notes\n\nChroma keeps collections on disk.\n",
    "docs/intro.md": "# Intro\n\nThe capital of China is Beijing.\n\n北京是中国的首都。\n",
    "docs/code.md": "# Code\n\n`def add(a, b): return a + b` adds two numbers.\n",
}

_states: dict[str, PageState] = {}


@pytest.fixture(scope="session")
def docs_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs-pages")


def page_state(page: str, root: Path) -> PageState:
    if page not in _states:
        work = root / re.sub(r"[^\w.-]", "_", page)
        work.mkdir(parents=True)
        for name, text in SAMPLE_FILES.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text, encoding="utf-8")
        _states[page] = PageState(work, {"__name__": "__docs__"})
    return _states[page]


def rewrite(source: str, serve: ServeProcess, models: dict[str, str]) -> str:
    host = serve.root_url
    for old in ("http://localhost:30000", "http://127.0.0.1:30000"):
        source = source.replace(old, host)
    source = source.replace("Qwen/Qwen3-Embedding-0.6B", models["embedding"])
    source = source.replace("Qwen/Qwen3-Reranker-0.6B", models["reranker"])
    return source


def run_python(block: Block, source: str, state: PageState) -> None:
    code = compile(source, f"{block.page}:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, state.namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)


def run_bash(block: Block, source: str, state: PageState) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PATH"] = f"{state.workdir / '.bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    bindir = state.workdir / ".bin"
    if not bindir.exists():
        bindir.mkdir()
        shim = bindir / "qwen-embed"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m qwen_embed_adapters.cli "$@"\n')
        shim.chmod(0o755)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", source], cwd=state.workdir, env=env,
                          capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_block(block: Block, docs_serve: ServeProcess, docs_models: dict[str, str], docs_tmp: Path,
               monkeypatch: pytest.MonkeyPatch) -> None:
    if block.not_run:
        pytest.skip(f"{block.id} not run: {block.not_run}")
    state = page_state(block.page, docs_tmp)
    monkeypatch.chdir(state.workdir)
    monkeypatch.delenv("MILVUS_URI", raising=False)
    source = rewrite(block.source, docs_serve, docs_models)
    try:
        if block.setup:
            run_python(block, rewrite(block.setup, docs_serve, docs_models), state)
        if block.lang == "python":
            run_python(block, source, state)
        else:
            run_bash(block, source, state)
    except Exception as exc:
        pytest.fail(f"{block.id}: the {block.lang} block fails: {type(exc).__name__}: {exc}\n--- as run:\n{source}",
                    pytrace=True)


# The blocks marked "not run" may not grow past this: a new one must replace an old one, or the
# count here is raised in the same commit, where a reviewer sees it (and the list below says which).
MAX_NOT_RUN = 38


def test_marked_blocks_are_counted() -> None:
    marked = [b for b in ALL_BLOCKS if b.not_run]
    run = len(ALL_BLOCKS) - len(marked)
    listing = "\n".join(f"  {b.id}: {b.not_run}" for b in marked)
    print(f"\ndocs: {len(ALL_BLOCKS)} code blocks in {len({b.page for b in ALL_BLOCKS})} pages: "
          f"{run} run, {len(marked)} marked not run\n{listing}")
    assert len(marked) <= MAX_NOT_RUN, (
        f"{len(marked)} code blocks are marked not run, at most {MAX_NOT_RUN} may be:\n{listing}")
    assert all(b.not_run.strip() for b in marked)


def test_page_list_includes_new_pages() -> None:
    pages = {str(p.relative_to(REPO)) for p in doc_pages()}
    assert "README.md" in pages and "docs/remote.md" in pages
    assert shutil.which("bash")
