"""Pinecone, Docker tier: Pinecone Local (``ghcr.io/pinecone-io/pinecone-local``) through testcontainers.

Pinecone Local is Pinecone's own emulator; it runs only as a container, so these tests skip with a
reason when no Docker engine answers (as on the development and CI machines of this project).

Pinecone Local speaks an older REST API version than the ``pinecone`` 10 SDK sends when creating
an index (its API version is 2026-07, pinecone/_internal/constants.py), so the index is created with one plain HTTP request at that older version and
the data plane is driven through the real SDK and ``PineconeStore``, with the API-version header set
to ``PINECONE_LOCAL_API_VERSION`` (default 2025-01).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pinecone = pytest.importorskip("pinecone")

from qwen_embed_adapters.adapters.pinecone import PineconeStore  # noqa: E402
from qwen_embed_adapters.testing import FakeEmbedder  # noqa: E402
from tests.support.pinecone_scenario import run_store_scenario  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.docker]

IMAGE = os.environ.get("PINECONE_LOCAL_IMAGE", "ghcr.io/pinecone-io/pinecone-local:latest")
LOCAL_API_VERSION = os.environ.get("PINECONE_LOCAL_API_VERSION", "2025-01")
CONTROL_PORT = 5080
INDEX_PORTS = range(5081, 5086)
API_KEY = "pclocal"


def _docker_skip_reason() -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker package is not installed"
    try:
        docker.from_env(timeout=5).ping()
    except Exception as exc:
        return f"no Docker engine answers ({type(exc).__name__}); Pinecone Local is Docker-only"
    client = docker.from_env(timeout=120)
    try:  # no registry answers on some machines, and Pinecone Local cannot be built from public parts
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(IMAGE)
        except Exception as exc:
            return f"{IMAGE} is not local and cannot be pulled ({type(exc).__name__}); Pinecone Local is Docker-only"
    finally:
        client.close()
    return None


@pytest.fixture(scope="module")
def pinecone_local() -> Iterator[Any]:
    reason = _docker_skip_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.core.container import DockerContainer

    container = (
        DockerContainer(IMAGE)
        .with_env("PORT", str(CONTROL_PORT))
        .with_env("PINECONE_HOST", "localhost")
        .with_exposed_ports(CONTROL_PORT, *INDEX_PORTS)
    )
    with container:
        yield container


def _url(container: Any, port: int) -> str:
    return f"http://{container.get_container_host_ip()}:{container.get_exposed_port(port)}"


def _create_index(container: Any, name: str, dimension: int) -> str:
    """Create a serverless index at Pinecone Local's API version; return its data-plane URL on the host."""
    control = _url(container, CONTROL_PORT)
    headers = {"Api-Key": API_KEY, "X-Pinecone-Api-Version": LOCAL_API_VERSION}
    deadline = time.monotonic() + 60
    while True:  # the emulator takes a moment to listen after the container starts
        try:
            r = httpx.post(
                f"{control}/indexes",
                headers=headers,
                json={
                    "name": name,
                    "dimension": dimension,
                    "metric": "cosine",
                    "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
                },
                timeout=10,
            )
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert r.status_code in (200, 201, 202), r.text
    host = r.json()["host"]  # e.g. "localhost:5081", a port inside the container
    port = int(host.rsplit(":", 1)[1])
    return _url(container, port)


def _index(host: str) -> Any:
    pc = pinecone.Pinecone(
        api_key=API_KEY, additional_headers={"X-Pinecone-Api-Version": LOCAL_API_VERSION}
    )
    return pc.Index(host=host)


def test_pinecone_local_ids_counts_nearest_and_dimension_error(pinecone_local: Any) -> None:
    """Runs against Pinecone Local in Docker: ids, counts, nearest results, filter, delete and the
    dimension error (a 32-d embedder on the 64-d index), through the real SDK."""
    host = _create_index(pinecone_local, "qea-local", 64)
    store = PineconeStore(_index(host), FakeEmbedder(dimensions=64), namespace="scenario", name="qea-local")
    wrong = PineconeStore(_index(host), FakeEmbedder(dimensions=32), namespace="scenario", name="qea-local")
    run_store_scenario(store, wrong, settle=30.0)
    assert store.dimension == 64


def test_pinecone_local_batches_over_1000_vectors(pinecone_local: Any) -> None:
    """Runs against Pinecone Local in Docker: 2,500 records in one write are accepted (the adapter
    cuts them to requests of at most 1,000) and all are counted."""
    host = _create_index(pinecone_local, "qea-local-big", 8)
    store = PineconeStore(_index(host), FakeEmbedder(dimensions=8), name="qea-local-big")
    store.write_batch_size = 5000
    ids = store.add_texts([f"record {i}" for i in range(2500)])
    assert len(ids) == 2500
    deadline = time.monotonic() + 30
    while store.count() != 2500 and time.monotonic() < deadline:
        time.sleep(1)
    assert store.count() == 2500
