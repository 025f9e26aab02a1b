"""`qwen-embed ingest/search/embed/doctor` against real parts: the fake OpenAI server over HTTP,
Milvus Lite, a persistent Chroma, `qwen-embed serve` on a tiny Qwen3, and the console script itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qwen_embed_adapters import cli
from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.cli.output import EXIT_MISMATCH
from qwen_embed_adapters.space import PROBES
from tests.support.local_fixtures import ServeProcess, serve_tiny, tiny_qwen3_dir  # noqa: F401
from tests.support.openai_server import INFINITY_ROUTES, EmbeddingServer

pytestmark = pytest.mark.integration


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "cities.md").write_text(
        "# Cities\n\nBeijing is the capital of China.\n\n上海是中国最大的城市。\n", encoding="utf-8"
    )
    (root / "cooking.txt").write_text("Rinse rice before cooking it.\n\n西红柿炒鸡蛋要先炒鸡蛋。", encoding="utf-8")
    (root / "faq.jsonl").write_text(
        json.dumps({"id": "faq-1", "text": "HTTP 429 means you are rate limited.", "lang": "en"}) + "\n",
        encoding="utf-8",
    )
    return root


def test_ingest_search_and_rerun_on_milvus_lite_through_a_remote_endpoint(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "kb.db"
    common = ["--store", "milvus", "--uri", str(db), "--collection", "kb"]
    with EmbeddingServer(dim=48) as srv:
        engine = ["--base-url", srv.base_url, "--model", "fake-qwen"]
        assert cli.main(["ingest", str(docs), "--max-tokens", "16", "--json", *common, *engine]) == 0
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        # cities.md: 2 chunks under 16 tokens ("# Cities\n\nBeijing..." and the Chinese line); cooking.txt: 2; faq: 1
        assert (report["written"], report["skipped"], report["failed"], report["count"]) == (5, 0, 0, 5)
        assert srv.requests, "the remote engine was used"
        assert cli.main(["search", "Beijing is the capital of China", "-k", "2", "--json", *common, *engine]) == 0
        hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(hits) == 2
        assert hits[0]["text"] == "# Cities\n\nBeijing is the capital of China."
        assert hits[0]["metadata"]["source"].endswith("cities.md") and hits[0]["score"] > hits[1]["score"]
        assert hits[0]["id"] == content_id(hits[0]["text"])
        n_requests = len(srv.requests)
        assert cli.main(["ingest", str(docs), "--max-tokens", "16", "--json", *common, *engine]) == 0
        again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert (again["written"], again["skipped"], again["count"]) == (0, 5, 5)
        # A new embedder of an unknown model asks once for its width, then embeds the space card's probes
        # (documents, then the query) to prove it speaks the collection's space; no corpus text is embedded again.
        inputs = [r["input"] for r in srv.requests[n_requests:]]
        assert inputs[:2] == [["dimension probe"], [p.text for p in PROBES if not p.query]]
        assert len(inputs) == 3 and inputs[2][0].endswith(PROBES[-1].text)
        assert cli.main(["search", "rate limited", "-k", "1", *common, *engine]) == 0
        table = capsys.readouterr().out
        assert "faq-1" in table and "HTTP 429 means you are rate limited." in table


def test_base_url_from_the_environment_selects_the_remote_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "t.txt"
    src.write_text("alpha\nbeta\n", encoding="utf-8")
    with EmbeddingServer(dim=24) as srv:
        monkeypatch.setenv("QWEN_EMBED_BASE_URL", srv.base_url)
        monkeypatch.setenv("QWEN_EMBED_MODEL", "fake-qwen")
        assert cli.main(["embed", str(src), "-o", str(tmp_path / "v.npy")]) == 0
        got = np.load(tmp_path / "v.npy")
        ref = srv.expected(["alpha", "beta"])
        np.testing.assert_allclose(got, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-6)
        assert srv.requests[-1]["model"] == "fake-qwen"


def test_ingest_and_filtered_search_on_a_persistent_chroma(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--store", "chroma", "--uri", str(tmp_path / "chroma"), "--collection", "kb_chroma",
              "--engine", "fake", "--dimensions", "32"]
    assert cli.main(["ingest", str(docs), "--json", *common]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["count"] == 3  # one chunk per file at the default 512-token limit
    assert cli.main(["search", "rate limited", "--filter", '{"lang": "en"}', "--json", *common]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [h["id"] for h in hits] == ["faq-1"]


# ---------------------------------------------------------------------------- doctor over HTTP
def doctor_json(base_url: str, *extra: str) -> tuple[int, dict[str, object]]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["doctor", "--base-url", base_url, "--samples", "200", "--json", *extra])
    return code, json.loads(buf.getvalue())


def doctor(base_url: str, *extra: str) -> tuple[int, dict[str, dict[str, str]]]:
    code, report = doctor_json(base_url, *extra)
    return code, {c["name"]: c for c in report["checks"]}  # type: ignore[attr-defined]


def test_doctor_finds_infinitys_route_at_the_root_url() -> None:
    """Issue 29: a bare http://host:port on Infinity's default routes (/embeddings, no /v1) passes
    "reachable" on the route RemoteEmbedder finds, instead of failing on /v1/embeddings."""
    with EmbeddingServer(dim=64, model="fake-qwen", routes=INFINITY_ROUTES) as srv:
        code, report = doctor_json(srv.root_url, "--model", "fake-qwen")
        paths = list(srv.paths)
    checks = {c["name"]: c for c in report["checks"]}  # type: ignore[attr-defined]
    assert checks["reachable"]["status"] == "PASS"
    assert checks["reachable"]["detail"].startswith(f"HTTP 200 from {srv.root_url}/embeddings in ")
    assert report["endpoint_url"] == f"{srv.root_url}/embeddings"
    assert "engine_family" in report
    for name in ("model name", "dimension", "dimensions support", "base64 support", "vector norms",
                 "batch padding", "determinism"):
        assert checks[name]["status"] in ("PASS", "WARN"), checks[name]
    # one request found the route (/v1/embeddings 404, then /embeddings); every raw check went to /embeddings
    assert paths[:2] == ["/v1/embeddings", "/embeddings"]
    assert set(paths[2:]) == {"/embeddings"}


def test_doctor_names_which_engines_use_which_route_when_none_answers() -> None:
    """Bad input: a URL with a path where the server has no embeddings route at all."""
    with EmbeddingServer(dim=64, model="fake-qwen", routes=INFINITY_ROUTES) as srv:
        code, report = doctor_json(srv.root_url + "/api", "--model", "fake-qwen")
    checks = {c["name"]: c for c in report["checks"]}  # type: ignore[attr-defined]
    assert code == 1
    reachable = checks["reachable"]
    assert reachable["status"] == "FAIL"
    assert reachable["detail"].startswith(f"HTTP 404 from {srv.root_url}/api/embeddings: no embeddings route")
    assert f"tried {srv.root_url}/api/embeddings (HTTP 404)" in reachable["detail"]
    assert "answer on /v1/embeddings" in reachable["fix"] and "Infinity answers on /embeddings" in reachable["fix"]
    assert report["endpoint_url"] is None
    assert [c["status"] for c in report["checks"]].count("SKIP") == 9  # type: ignore[attr-defined]


def test_doctor_on_a_well_behaved_endpoint() -> None:
    with EmbeddingServer(dim=1024, model="Qwen3-Embedding-0.6B") as srv:
        code, checks = doctor(srv.base_url, "--model", "Qwen3-Embedding-0.6B")
    for name in ("reachable", "model name", "dimension", "dimensions support", "base64 support"):
        assert checks[name]["status"] == "PASS", checks[name]
    assert checks["dimension"]["detail"] == "1024-d (Qwen3-Embedding-0.6B native)"
    assert checks["dimensions support"]["detail"] == "dimensions=256: 256-d, renormalised"
    # The fake server's vectors are unit-norm hashes with no notion of language: the pair check must fail.
    assert checks["vector norms"]["status"] == "PASS" and "200 vectors" in checks["vector norms"]["detail"]
    assert checks["similar > dissimilar"]["status"] == "FAIL"
    assert code == 1


@pytest.mark.parametrize(
    ("server_kw", "check", "status", "detail"),
    [
        ({"dimensions": "refuse"}, "dimensions support", "WARN", "dimensions=32 refused: HTTP 400"),
        ({"dimensions": "slice"}, "dimensions support", "WARN", "sliced without renormalising"),
        ({"dimensions": "ignore"}, "dimensions support", "WARN", "dimensions=32 ignored: answered 64-d"),
        ({"base64": "ignore"}, "base64 support", "WARN", "ignored: floats returned"),
        ({"base64": "refuse"}, "base64 support", "WARN", "refused: HTTP 400"),
        ({"api_key": "s3cret"}, "reachable", "FAIL", "HTTP 401"),
    ],
)
def test_doctor_names_what_an_engine_does_not_support(
    server_kw: dict[str, str], check: str, status: str, detail: str
) -> None:
    """Bad input: servers that refuse/ignore/slice `dimensions`, ignore/refuse base64, or want a key."""
    with EmbeddingServer(dim=64, model="fake-qwen", **server_kw) as srv:  # type: ignore[arg-type]
        _, checks = doctor(srv.base_url, "--model", "fake-qwen")
    assert checks[check]["status"] == status
    assert detail in checks[check]["detail"]
    assert checks[check]["fix"]


def test_doctor_flags_a_dimension_that_is_not_the_models() -> None:
    """Bad input: a server that claims Qwen3-Embedding-0.6B but answers 64-d vectors."""
    with EmbeddingServer(dim=64, model="Qwen3-Embedding-0.6B") as srv:
        code, checks = doctor(srv.base_url, "--model", "Qwen3-Embedding-0.6B")
    assert code == 1
    assert checks["dimension"]["status"] == "FAIL"
    assert checks["dimension"]["detail"] == "64-d, but Qwen3-Embedding-0.6B is natively 1024-d"


def test_doctor_on_a_server_that_does_not_answer_in_time() -> None:
    """Bad input: a server slower than --timeout; the doctor waits once, not once more for its raw check."""
    with EmbeddingServer(dim=64, model="fake-qwen", faults=["slow"], slow_seconds=1.5) as srv:
        code, checks = doctor(srv.base_url, "--model", "fake-qwen", "--timeout", "0.3")
        posts = len(srv.paths)
    assert code == 1
    assert checks["reachable"]["status"] == "FAIL"
    assert checks["reachable"]["detail"] == f"no answer from {srv.base_url}/embeddings within 0.3 s"
    assert "raise --timeout" in checks["reachable"]["fix"]
    assert posts == 1


def test_doctor_on_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input: a base URL where nothing listens."""
    from tests.support.chroma_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    assert cli.main(["doctor", "--base-url", url]) == 1
    out = capsys.readouterr().out
    assert "reachable             FAIL    connection refused" in out
    assert "[FAIL] reachable: Start the server" in out
    assert out.count("SKIP") == 9  # the 9 checks after "reachable"


def test_doctor_on_qwen_embed_serve_with_a_wrong_model_name(serve_tiny: ServeProcess) -> None:  # noqa: F811
    """Bad input: --model names a model the server does not serve."""
    code, checks = doctor(serve_tiny.base_url, "--model", "Qwen3-Embedding-8B")
    assert code == 1
    assert checks["reachable"]["status"] == "PASS"
    assert checks["model name"]["status"] == "FAIL"
    assert "HTTP 404" in checks["model name"]["detail"] and "tiny-qwen3" in checks["model name"]["detail"]
    assert "--model" in checks["model name"]["fix"]
    code, checks = doctor(serve_tiny.base_url, "--model", "tiny-qwen3")
    assert checks["model name"]["status"] == "PASS" and checks["dimension"]["detail"] == "64-d"
    assert checks["vector norms"]["status"] == "PASS"


def test_doctor_passes_qwen_embed_serve_against_its_own_weights(
    serve_tiny: ServeProcess, tiny_qwen3_dir: str  # noqa: F811
) -> None:
    code, checks = doctor(serve_tiny.base_url, "--model", "tiny-qwen3", "--reference", tiny_qwen3_dir)
    for name in ("batch padding", "determinism", "vs reference"):
        assert checks[name]["status"] == "PASS", checks[name]
    assert checks["vs reference"]["detail"].startswith("30/30 texts at cosine >= 0.99 with LocalEmbedder")
    # the tiny random model misorders a language pair; the server computes exactly that, so it is the model's doing
    pairs = checks["similar > dissimilar"]
    assert pairs["status"] == "WARN", pairs
    assert pairs["detail"].endswith("; the reference model misorders the same triplets in-process")
    assert "the model itself misorders these pairs" in pairs["fix"]
    assert code == 0
    code, checks = doctor(serve_tiny.base_url, "--model", "tiny-qwen3")  # no --reference: the comparison is skipped
    assert checks["vs reference"]["status"] == "SKIP" and "--reference MODEL_DIR" in checks["vs reference"]["detail"]
    assert checks["similar > dissimilar"]["status"] == "FAIL" and code == 1  # nothing to blame the model with


def test_doctor_flags_a_mean_pooling_server(tmp_path: Path, tiny_qwen3_dir: str) -> None:  # noqa: F811
    """Bad input: a server that mean-pools Qwen3 (llama.cpp's default pooling for embeddings).

    The stand-in is a real `qwen-embed serve` on a copy of the tiny Qwen3 whose 1_Pooling/config.json asks for
    mean pooling instead of last-token, so it pads and batches correctly and only the pooling is wrong.
    """
    import shutil

    from tests.support.local_fixtures import start_serve

    mean_dir = tmp_path / "tiny-qwen3-mean"
    shutil.copytree(tiny_qwen3_dir, mean_dir)
    (mean_dir / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 64,
                                                                    "pooling_mode_mean_tokens": True}))
    server = start_serve(str(mean_dir), ["--served-model-name", "tiny-qwen3-mean"])
    try:
        code, checks = doctor(server.base_url, "--model", "tiny-qwen3-mean", "--reference", tiny_qwen3_dir)
    finally:
        server.stop()
    assert code == 1
    assert checks["batch padding"]["status"] == "PASS" and checks["determinism"]["status"] == "PASS"
    ref = checks["vs reference"]
    assert ref["status"] == "FAIL", ref
    assert "texts at cosine >= 0.99 with LocalEmbedder; lowest" in ref["detail"]
    assert not ref["detail"].startswith("30/30")
    assert "last-token pooling" in ref["fix"]


def test_the_console_script_is_installed() -> None:
    # `pip install -e .` (make venv) installs the console script next to this interpreter
    exe = Path(sys.executable).with_name("qwen-embed")
    assert exe.exists(), f"{exe} is missing: the package is not installed in this interpreter's environment"
    out = subprocess.run([str(exe), "search", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "usage: qwen-embed search" in out.stdout


def test_ingest_and_search_on_pinecone_through_the_local_stand_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pinecone")
    from tests.support.pinecone_server import PineconeServer

    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(json.dumps({"id": f"r{i}", "text": f"row {i} about topic {i % 5}"}) + "\n" for i in range(1200)),
        encoding="utf-8",
    )
    with PineconeServer(api_key="pc-key-for-tests") as srv:
        monkeypatch.setenv("PC_TEST_KEY", "pc-key-for-tests")
        common = ["--store", "pinecone", "--uri", srv.host, "--collection", "rows", "--namespace", "ns",
                  "--pinecone-api-key-env", "PC_TEST_KEY", "--engine", "fake", "--dimensions", "16"]
        assert cli.main(["ingest", str(data), "--json", "--batch-size", "500", *common]) == 0
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert (report["written"], report["count"]) == (1200, 1200)
        assert cli.main(["ingest", str(data), "--json", *common]) == 0
        again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert (again["written"], again["skipped"], again["count"]) == (0, 1200, 1200)
        assert cli.main(["search", "row 7 about topic 2", "-k", "1", "--json", *common]) == 0
        hit = json.loads(capsys.readouterr().out)
        assert hit["id"] == "r7" and hit["text"] == "row 7 about topic 2"
    assert "pc-key-for-tests" not in json.dumps(report)


def test_search_with_another_model_of_the_same_width_exits_3_in_one_line(
    docs: Path, tmp_path: Path, tiny_qwen3_dir: str, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    """Bad input: a collection built with one tiny Qwen3, searched with another random model of the same width
    (LightRAG #1946's failure). The space card refuses it: exit 3, one line naming the fix, no traceback, and
    the store is unchanged."""
    from qwen_embed_adapters.testing import make_tiny_qwen3

    other = make_tiny_qwen3(tmp_path / "other-model", seed=1)
    common = ["--store", "faiss", "--uri", str(tmp_path / "kb")]
    assert cli.main(["ingest", str(docs), "--json", "--engine", "local", "--model", tiny_qwen3_dir, *common]) == 0
    count = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["count"]
    code = cli.main(["search", "rate limited", "--engine", "local", "--model", other, *common])
    err = capsys.readouterr().err
    assert code == EXIT_MISMATCH == 3
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "vector space mismatch" in lines[0] and "doctor --reference" in lines[0]
    assert "Traceback" not in err
    assert cli.main(["ingest", str(docs), "--json", "--engine", "local", "--model", other, *common]) == 3
    assert cli.main(["search", "rate limited", "--json", "--engine", "local", "--model", tiny_qwen3_dir,
                     *common]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert hits and count == 3
