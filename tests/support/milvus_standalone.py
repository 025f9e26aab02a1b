"""A real Milvus standalone server without Docker: the ``milvus`` 2.3.5 wheel's ``milvus-server``
(embedded etcd on 127.0.0.1:2379, metrics on :9091, local storage), in a cached venv built by
``tests/containers/milvus_venv.sh``. Its etcd and metrics ports are fixed, so one runs per machine at a
time: a file lock serialises test processes. It is a 2.3 server, older than current Milvus 2.5/2.6.

Plugging a URI into the shared store contract::

    class TestStandaloneContract(MilvusContract):
        @pytest.fixture
        def milvus_uri(self, milvus_standalone: StandaloneMilvus) -> str:
            return milvus_standalone.uri
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("QWEN_EMBED_CACHE", Path.home() / ".cache" / "qwen-embed-adapters"))
VENV_SCRIPT = ROOT / "tests" / "containers" / "milvus_venv.sh"


def milvus_server_cmd(*, install: bool = True) -> str | None:
    """Path of ``milvus-server`` in the cached venv; builds the venv when ``install`` (about 25 s)."""
    exe = CACHE / "venvs" / "milvus-server" / "bin" / "milvus-server"
    if exe.exists():
        return str(exe)
    if not install:
        return None
    out = subprocess.run(["bash", str(VENV_SCRIPT)], capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        return None
    return out.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(uri: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until a MilvusClient on ``uri`` lists collections (the proxy listens well before it serves)."""
    from pymilvus import MilvusClient

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"milvus-server exited with {proc.returncode}")
        try:
            c = MilvusClient(uri, timeout=3)
            try:
                c.list_collections(timeout=3)
                return
            finally:
                c.close()
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(1)
    raise RuntimeError(f"Milvus at {uri} not ready after {timeout:.0f} s: {last!r}")


class StandaloneMilvus:
    """One ``milvus-server`` process group on a data dir; ``kill()`` SIGKILLs it, ``start()`` restarts it
    on the same data dir and port."""

    def __init__(self, data_dir: Path, exe: str, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.exe = exe
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"milvus-server-{self.port}.log"

    def start(self, timeout: float = 120.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        busy = [p for p in (2379, 9091, self.port) if not _port_free(p)]
        if busy:
            raise RuntimeError(f"ports {busy} are taken: another Milvus standalone (or etcd) runs here")
        log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if k != "MILVUS_URI"}
        self.proc = subprocess.Popen(
            [str(Path(self.exe).with_name("python")), "-c", _LAUNCH, "--data", str(self.data_dir), "--proxy-port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        log.close()
        wait_ready(self.uri, timeout, self.proc)

    def kill(self) -> None:
        """SIGKILL the whole process group (``milvus run standalone`` is a child of the launcher)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
        # the fixed etcd/metrics ports must be free before a restart
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(_port_free(p) for p in (2379, 9091, self.port)):
            time.sleep(0.3)

    def restart(self, timeout: float = 120.0) -> None:
        self.kill()
        self.start(timeout)


# milvus-server's launcher probes each port with a plain bind() and silently moves to another port when it
# fails, which it does for a minute after a SIGKILL (TIME_WAIT). The Go server itself binds with
# SO_REUSEADDR, so the launcher's probe gets the same option and a restart keeps its port.
_LAUNCH = """
import socket, sys
import milvus
class _Socket(socket.socket):
    def bind(self, addr):
        self.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return super().bind(addr)
milvus.socket.socket = _Socket
sys.exit(milvus.main())
"""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT left by a killed server is fine
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@contextlib.contextmanager
def machine_lock(name: str = "milvus-standalone", timeout: float = 900.0) -> Iterator[None]:
    """An exclusive per-machine lock: the standalone's etcd (2379) and metrics (9091) ports are fixed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another Milvus standalone held {fh.name} for {timeout:.0f} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def standalone_milvus(data_dir: Path, exe: str) -> Iterator[StandaloneMilvus]:
    with machine_lock():
        server = StandaloneMilvus(data_dir, exe)
        try:
            server.start()
            yield server
        finally:
            server.kill()
