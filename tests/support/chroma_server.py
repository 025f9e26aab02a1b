"""A real Chroma server for integration tests: the ``chroma run`` binary shipped in the chromadb wheel.

    with ChromaServer(tmp_path / "chroma") as srv:
        client = srv.client()          # chromadb.HttpClient on 127.0.0.1:<free port>
        ...

The process is started with ``chroma run --path <dir> --host 127.0.0.1 --port <free>``; ``start``
waits until ``/api/v2/heartbeat`` answers and ``stop`` terminates it (and kills it if it lingers).
No Docker needed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chroma_binary() -> str:
    """The ``chroma`` entry point next to the running Python (the project's .venv), else on PATH."""
    here = Path(sys.executable).parent / "chroma"
    if here.exists():
        return str(here)
    found = shutil.which("chroma")
    if found is None:
        raise FileNotFoundError("the `chroma` command is not installed (pip install chromadb)")
    return found


class ChromaServer:
    """``chroma run`` on 127.0.0.1, persisting to ``path``."""

    def __init__(self, path: str | os.PathLike[str], *, port: int | None = None, startup_timeout: float = 90.0) -> None:
        self.path = Path(path)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.path.parent / f"{self.path.name}.chroma.log"
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ChromaServer:
        self.path.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [chroma_binary(), "run", "--path", str(self.path), "--host", self.host, "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self._close_log()
                raise RuntimeError(f"chroma run exited with {self.proc.returncode}:\n{tail}")
            if self.alive():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"chroma run did not answer on {self.url} in {self.startup_timeout}s")
            time.sleep(0.1)

    def alive(self) -> bool:
        """True when the heartbeat endpoint answers."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def client(self, **kwargs: Any) -> Any:
        """A ``chromadb.HttpClient`` for this server."""
        import chromadb
        from chromadb.config import Settings

        return chromadb.HttpClient(
            host=self.host, port=self.port, settings=Settings(anonymized_telemetry=False), **kwargs
        )

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ChromaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers (for the testcontainers variant), and why not."""
    try:
        import docker
    except ImportError:
        return False, "the docker SDK is not installed"
    try:
        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # no socket, permission denied, engine down
        return False, f"no Docker engine answers ({type(exc).__name__}: {str(exc)[:120]})"
    return True, ""
