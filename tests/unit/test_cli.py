"""`qwen-embed` without servers: help texts, `embed` with the fake engine, argument errors, the doctor's
checks and table on in-process embedders, the bundled corpus."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qwen_embed_adapters import cli
from qwen_embed_adapters.adapters.base import Hit
from qwen_embed_adapters.cli.corpus import load_corpus
from qwen_embed_adapters.cli.doctor import format_table
from qwen_embed_adapters.cli.output import format_hits
from qwen_embed_adapters.diagnostics import FAIL, PASS, SKIP, TRIPLETS, WARN, run_embedder
from qwen_embed_adapters.embedder import Embedder
from qwen_embed_adapters.testing import FakeEmbedder

FAKE = ["--engine", "fake", "--dimensions", "32"]


@pytest.mark.parametrize("command", ["embed", "ingest", "search", "doctor", "bench", "demo"])
def test_every_subcommand_has_help_with_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: qwen-embed {command}" in out and "examples:" in out and f"qwen-embed {command}" in out


def test_no_command_prints_help_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "embed" in capsys.readouterr().out


def test_embed_file_to_npy_matches_the_embedder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.txt"
    src.write_text("北京是中国的首都\n\nBeijing is the capital of China\ndef f(): pass\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    assert cli.main(["embed", str(src), "-o", str(out), *FAKE]) == 0
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == (3, 32)
    ref = FakeEmbedder(dimensions=32).embed_documents(["北京是中国的首都", "Beijing is the capital of China", "def f(): pass"])
    np.testing.assert_allclose(got, ref, atol=1e-7)
    assert "wrote 3 embeddings (32-d, float32)" in capsys.readouterr().err


def test_embed_stdin_to_jsonl_on_stdout_with_query_instruction(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("capital of China\nsort a list\n"))
    assert cli.main(["embed", "--query", "--instruction", "Find code", *FAKE]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["index"] for r in rows] == [0, 1]
    ref = FakeEmbedder(dimensions=32).embed_queries(["capital of China", "sort a list"], "Find code")
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), ref, atol=1e-6)
    # The instruction really changed the vectors.
    plain = FakeEmbedder(dimensions=32).embed_documents(["capital of China"])[0]
    assert not np.allclose(rows[0]["embedding"], plain, atol=1e-3)


def test_embed_jsonl_input_keeps_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "one"}) + "\n" + json.dumps("two") + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert cli.main(["embed", str(src), "-o", str(out), *FAKE]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("id") for r in rows] == ["a", None] and len(rows[0]["embedding"]) == 32


def test_embed_npy_to_stdout_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input: --format npy with no output file."""
    assert cli.main(["embed", "--format", "npy", *FAKE]) == 1
    assert "error: --format npy writes a binary file: pass -o FILE.npy" in capsys.readouterr().err


def test_embed_bad_jsonl_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input: the second JSONL line is not JSON."""
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "ok"}\n{nope\n', encoding="utf-8")
    assert cli.main(["embed", str(src), *FAKE]) == 1
    assert "bad.jsonl:2: not JSON" in capsys.readouterr().err


def test_remote_engine_without_url_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input: --engine remote with no --base-url and no $QWEN_EMBED_BASE_URL."""
    monkeypatch.delenv("QWEN_EMBED_BASE_URL", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("x\n"))
    assert cli.main(["embed", "--engine", "remote"]) == 1
    assert "--engine remote needs --base-url (or $QWEN_EMBED_BASE_URL)" in capsys.readouterr().err


def test_search_refuses_a_filter_that_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input: --filter "lang=zh" (not JSON)."""
    assert cli.main(["search", "q", "--filter", "lang=zh", *FAKE]) == 1
    assert "--filter must be JSON" in capsys.readouterr().err


def test_ingest_of_a_missing_path_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input: a path that does not exist."""
    assert cli.main(["ingest", str(tmp_path / "nope"), *FAKE]) == 1
    assert "no such file or directory" in capsys.readouterr().err


def test_format_hits_is_a_ranked_one_line_table() -> None:
    hits = [Hit("a", 0.91234, "first\nline"), Hit("b" * 40, 0.5, "x" * 300)]
    table = format_hits(hits, width=20).splitlines()
    assert table[0].split() == ["#", "score", "id", "text"]
    assert table[1].split()[:4] == ["1", "0.912", "a", "first"]
    assert table[2].endswith("x" * 19 + "…") and "…" in table[2].split()[2]
    assert format_hits([]) == "(no hits)"


# ---------------------------------------------------------------------------- doctor on in-process embedders
class TripletOracle(Embedder):
    """Gives each doctor triplet's anchor and similar text the same direction, the dissimilar one another."""

    engine = "fake"

    def __init__(self) -> None:
        super().__init__("oracle", dimensions=16, native_dim=16)
        self.group: dict[str, int] = {}
        for k, (_, a, p, n) in enumerate(TRIPLETS):
            self.group[a] = self.group[p] = 2 * k
            self.group[n] = 2 * k + 1

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        out = np.full((len(texts), 16), 0.01, dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, self.group.get(t, 15) % 16] += 1.0
        return out

    def to_config(self) -> dict[str, Any]:
        return {"engine": "fake"}


def test_doctor_passes_an_embedder_that_orders_every_triplet() -> None:
    checks = {c.name: c for c in run_embedder(TripletOracle(), norm_samples=50)}
    assert checks["similar > dissimilar"].status == PASS
    assert checks["similar > dissimilar"].detail.startswith(f"{len(TRIPLETS)}/{len(TRIPLETS)} triplets ordered")
    assert checks["vector norms"].status == PASS and "50 vectors" in checks["vector norms"].detail
    assert checks["base64 support"].status == SKIP
    assert checks["dimensions support"].status == WARN  # "oracle" is no known MRL model


def test_doctor_fails_an_embedder_that_cannot_tell_languages_apart(capsys: pytest.CaptureFixture[str]) -> None:
    checks = run_embedder(FakeEmbedder("Qwen3-Embedding-0.6B-fake", dimensions=64), norm_samples=20)
    pairs = next(c for c in checks if c.name == "similar > dissimilar")
    assert pairs.status == FAIL and "zh-en" in pairs.detail and "last-token pooling" in pairs.fix
    mrl = next(c for c in checks if c.name == "dimensions support")
    assert mrl.status == PASS and "32..1024" in mrl.detail
    table = format_table(checks)
    assert "similar > dissimilar  FAIL" in table
    assert "how to fix:\n" in table and "[FAIL] similar > dissimilar:" in table


def test_doctor_command_exits_1_on_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["doctor", "--engine", "fake", "--samples", "10", "--json"])
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert statuses["model loads"] == PASS and statuses["similar > dissimilar"] == FAIL


def test_doctor_reports_a_model_that_does_not_load(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input: --model pointing at a folder that does not exist."""
    code = cli.main(["doctor", "--model", "/nonexistent/Qwen3-Embedding-0.6B", "--engine", "local"])
    out = capsys.readouterr().out
    if "needs the package" in out:  # no torch in this environment
        pytest.skip("the local extra is not installed")
    assert code == 1
    assert "model loads  FAIL" in out and "huggingface-cli download" in out


# ---------------------------------------------------------------------------- the bundled corpus
def test_bundled_corpus_is_a_few_hundred_multilingual_chunks() -> None:
    recs = load_corpus()
    assert len(recs) == 300
    assert len({r["id"] for r in recs}) == 300 and len({r["text"] for r in recs}) == 300
    kinds: dict[str, int] = {}
    for r in recs:
        key = r["metadata"]["lang"] if r["metadata"]["kind"] == "passage" else "code"
        kinds[key] = kinds.get(key, 0) + 1
    assert kinds["zh"] >= 100 and kinds["en"] >= 100 and kinds["code"] >= 50
    assert all(set(r) == {"id", "text", "metadata"} for r in recs)


# ---------------------------------------------------------------------------- doctor: engine families and their fixes
def test_doctor_recognises_the_engine_from_its_models_answer_and_gives_its_fix() -> None:
    import httpx

    from qwen_embed_adapters.diagnostics import FIXES, Probe

    with httpx.Client() as client:
        probe = Probe(client, "http://127.0.0.1:1", "m")
        probe.first = httpx.Response(200, json={"data": [{"embedding": [1.0]}]})
        probe.recognise({"object": "list", "data": [{"id": "m", "owned_by": "llamacpp"}]})
        assert probe.family == "llamacpp"
        # llama.cpp's own advice first, the general one after it
        assert probe.fix("reference") == ("Start llama-server with --embeddings --pooling last for Qwen3 "
                                          "(mean pooling is wrong). " + FIXES["reference"])
        # the engine's own words replace the general "dimensions" advice
        assert probe.fix("dimensions").startswith("llama.cpp ignores `dimensions`")
        assert probe.fix("padding") == FIXES["padding"]  # no llama.cpp-specific advice


def test_doctor_leaves_the_family_unknown_when_nothing_tells() -> None:
    import httpx

    from qwen_embed_adapters.diagnostics import FIXES, Diagnosis, Probe

    with httpx.Client() as client:
        probe = Probe(client, "http://127.0.0.1:1", "m")
        probe.first = httpx.Response(200, json={"data": [{"embedding": [1.0]}]})
        probe.recognise({"data": [{"id": "m", "owned_by": "someone"}]})
        assert probe.family is None and probe.fix("dimensions") == FIXES["dimensions"]
    report = Diagnosis("endpoint x", []).to_dict()
    assert report == {"target": "endpoint x", "engine_family": None, "endpoint_url": None, "checks": []}


def test_doctor_route_advice_names_the_engines_of_each_route() -> None:
    from qwen_embed_adapters.diagnostics import FIXES

    assert ("TEI, vLLM, SGLang, Ollama, llama.cpp server and `qwen-embed serve` answer on /v1/embeddings; "
            "Infinity answers on /embeddings by default (/v1/embeddings with --url-prefix /v1)") in FIXES["path"]


def test_ingest_builds_the_keyword_side_and_search_takes_a_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("bm25s")
    pytest.importorskip("faiss")
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in (("a", "The server answered ERR_QUOTA_EXCEEDED after 100 requests."),
                       ("b", "向量数据库支持混合检索。"), ("c", "Paris is the capital of France.")):
        (docs / f"{name}.md").write_text(text + "\n", encoding="utf-8")
    store = ["--store", "faiss", "--uri", str(tmp_path / "kb"), *FAKE]
    assert cli.main(["ingest", str(docs), "--json", "--no-progress", *store]) == 0
    manifest = json.loads((tmp_path / "kb" / "store.json").read_text(encoding="utf-8"))
    assert manifest["files"]["keywords"] == "keywords-1.jsonl"  # built by ingest, saved with the index
    capsys.readouterr()
    assert cli.main(["search", "ERR_QUOTA_EXCEEDED", "--mode", "keyword", "--json", *store]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 1 and "ERR_QUOTA_EXCEEDED" in hits[0]["text"]
    assert hits[0]["keyword_score"] == hits[0]["score"] and "vector_score" not in hits[0]
    assert cli.main(["search", "混合检索", "--mode", "hybrid", "--json", "-k", "3", *store]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 3 and hits[0]["text"] == "向量数据库支持混合检索。" and "keyword_score" in hits[0]
    # bad input tried: an unknown mode
    with pytest.raises(SystemExit):
        cli.main(["search", "x", "--mode", "sparse", *store])
    assert "invalid choice: 'sparse'" in capsys.readouterr().err


def test_serve_gathers_many_requests_per_model_call_on_a_cpu() -> None:
    # measured in docs/benchmarks.md ("Serving side by side"): the gatherer puts up to 8,192 tokens of requests
    # in one model call; the call cuts its passes by LocalEmbedder's load-aware default (1,024 on quiet cores)
    from qwen_embed_adapters.cli.serve import _serve_gather_tokens
    from qwen_embed_adapters.errors import ConfigurationError
    from qwen_embed_adapters.server.settings import SERVE_CPU_GATHER_TOKENS

    assert SERVE_CPU_GATHER_TOKENS == 8192
    assert _serve_gather_tokens("cpu", None) == 8192
    assert _serve_gather_tokens("cpu", 1024) == 8192  # a smaller pass budget still gathers 8,192 tokens
    assert _serve_gather_tokens("cpu", 32768) == 32768  # a larger one is never cut by the gatherer
    with pytest.raises(ConfigurationError, match="not a torch device"):  # bad input: not a device name
        _serve_gather_tokens("toaster", None)
