"""``qwen-embed doctor --reference`` against every real engine this tier starts, on the tiny Qwen3's weights.

The doctor runs as users run it: the console script (or ``python -m qwen_embed_adapters.cli``) in its own
process, at the URL users write, with ``--json``. Engines (issue 29):

- Infinity 0.0.78 at its root URL (default routes: ``/embeddings``, no ``/v1``) — the issue's failing row —
  and started with ``--url-prefix /v1``;
- llama.cpp's server (llama-cpp-python) on the f32 GGUF made by llama.cpp's own converter (last-token
  pooling from the folder's sentence-transformers config), and on the same GGUF with its pooling type set to
  mean, which must FAIL "vs reference". llama-cpp-python's server has no ``--pooling`` flag: llama-server's
  ``--pooling mean`` overrides the GGUF key ``qwen3.pooling_type``, so the test writes that key (1 = mean)
  with llama.cpp's own ``gguf-py/gguf/scripts/gguf_set_metadata.py``;
- ``qwen-embed serve``.

Every engine serves the same tiny random Qwen3 folder that ``--reference`` loads in-process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines.test_infinity import _infinity
from tests.engines.test_llamacpp import MODEL as LLAMA_MODEL
from tests.engines.test_llamacpp import llama_server, tiny_gguf  # noqa: F401  (fixtures)
from tests.support import local_fixtures
from tests.support.engines import EngineProcess, engine_venv, llamacpp_source, start_engine
from tests.support.local_fixtures import REPO_ROOT, ServeProcess, serve_tiny  # noqa: F401  (fixture)

tiny_qwen3_dir = local_fixtures.tiny_qwen3_dir

pytestmark = [pytest.mark.engines, pytest.mark.integration]

#: the issue's name for the tiny Qwen3 served by Infinity
INFINITY_MODEL = "tinyA"
#: the checks that must PASS on every engine serving the reference's weights correctly
RIGHT = ("reachable", "model name", "dimension", "batch padding", "determinism", "vs reference")


def doctor(base_url: str, model: str, reference: str) -> tuple[int, dict[str, Any], str]:
    """Run ``qwen-embed doctor --json`` in a child process on this checkout's code: (exit code, report, stderr)."""
    script = Path(sys.executable).parent / "qwen-embed"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "qwen_embed_adapters.cli"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run([*cmd, "doctor", "--base-url", base_url, "--model", model, "--reference", reference,
                           "--samples", "200", "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.stdout.strip(), f"no JSON from the doctor (exit {proc.returncode}): {proc.stderr[-3000:]}"
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def assert_right(report: dict[str, Any], *, base64: str) -> None:
    """The checks of RIGHT pass; nothing FAILs. The tiny random model misorders one language pair in-process
    too, so "similar > dissimilar" is the model's WARN, not the server's FAIL."""
    got = statuses(report)
    assert "FAIL" not in got.values(), report["checks"]
    pairs = next(c for c in report["checks"] if c["name"] == "similar > dissimilar")
    assert pairs["status"] == "WARN" and pairs["detail"].endswith("the reference model misorders the same triplets "
                                                                  "in-process"), pairs
    wrong = {c["name"]: c for c in report["checks"] if c["name"] in RIGHT and c["status"] != "PASS"}
    assert not wrong, wrong
    assert got["base64 support"] == base64, report["checks"]
    ref = next(c for c in report["checks"] if c["name"] == "vs reference")
    assert ref["detail"].startswith("30/30 texts at cosine >= 0.99 with LocalEmbedder"), ref


# ------------------------------------------------------------------------------------------ Infinity
@pytest.fixture(scope="module")
def infinity_root(tiny_qwen3_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """``infinity_emb v2 --model-id DIR`` with its default routes (the issue's setup)."""
    server = _infinity(tiny_qwen3_dir, tmp_path_factory.mktemp("infinity-doctor"), name=INFINITY_MODEL)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def infinity_v1(tiny_qwen3_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    server = _infinity(tiny_qwen3_dir, tmp_path_factory.mktemp("infinity-doctor-v1"), "--url-prefix", "/v1",
                       name=INFINITY_MODEL)
    try:
        yield server
    finally:
        server.stop()


def test_doctor_on_infinity_at_its_root_url(infinity_root: EngineProcess, tiny_qwen3_dir: str) -> None:
    """Issue 29's last row: ``qwen-embed doctor --base-url http://127.0.0.1:7997 --model tinyA --reference DIR``."""
    code, report, stderr = doctor(infinity_root.root_url, INFINITY_MODEL, tiny_qwen3_dir)
    assert_right(report, base64="PASS")
    reachable = next(c for c in report["checks"] if c["name"] == "reachable")
    assert reachable["detail"].startswith(f"HTTP 200 from {infinity_root.root_url}/embeddings in "), reachable
    assert report["endpoint_url"] == f"{infinity_root.root_url}/embeddings"
    assert report["engine_family"] == "infinity"
    assert code == 0, stderr


def test_doctor_on_infinity_with_a_v1_prefix(infinity_v1: EngineProcess, tiny_qwen3_dir: str) -> None:
    code, report, _ = doctor(f"{infinity_v1.root_url}/v1", INFINITY_MODEL, tiny_qwen3_dir)
    assert_right(report, base64="PASS")
    assert code == 0
    assert report["endpoint_url"] == f"{infinity_v1.root_url}/v1/embeddings"
    assert report["engine_family"] == "infinity"


# ------------------------------------------------------------------------------------------ llama.cpp
@pytest.fixture(scope="module")
def mean_gguf(tiny_gguf: str, tmp_path_factory: pytest.TempPathFactory) -> str:  # noqa: F811
    """The same f32 GGUF with ``qwen3.pooling_type`` = 1 (mean): what ``llama-server --pooling mean`` runs."""
    venv = engine_venv("llamacpp")
    out = tmp_path_factory.mktemp("gguf-mean") / "tiny-qwen3-f32-mean.gguf"
    shutil.copy(tiny_gguf, out)
    script = llamacpp_source() / "gguf-py" / "gguf" / "scripts" / "gguf_set_metadata.py"
    proc = subprocess.run([str(venv / "bin" / "python"), str(script), "--force", str(out), "qwen3.pooling_type", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"gguf_set_metadata.py failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return str(out)


@pytest.fixture(scope="module")
def llama_mean(mean_gguf: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    venv = engine_venv("llamacpp")
    cmd = [str(venv / "bin" / "python"), "-m", "llama_cpp.server", "--model", mean_gguf, "--model_alias", LLAMA_MODEL,
           "--embedding", "true", "--n_ctx", "512", "--n_threads", "1", "--host", "127.0.0.1", "--port", "{port}"]
    server = start_engine("llamacpp-mean", cmd, health_path="/v1/models",
                          log_dir=tmp_path_factory.mktemp("llamacpp-mean"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def q8_gguf(tiny_gguf: str, tmp_path_factory: pytest.TempPathFactory) -> str:  # noqa: F811
    """The f32 GGUF quantised to q8_0 by llama.cpp's own quantiser (``llama_model_quantize``, the function
    ``llama-quantize`` runs, through llama-cpp-python's binding)."""
    venv = engine_venv("llamacpp")
    out = tmp_path_factory.mktemp("gguf-q8") / "tiny-qwen3-q8_0.gguf"
    code = ("import ctypes, sys, llama_cpp\n"
            "p = llama_cpp.llama_model_quantize_default_params()\n"
            "p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0\n"
            "p.nthread = 1\n"
            "sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))\n")
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code, tiny_gguf, str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, f"llama_model_quantize failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert 0 < out.stat().st_size < Path(tiny_gguf).stat().st_size / 2  # 8.5 bits per weight instead of 32
    return str(out)


@pytest.fixture(scope="module")
def llama_q8(q8_gguf: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    venv = engine_venv("llamacpp")
    cmd = [str(venv / "bin" / "python"), "-m", "llama_cpp.server", "--model", q8_gguf, "--model_alias", LLAMA_MODEL,
           "--embedding", "true", "--n_ctx", "512", "--n_threads", "1", "--host", "127.0.0.1", "--port", "{port}"]
    server = start_engine("llamacpp-q8", cmd, health_path="/v1/models", log_dir=tmp_path_factory.mktemp("llamacpp-q8"))
    try:
        yield server
    finally:
        server.stop()


def test_doctor_on_llamacpp_with_last_token_pooling(llama_server: EngineProcess,  # noqa: F811
                                                    tiny_qwen3_dir: str) -> None:
    code, report, _ = doctor(f"{llama_server.root_url}/v1", LLAMA_MODEL, tiny_qwen3_dir)
    # llama-cpp-python accepts encoding_format=base64 and answers floats: WARN (RemoteEmbedder falls back)
    assert_right(report, base64="WARN")
    assert code == 0
    assert report["endpoint_url"] == f"{llama_server.root_url}/v1/embeddings"
    # llama-cpp-python's /v1/models says owned_by "me" (llama_cpp/server/app.py, 0.3.36) and its Server header
    # is uvicorn's: nothing tells it apart, so no family (llama.cpp's own llama-server says "llamacpp")
    assert report["engine_family"] is None


def test_doctor_fails_llamacpp_with_mean_pooling(llama_mean: EngineProcess, tiny_qwen3_dir: str) -> None:
    """Bad input: the right weights served with the wrong pooling (mean instead of Qwen3's last token)."""
    code, report, _ = doctor(f"{llama_mean.root_url}/v1", LLAMA_MODEL, tiny_qwen3_dir)
    got = statuses(report)
    assert code == 1
    assert got["reachable"] == got["model name"] == got["dimension"] == "PASS"
    assert got["batch padding"] == got["determinism"] == "PASS"  # only the pooling is wrong
    ref = next(c for c in report["checks"] if c["name"] == "vs reference")
    assert ref["status"] == "FAIL", ref
    assert not ref["detail"].startswith("30/30"), ref
    assert got["similar > dissimilar"] in ("PASS", "FAIL")  # judged as the server's: the reference did not match
    assert "--pooling last" in ref["fix"]


# ------------------------------------------------------------------------------------------ qwen-embed serve
def test_doctor_on_qwen_embed_serve(serve_tiny: ServeProcess, tiny_qwen3_dir: str) -> None:  # noqa: F811
    code, report, stderr = doctor(serve_tiny.root_url, "tiny-qwen3", tiny_qwen3_dir)
    assert_right(report, base64="PASS")
    assert code == 0
    assert report["endpoint_url"] == f"{serve_tiny.root_url}/v1/embeddings"
    assert report["engine_family"] == "qwen-embed-serve"


# ------------------------------------------------------------------------------------------ the space card
# Issue 25: a collection built in-process (LocalEmbedder, float32) accepts every engine serving the same
# weights correctly and refuses, before anything is written or searched, the one serving them with mean pooling.
def _card_store(folder: Path, reference: str) -> None:
    from qwen_embed_adapters import LocalEmbedder
    from qwen_embed_adapters.adapters.faiss import FaissStore

    with LocalEmbedder(reference, device="cpu", dtype="float32") as emb:
        store = FaissStore(emb, path=folder)
        store.add_texts(["Beijing is the capital of China", "北京是中国的首都", "def add(a, b): return a + b"])
        store.save()


def _through(folder: Path, url: str, model: str) -> tuple[float, str | None]:
    """Open the saved store with a RemoteEmbedder at ``url``; search once. Returns (lowest probe cosine,
    the VectorSpaceMismatchError's worst probe or None when accepted)."""
    from qwen_embed_adapters import RemoteEmbedder
    from qwen_embed_adapters.adapters.faiss import FaissStore
    from qwen_embed_adapters.errors import VectorSpaceMismatchError
    from qwen_embed_adapters.space import SpaceCard, compare_cards, embed_probes

    with RemoteEmbedder(url, model=model) as emb:
        store = FaissStore.load(folder, emb)
        card = SpaceCard.from_json(json.dumps(json.loads((folder / "store.json").read_text())["space_card"]))
        worst, lowest = compare_cards(card, embed_probes(emb, card.instruction)).worst
        logging.getLogger(__name__).info("space card through %s: worst probe %s, cosine %.5f", url, worst, lowest)
        try:
            store.search("capital of China", top_k=1)
        except VectorSpaceMismatchError as exc:
            with pytest.raises(VectorSpaceMismatchError):
                store.add_texts(["Paris is the capital of France"])
            assert store.count() == 3  # nothing written
            return lowest, exc.worst_probe
        return lowest, None


def test_space_card_accepts_infinity_and_llamacpp_last_token(
    infinity_root: EngineProcess, llama_server: EngineProcess, tiny_qwen3_dir: str, tmp_path: Path,  # noqa: F811
) -> None:
    _card_store(tmp_path / "kb", tiny_qwen3_dir)
    for url, model in ((infinity_root.root_url, INFINITY_MODEL), (f"{llama_server.root_url}/v1", LLAMA_MODEL)):
        lowest, refused = _through(tmp_path / "kb", url, model)
        assert refused is None and lowest > 0.999, (url, lowest)


def test_space_card_refuses_llamacpp_with_mean_pooling(
    llama_mean: EngineProcess, tiny_qwen3_dir: str, tmp_path: Path
) -> None:
    """Bad input: the right weights behind the wrong pooling; refused before any search or write."""
    _card_store(tmp_path / "kb", tiny_qwen3_dir)
    lowest, refused = _through(tmp_path / "kb", f"{llama_mean.root_url}/v1", LLAMA_MODEL)
    assert refused is not None and lowest < 0.9, lowest


def test_space_card_accepts_llamacpp_on_a_q8_0_gguf(llama_q8: EngineProcess, tiny_qwen3_dir: str, tmp_path: Path) -> None:
    """A quantised GGUF of the same weights speaks the same space: the default tolerance must accept it."""
    _card_store(tmp_path / "kb", tiny_qwen3_dir)
    lowest, refused = _through(tmp_path / "kb", f"{llama_q8.root_url}/v1", LLAMA_MODEL)
    assert refused is None and 0.99 < lowest < 1.0, lowest  # < 1: it really is another (quantised) model file
