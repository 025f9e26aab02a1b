"""Real serving engines for the ``engines`` test tier: venvs built by ``scripts/engines.sh``, processes on 127.0.0.1.

Each engine lives in its own venv under ``${QWEN_EMBED_CACHE:-~/.cache/qwen-embed-adapters}/venvs/NAME``
(its pins conflict with the project's). ``engine_venv(NAME)`` builds it on first use by running the script
(a no-op when the stamp is current). When the build fails, the test fails in CI (``CI=true``, which
``.ci/run`` sets: an engine the suite installs itself must run there) and skips elsewhere, naming the
build log either way.
The tests themselves run in the project's venv and talk to the engine over HTTP, as a user's code would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

import httpx
import pytest

from tests.support.local_fixtures import REPO_ROOT, free_port

BUILD_SCRIPT = REPO_ROOT / "scripts" / "engines.sh"
LLAMACPP_VERSION = "0.3.36"  # keep in step with scripts/engines.sh


def cache_dir() -> Path:
    return Path(os.environ.get("QWEN_EMBED_CACHE") or Path.home() / ".cache" / "qwen-embed-adapters")


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``, as .ci/run and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> NoReturn:
    """A part the suite builds itself could not be had: a failure in CI, a skip (with ``reason``) elsewhere."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a part the suite installs itself must run)", pytrace=False)
    pytest.skip(reason)


def build_log(name: str) -> Path:
    """The log scripts/engines.sh writes while building ``name``."""
    return cache_dir() / "logs" / f"{name}.log"


def build(name: str, stamp: Path) -> None:
    """Run ``scripts/engines.sh NAME`` unless ``stamp`` exists; a failed build is :func:`unavailable`."""
    failed = cache_dir() / "venvs" / f"{name}.failed"
    if stamp.exists() and not failed.exists():
        return
    # the script is idempotent: it returns at once when the stamp matches its spec
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), name], capture_output=True, text=True)
    if proc.returncode != 0:
        log = failed.read_text().strip() if failed.exists() else str(build_log(name))
        unavailable(f"building {name} failed (scripts/engines.sh {name}); log: {log}; "
                    f"last output: {proc.stderr.strip()[-300:]}")


def engine_venv(name: str) -> Path:
    """The venv of engine ``name`` ("infinity", "llamacpp" or "lightrag"), built now if this machine has none yet."""
    venv = cache_dir() / "venvs" / name
    build(name, venv / ".engines-stamp")
    return venv


def llamacpp_source() -> Path:
    """llama.cpp as vendored in the llama-cpp-python sdist that scripts/engines.sh unpacked."""
    engine_venv("llamacpp")
    src = cache_dir() / "src" / f"llama_cpp_python-{LLAMACPP_VERSION}" / "vendor" / "llama.cpp"
    if not (src / "convert_hf_to_gguf.py").exists():
        unavailable(f"{src}/convert_hf_to_gguf.py is missing: the llama-cpp-python sdist was not unpacked "
                    f"(scripts/engines.sh llamacpp; log: {build_log('llamacpp')})")
    return src


@dataclass
class EngineProcess:
    """An engine server started as its own process group, logging to ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()


def start_engine(name: str, cmd: Sequence[str], *, health_path: str, log_dir: Path,
                 env: dict[str, str] | None = None, timeout: float = 240.0, port: int | None = None,
                 cwd: Path | None = None, drop_env: tuple[str, ...] = ()) -> EngineProcess:
    """Run ``cmd`` (which must listen on ``port``) and wait until ``GET health_path`` answers 200.

    ``env`` adds variables; those starting with a prefix in ``drop_env`` are not inherited.
    """
    port = port or free_port()
    log_path = log_dir / f"{name}-{port}.log"
    log = open(log_path, "wb")  # closed by EngineProcess.stop
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(drop_env)} if drop_env else dict(os.environ)
    full_env = dict(inherited, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DO_NOT_TRACK="1",
                    INFINITY_ANONYMOUS_USAGE_STATS="0", **(env or {}))
    full_env.pop("PYTHONPATH", None)  # the engine's venv must not import the project's worktree
    proc = subprocess.Popen([c.replace("{port}", str(port)) for c in cmd], stdout=log, stderr=subprocess.STDOUT,
                            env=full_env, start_new_session=True, cwd=cwd)
    server = EngineProcess(name, proc, port, log_path, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            server.stop()
            raise RuntimeError(f"{name} exited with {proc.returncode}; log {log_path}:\n{server.log_tail()}")
        try:
            if httpx.get(server.root_url + health_path, timeout=2.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"{name} did not answer {health_path} within {timeout} s; log {log_path}:\n{server.log_tail()}")
