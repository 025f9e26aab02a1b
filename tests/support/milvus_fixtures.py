"""Helpers for the Milvus tests: a Milvus Lite data dir per test module, the ``milvus-lite server``
process for the http:// path, and a Docker probe for testcontainers.

Milvus Lite runs one process per data dir (an advisory LOCK file), so every test module takes its own
fresh ``.db`` under pytest's tmp dir and releases it at teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# pymilvus reads MILVUS_URI at import time (pymilvus 3.0 settings.py); tests never inherit one.
os.environ.pop("MILVUS_URI", None)


def milvus_lite_cli() -> str | None:
    """The ``milvus-lite`` command next to this interpreter (or on PATH), if installed."""
    here = Path(sys.executable).with_name("milvus-lite")
    if here.exists():
        return str(here)
    return shutil.which("milvus-lite")


def milvus_lite_server_mode() -> tuple[bool, str]:
    """Whether the installed milvus-lite offers ``milvus-lite server``; the reason when not."""
    cli = milvus_lite_cli()
    if cli is None:
        return False, "the milvus-lite command is not installed"
    try:
        out = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"milvus-lite --help failed: {exc}"
    if "server" not in out.stdout:
        return False, "this milvus-lite has no 'server' subcommand"
    return True, ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def milvus_lite_server(data_dir: Path, *, start_timeout: float = 60.0) -> Iterator[str]:
    """Run ``milvus-lite server`` on 127.0.0.1 in a child process; yields its ``http://`` URI."""
    cli = milvus_lite_cli()
    assert cli is not None
    port = free_port()
    log = open(data_dir.parent / f"milvus-lite-server-{port}.log", "wb")
    proc = subprocess.Popen(
        [cli, "server", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port),
         "--max-workers", "4"],
        stdout=log, stderr=subprocess.STDOUT, env={k: v for k, v in os.environ.items() if k != "MILVUS_URI"},
    )
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"milvus-lite server exited with {proc.returncode}; see {log.name}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"milvus-lite server did not listen on {port}; see {log.name}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()


def release_lite(db_path: str | os.PathLike[str]) -> None:
    """Stop this process's in-process Milvus Lite server for ``db_path`` and free its LOCK."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(os.fspath(db_path))


def index_lite(client: Any, db_path: str | os.PathLike[str], collection: str) -> None:
    """Flush ``collection`` of this process's Milvus Lite on ``db_path`` and wait until its segments have their
    vector index. Milvus Lite searches rows it has not flushed by brute force over the float vectors; a flush
    writes them to a segment whose index a background thread then builds (milvus-lite 3.2,
    ``engine/collection.py``: ``_bg_compact_and_index``). Releasing and loading right after the flush races that
    thread (``load`` can read an index file it is still writing: "No data left in file"), so this waits for the
    thread instead, through milvus-lite's server registry (``server_manager_instance._servers``: path ->
    (server, db, port)) and ``Collection._wait_for_bg``."""
    client.flush(collection)
    from milvus_lite.server_manager import server_manager_instance

    _, db, _ = server_manager_instance._servers[os.path.abspath(os.fspath(db_path))]
    db.get_collection(collection)._wait_for_bg(timeout=120)


def docker_reason() -> str | None:
    """None when a Docker engine answers, else why testcontainers tests skip."""
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return "the docker SDK (testcontainers) is not installed"
    try:
        client: Any = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:
        return f"no Docker engine answers ({type(exc).__name__})"
    return None


def corpus(n: int, *, prefix: str = "doc") -> list[str]:
    """``n`` distinct, deterministic texts with overlapping vocabularies."""
    topics = ["milvus", "vector", "embedding", "qwen", "search", "index", "cosine", "北京", "机器学习", "数据库"]
    words = ["alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "paper", "lamp", "garden"]
    return [
        f"{prefix} {i}: {topics[i % len(topics)]} {words[(i // 10) % len(words)]} "
        f"{words[(i * 7) % len(words)]} number {i * 7919 % 10007}"
        for i in range(n)
    ]
