"""Signatures written out in the docs match the code (docs/local.md's LocalEmbedder block had lost ``backend``)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _documented_call(page: str, name: str) -> ast.Call:
    text = (ROOT / page).read_text(encoding="utf-8")
    match = re.search(r"Signature:\s*\n+```text\n(" + re.escape(name) + r"\(.*?\))\n```", text, re.DOTALL)
    assert match, f"{page}: no ```text signature block for {name}"
    call = ast.parse(match.group(1).replace("*,", ""), mode="eval").body  # a signature's bare * is no call
    assert isinstance(call, ast.Call)
    return call


@pytest.mark.parametrize(("page", "name"), [("docs/local.md", "LocalEmbedder")])
def test_documented_signature_matches_the_code(page: str, name: str) -> None:
    pytest.importorskip("torch")
    from qwen_embed_adapters.local import LocalEmbedder

    call = _documented_call(page, name)
    documented = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    params = inspect.signature(LocalEmbedder.__init__).parameters
    actual = {k: p.default for k, p in params.items() if k != "self"}
    assert list(documented) == list(actual), f"{page}: parameters differ from {name}.__init__"
    assert documented == actual, f"{page}: defaults differ from {name}.__init__"
