"""What crosses a Ray process boundary by pickling: our exceptions with their fields, and embedders with
every setting (issue 26). A local Ray cluster of 2 CPUs, as in test_ray.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from qwen_embed_adapters.errors import DimensionMismatchError
from tests.support.components import COMPONENTS, Component, Folders
from tests.support.local_fixtures import tiny_qwen3_dir  # noqa: F401
from tests.support.openai_server import EmbeddingServer

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
        runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}},
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def embedding_server() -> Iterator[str]:
    # on 127.0.0.1 in this process: the local cluster's workers reach it too
    with EmbeddingServer(dim=64) as srv:
        yield srv.base_url


def _refuse(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    raise DimensionMismatchError(1024, 512, "kb", "a worker's check")


def test_a_task_raising_dimension_mismatch_is_caught_as_that_class_with_its_fields(ray_cluster: Any) -> None:
    @ray.remote
    def check() -> None:
        _refuse({})

    with pytest.raises(DimensionMismatchError) as err:
        ray.get(check.remote())
    # Ray raises RayTaskError(DimensionMismatchError): a subclass of both, built on the driver around
    # the worker's exception, which arrived by pickle with its fields.
    exc = err.value
    assert isinstance(exc, ray.exceptions.RayTaskError)
    assert (exc.expected, exc.actual, exc.where, exc.detail) == (1024, 512, "kb", "a worker's check")
    assert type(exc.cause) is DimensionMismatchError
    assert str(exc.cause) == "dimension mismatch for 'kb': it holds 1024-d vectors, got 512-d (a worker's check)"
    assert "dimension mismatch for 'kb'" in str(exc)  # Ray's str adds the worker's traceback


def test_a_ray_data_worker_raising_dimension_mismatch_reaches_the_driver_as_itself(ray_cluster: Any) -> None:
    # what ray.py's ingest_ray sets: without it Ray Data raises its own UserCodeException instead
    ds = ray.data.from_items([{"text": f"t {i}"} for i in range(8)]).map_batches(_refuse, batch_format="numpy")
    ds.context.raise_original_map_exception = True
    with pytest.raises(DimensionMismatchError) as err:
        ds.take_all()
    exc = err.value
    assert (exc.expected, exc.actual, exc.where, exc.detail) == (1024, 512, "kb", "a worker's check")
    assert isinstance(exc, ray.exceptions.RayTaskError)
    assert type(exc.cause) is DimensionMismatchError
    # Ray Data appends its retry advice ("Failed to apply UDF transform after 1/1 attempts ...") to the
    # message; ours comes first, whole.
    assert str(exc.cause).startswith(
        "dimension mismatch for 'kb': it holds 1024-d vectors, got 512-d (a worker's check)\n"
    )


# ---------------------------------------------------------------- settings through a Ray worker
@ray.remote
def _rebuilt_in_a_worker(obj: Any, probe: Any) -> tuple[Any, Any, str]:
    # ``obj`` arrived by pickle: the worker holds a component rebuilt from its settings
    return obj.settings, None if probe is None else probe(obj), type(obj).__name__


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_every_setting_survives_a_ray_worker(
    ray_cluster: Any, component: Component, tiny_qwen3_dir: str, embedding_server: str  # noqa: F811
) -> None:
    obj = component.build(Folders(tiny_qwen3=tiny_qwen3_dir, embedding_server=embedding_server))
    settings, result, name = ray.get(_rebuilt_in_a_worker.remote(obj, component.probe))
    assert name == type(obj).__name__
    assert settings == obj.settings
    if component.probe is not None:
        np.testing.assert_allclose(result, component.probe(obj), atol=1e-6)


def test_a_saved_store_reaches_a_ray_worker_by_its_settings(ray_cluster: Any, tmp_path: Any) -> None:
    """A FAISS store (saved) and its embedder cross to a worker by their settings; the worker opens the same
    folder and finds the same records."""
    from qwen_embed_adapters.adapters.faiss import FaissStore
    from qwen_embed_adapters.testing import FakeEmbedder

    store = FaissStore(FakeEmbedder(dimensions=32, batch_size=5), path=tmp_path / "kb", hnsw_m=8)
    ids = store.add_texts(["Beijing is the capital of China", "北京是中国的首都", "def add(a, b): return a + b"])
    store.save()

    @ray.remote
    def look(s: Any) -> tuple[dict[str, Any], dict[str, Any], int, str]:
        return s.to_config(), s.embedder.to_config(), s.count(), s.search("capital of China", top_k=1)[0].id

    config, emb_config, count, best = ray.get(look.remote(store))
    assert config == store.to_config() and emb_config == store.embedder.to_config()
    assert (count, best) == (3, store.search("capital of China", top_k=1)[0].id) and best in ids
