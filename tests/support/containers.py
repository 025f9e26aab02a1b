"""Database containers for the Docker tier (testcontainers over the docker SDK).

Images: the official one when it is local or can be pulled, else the equivalent the project builds from
Debian + the package index (``tests/containers/build_images.sh``, run by ``make test-db``):

- Chroma: ``chromadb/chroma`` else ``qwen-embed-test/chroma:local`` (the chromadb wheel's ``chroma run``).
- Milvus: ``milvusdb/milvus`` else ``qwen-embed-test/milvus:local`` (the ``milvus`` 2.3.5 wheel's
  ``milvus-server``, a real standalone Milvus 2.3 with embedded etcd; the official image runs 2.5/2.6
  and needs ``milvus run standalone`` plus etcd, which testcontainers' MilvusContainer sets up).

Containers bind a fixed free host port so a SIGKILLed container restarted with ``docker start`` keeps
its address; data lives in a host directory mounted at /data, so it survives the kill.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# Ryuk (testcontainers' reaper) is an image that cannot be pulled here; the fixtures remove their own.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from tests.support.milvus_fixtures import docker_reason, free_port
from tests.support.milvus_standalone import wait_ready

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tests" / "containers" / "build_images.sh"
OFFICIAL = {"chroma": "chromadb/chroma:1.5.9", "milvus": "milvusdb/milvus:v2.5.14"}
LOCAL = {"chroma": "qwen-embed-test/chroma:local", "milvus": "qwen-embed-test/milvus:local"}


_PICKED: dict[str, tuple[str | None, str]] = {}


def pick_image(kind: str) -> tuple[str | None, str]:
    """(image, how) — the official image if local or pullable, else the local build; None with the reason
    when neither exists. Decided once per test process (a failed pull is not retried)."""
    if kind not in _PICKED:
        _PICKED[kind] = _pick_image(kind)
    return _PICKED[kind]


def _pick_image(kind: str) -> tuple[str | None, str]:
    reason = docker_reason()
    if reason is not None:
        return None, reason
    import docker  # type: ignore[import-untyped]

    client: Any = docker.from_env(timeout=60)
    try:
        for image, how in ((OFFICIAL[kind], "official"), (LOCAL[kind], "local build")):
            try:
                client.images.get(image)
                return image, how
            except docker.errors.ImageNotFound:
                pass
            if how == "official" and os.environ.get("QWEN_EMBED_TRY_PULL", "1") == "1":
                try:
                    client.images.pull(image)
                    return image, how
                except Exception:  # no registry reachable (the case on the dev/CI machines)
                    pass
        return None, f"neither {OFFICIAL[kind]} (pull failed) nor {LOCAL[kind]} exists; run {BUILD_SCRIPT}"
    finally:
        client.close()


class DbContainer:
    """One database container on a fixed host port with its data dir mounted; ``kill()`` is SIGKILL,
    ``start()`` is ``docker start`` of the same container."""

    def __init__(self, kind: str, image: str, data_dir: Path) -> None:
        from testcontainers.core.container import DockerContainer

        self.kind = kind
        self.port = free_port()
        inner = 8000 if kind == "chroma" else 19530
        data_dir.mkdir(parents=True, exist_ok=True)
        c = DockerContainer(image).with_bind_ports(inner, self.port).with_volume_mapping(str(data_dir), "/data", "rw")
        if image == OFFICIAL["milvus"]:  # the official image: embedded etcd + local storage
            c = c.with_command("milvus run standalone").with_env("ETCD_USE_EMBED", "true").with_env(
                "COMMON_STORAGETYPE", "local"
            )
        self.container = c
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        wrapped = self.container._container
        if wrapped is None:
            self.container.start()
        else:
            wrapped.start()
        self.wait(timeout)

    def wait(self, timeout: float) -> None:
        if self.kind == "milvus":
            wait_ready(self.uri, timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/api/v2/heartbeat", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.kind} container did not answer on {self.uri} in {timeout:.0f} s")

    def kill(self) -> None:
        wrapped = self.container.get_wrapped_container()
        wrapped.kill(signal="SIGKILL")
        wrapped.wait(timeout=60)

    def remove(self) -> None:
        try:
            self.container.stop()
        except Exception:
            pass

    def chroma_client(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        return chromadb.HttpClient(host="127.0.0.1", port=self.port, settings=Settings(anonymized_telemetry=False))
