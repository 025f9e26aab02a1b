"""An engine venv that cannot be built fails the test in CI and skips, naming the build log, elsewhere
(tests/support/engines.py); the build script here is a stand-in that fails the way scripts/engines.sh does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import engines


@pytest.fixture
def failing_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """QWEN_EMBED_CACHE in tmp_path, and a build script that writes NAME.failed as scripts/engines.sh does."""
    monkeypatch.setenv("QWEN_EMBED_CACHE", str(tmp_path))
    script = tmp_path / "engines.sh"
    script.write_text('mkdir -p "$QWEN_EMBED_CACHE/venvs" "$QWEN_EMBED_CACHE/logs"\n'
                      'echo "$QWEN_EMBED_CACHE/logs/$1.log" > "$QWEN_EMBED_CACHE/venvs/$1.failed"\n'
                      'echo "pip: no matching distribution" >&2\nexit 1\n')
    monkeypatch.setattr(engines, "BUILD_SCRIPT", script)
    return tmp_path


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_failed_build_fails_in_ci(failing_build: Path, monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as info:
        engines.engine_venv("infinity")
    assert f"log: {failing_build}/logs/infinity.log" in str(info.value)
    assert "pip: no matching distribution" in str(info.value) and "CI=true" in str(info.value)


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_failed_build_skips_elsewhere_naming_the_log(failing_build: Path, monkeypatch: pytest.MonkeyPatch,
                                                       ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception) as info:
        engines.build("tiktoken", failing_build / "tiktoken" / ".engines-stamp")
    assert f"log: {failing_build}/logs/tiktoken.log" in str(info.value)


def test_a_built_engine_is_not_rebuilt(failing_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    stamp = failing_build / "venvs" / "llamacpp" / ".engines-stamp"
    stamp.parent.mkdir(parents=True)
    stamp.write_text("llama-cpp-python[server]==0.3.36\n")
    assert engines.engine_venv("llamacpp") == failing_build / "venvs" / "llamacpp"  # the script never ran
