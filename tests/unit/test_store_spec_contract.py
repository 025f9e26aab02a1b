"""The store contract suite ships in the package (``qwen_embed_adapters.testing.contract``) without making
pytest a dependency of the library: only importing the suite itself imports pytest."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_library_and_its_test_doubles_does_not_import_pytest() -> None:
    code = (
        "import sys, qwen_embed_adapters, qwen_embed_adapters.testing, qwen_embed_adapters.adapters.spec; "
        "print('pytest' in sys.modules); import qwen_embed_adapters.testing.contract; print('pytest' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_the_suite_is_importable_by_its_public_names() -> None:
    from qwen_embed_adapters.testing import contract

    assert {"StoreContract", "MilvusContract", "OpenStore", "TEXTS", "unique_name"} <= set(contract.__all__)
    tests = sorted(n for n in dir(contract.StoreContract) if n.startswith("test_"))
    assert len(tests) == 19 and "test_another_dimension_is_refused_before_any_write" in tests
