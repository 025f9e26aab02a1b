"""LocalEmbedder on the tiny random Qwen3 and the real all-MiniLM-L6-v2, against independent references."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
F = torch.nn.functional

from qwen_embed_adapters import embedder_from_config  # noqa: E402
from qwen_embed_adapters.errors import (  # noqa: E402
    ConfigurationError,
    InvalidInputError,
    MissingDependencyError,
)
from qwen_embed_adapters.local import (  # noqa: E402
    LocalEmbedder,
    plan_token_batches,
    resolve_attn_implementation,
    resolve_device,
    resolve_dtype,
    resolve_model_path,
)
from qwen_embed_adapters.testing import _build_tiny_qwen3_tokenizer, make_tiny_qwen3  # noqa: E402
from tests.support import local_fixtures  # noqa: E402

tiny_qwen3_dir = local_fixtures.tiny_qwen3_dir
minilm_dir = local_fixtures.minilm_dir

TASK = "Given a web search query, retrieve relevant passages that answer the query"
MIXED = [
    "Beijing is the capital of China",
    "机器学习是人工智能的一个分支,向量数据库存储嵌入",
    "ok",
    "The quick brown fox jumps over the lazy dog. " * 30,
    "Milvus, Chroma, Pinecone and FAISS all store vectors.",
]


# ---------------------------------------------------------------- the reference, straight from the README
def last_token_pool(last_hidden_states, attention_mask):  # type: ignore[no-untyped-def]
    left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
    if left_padding:
        return last_hidden_states[:, -1]
    sequence_lengths = attention_mask.sum(dim=1) - 1
    batch_size = last_hidden_states.shape[0]
    return last_hidden_states[torch.arange(batch_size, device=last_hidden_states.device), sequence_lengths]


def get_detailed_instruct(task_description: str, query: str) -> str:
    return f"Instruct: {task_description}\nQuery:{query}"


def readme_embed(path: str, texts: list[str], padding_side: str = "left", max_length: int = 8192) -> np.ndarray:
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, padding_side=padding_side)
    model = transformers.AutoModel.from_pretrained(path).eval()
    batch_dict = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**batch_dict)
    embeddings = last_token_pool(outputs.last_hidden_state, batch_dict["attention_mask"])
    return F.normalize(embeddings, p=2, dim=1).numpy()


@pytest.fixture(scope="module")
def tiny(tiny_qwen3_dir: str) -> LocalEmbedder:
    return LocalEmbedder(tiny_qwen3_dir, device="cpu")


# ---------------------------------------------------------------- make_tiny_qwen3
def test_make_tiny_qwen3_is_deterministic_and_behaves_like_qwen3(tmp_path: Path) -> None:
    a = make_tiny_qwen3(tmp_path / "a", seed=0)
    b = make_tiny_qwen3(tmp_path / "b", seed=0)
    c = make_tiny_qwen3(tmp_path / "c", seed=1)
    read = lambda p: (Path(p) / "model.safetensors").read_bytes()  # noqa: E731
    assert read(a) == read(b)
    assert read(a) != read(c)
    assert (Path(a) / "tokenizer.json").read_bytes() == (Path(b) / "tokenizer.json").read_bytes()
    cfg = json.loads((Path(a) / "config.json").read_text())
    assert (cfg["model_type"], cfg["hidden_size"]) == ("qwen3", 64)
    tok = transformers.AutoTokenizer.from_pretrained(a)
    assert tok.padding_side == "left"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    enc = tok(["hi", "a longer text here"], padding=True)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    assert [row[-1] for row in enc["input_ids"]] == [eot, eot]  # appended by the tokenizer itself
    assert enc["attention_mask"][0][0] == 0 and enc["attention_mask"][0][-1] == 1  # padded on the left
    assert type(transformers.AutoModel.from_pretrained(a)).__name__ == "Qwen3Model"


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_tiny_qwen3_equals_readme_reference(tiny: LocalEmbedder, tiny_qwen3_dir: str, padding_side: str) -> None:
    ref = readme_embed(tiny_qwen3_dir, MIXED, padding_side)
    np.testing.assert_allclose(tiny.embed_documents(MIXED), ref, atol=1e-5)


def test_queries_equal_readme_reference(tiny: LocalEmbedder, tiny_qwen3_dir: str) -> None:
    queries = ["What is the capital of China?", "Explain gravity"]
    ref = readme_embed(tiny_qwen3_dir, [get_detailed_instruct(TASK, q) for q in queries])
    np.testing.assert_allclose(tiny.embed_queries(queries), ref, atol=1e-5)
    np.testing.assert_allclose(tiny.embed_query(queries[1]), ref[1], atol=1e-5)
    assert tiny.query_instruction == TASK  # read from the folder's sentence-transformers prompts


def test_text_alone_equals_text_in_mixed_batch(tiny: LocalEmbedder) -> None:
    batch = tiny.embed_documents(MIXED)
    for i, text in enumerate(MIXED):
        np.testing.assert_allclose(tiny.embed_documents([text])[0], batch[i], atol=1e-5)


def test_minilm_equals_sentence_transformers(minilm_dir: str) -> None:
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(minilm_dir, device="cpu")
    texts = [*MIXED, "word " * 400]  # the last one is cut at MiniLM's 256 tokens by both
    ref = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    emb = LocalEmbedder(minilm_dir, device="cpu")
    assert emb.pooling.modes == ("mean",) and emb.padding_side == "right" and emb.max_length == 256
    assert emb.dimension == 384
    got = emb.embed_documents(texts)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(emb.embed_documents([text])[0], got[i], atol=1e-5)
    assert emb.query_instruction == ""  # not a Qwen3 model: queries are not wrapped
    np.testing.assert_allclose(emb.embed_query("capital of China"), emb.embed_documents(["capital of China"])[0])


def test_tiny_qwen3_equals_sentence_transformers(tiny_qwen3_dir: str, tiny: LocalEmbedder) -> None:
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(tiny_qwen3_dir, device="cpu")
    np.testing.assert_allclose(tiny.embed_documents(MIXED), model.encode(MIXED, normalize_embeddings=True),
                               atol=1e-5)
    np.testing.assert_allclose(tiny.embed_queries(MIXED[:2]),
                               model.encode(MIXED[:2], prompt_name="query", normalize_embeddings=True), atol=1e-5)


# ---------------------------------------------------------------- MRL and dimension
def test_mrl_truncates_then_renormalises(tiny_qwen3_dir: str, tiny: LocalEmbedder) -> None:
    small = LocalEmbedder(tiny_qwen3_dir, device="cpu", dimensions=16)
    assert small.dimension == 16 and small.dimension_if_known == 16
    full = readme_embed(tiny_qwen3_dir, MIXED)[:, :16]
    np.testing.assert_allclose(small.embed_documents(MIXED), full / np.linalg.norm(full, axis=1, keepdims=True),
                               atol=1e-5)


def test_dimensions_above_native_is_an_error(tiny_qwen3_dir: str) -> None:
    """Bad input: dimensions=65 for a 64-d model."""
    with pytest.raises(ConfigurationError, match=r"dimensions=65 is above the native dimension 64"):
        LocalEmbedder(tiny_qwen3_dir, device="cpu", dimensions=65)


def test_dimension_is_known_without_a_forward_pass(tiny_qwen3_dir: str) -> None:
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu")
    calls: list[int] = []
    emb._embed_batch = lambda texts: calls.append(1)  # type: ignore[method-assign,assignment,func-returns-value]
    assert emb.dimension == 64 and emb.dimension_if_known == 64
    assert calls == []


# ---------------------------------------------------------------- tokens, truncation, batching
def test_plan_token_batches_sorts_and_respects_the_budget() -> None:
    lengths = [5, 300, 20, 20, 1000, 7, 150]
    batches = plan_token_batches(lengths, max_batch_tokens=400, max_batch_size=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches[0] == [4]  # longer than the budget: alone
    for b in batches:
        assert len(b) <= 3
        if len(b) > 1:
            assert len(b) * max(lengths[i] for i in b) <= 400
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)


def test_small_token_budget_gives_the_same_vectors(tiny_qwen3_dir: str, tiny: LocalEmbedder) -> None:
    small = LocalEmbedder(tiny_qwen3_dir, device="cpu", max_batch_tokens=64)
    texts = MIXED * 3
    plan = small._plan_batches(texts)
    assert len(plan) > 3
    np.testing.assert_allclose(small.embed_documents(texts), tiny.embed_documents(texts), atol=1e-5)


def test_truncation_keeps_the_end_token(tiny_qwen3_dir: str) -> None:
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu", max_length=16)
    long_text = MIXED[3]
    ids = emb.tokenize([long_text])[0]
    assert len(ids) == 16 and ids[-1] == emb.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ref = readme_embed(tiny_qwen3_dir, [long_text, "ok"], max_length=16)
    np.testing.assert_allclose(emb.embed_documents([long_text, "ok"]), ref, atol=1e-5)


def test_truncate_false_refuses_over_long_input(tiny_qwen3_dir: str) -> None:
    """Bad input: the third text is longer than max_length=16 and truncation is off."""
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu", max_length=16, truncate=False)
    with pytest.raises(InvalidInputError, match=r"texts\[2\] is \d+ tokens long, above max_length=16") as info:
        emb.embed_documents(["ok", "fine", MIXED[3]])
    assert info.value.index == 2
    assert emb.embed_documents(["ok"]).shape == (1, 64)


def test_end_token_is_appended_when_the_tokenizer_does_not(tmp_path: Path, tiny: LocalEmbedder) -> None:
    folder = tmp_path / "no-eot"
    shutil.copytree(tiny.path, folder)
    _build_tiny_qwen3_tokenizer(folder, append_eos=False)
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert tok("hi")["input_ids"][-1] != tok.convert_tokens_to_ids("<|endoftext|>")
    emb = LocalEmbedder(str(folder), device="cpu")
    np.testing.assert_allclose(emb.embed_documents(MIXED), tiny.embed_documents(MIXED), atol=1e-5)


def test_right_padding_option_gives_the_same_vectors(tiny_qwen3_dir: str, tiny: LocalEmbedder) -> None:
    right = LocalEmbedder(tiny_qwen3_dir, device="cpu", padding_side="right")
    np.testing.assert_allclose(right.embed_documents(MIXED), tiny.embed_documents(MIXED), atol=1e-5)


@pytest.mark.parametrize("bad", [None, ["ok", None], ["ok", 3], ["ok", ""], "a plain string"])
def test_bad_inputs_name_the_item(tiny: LocalEmbedder, bad: object) -> None:
    """Bad input: None, a None item, a non-str item, an empty string, a bare str instead of a list."""
    with pytest.raises(InvalidInputError) as info:
        tiny.embed_documents(bad)  # type: ignore[arg-type]
    if isinstance(bad, list):
        assert info.value.index == 1 and "[1]" in str(info.value)


# ---------------------------------------------------------------- threads and async
def test_threads_share_one_model(tiny: LocalEmbedder) -> None:
    texts = [f"thread text {i} " + "x " * (i * 3) for i in range(40)]
    expected = tiny.embed_documents(texts)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for _ in range(3):
                results[k] = tiny.embed_documents(texts[k::4])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for k in range(4):
        np.testing.assert_allclose(results[k], expected[k::4], atol=1e-5)


async def test_async_twins_run_off_the_event_loop(tiny_qwen3_dir: str) -> None:
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu")
    expected = emb.embed_documents(MIXED)  # the sync API works inside a running loop
    np.testing.assert_allclose(await emb.aembed_documents(MIXED), expected, atol=1e-5)
    np.testing.assert_allclose(await emb.aembed_query("x"), emb.embed_query("x"), atol=1e-5)

    loop_ran = threading.Event()
    original = emb._embed_batch

    def waiting_batch(texts: list[str]) -> np.ndarray:
        # Only a free event loop can set the event; a blocked loop leaves this waiting until the timeout.
        seen = loop_ran.wait(timeout=20)
        assert seen, "the event loop was blocked while the model ran"
        return original(texts)

    emb._embed_batch = waiting_batch  # type: ignore[method-assign]

    async def ticker() -> None:
        await asyncio.sleep(0.01)
        loop_ran.set()

    got, _ = await asyncio.gather(emb.aembed_documents(MIXED), ticker())
    np.testing.assert_allclose(got, expected, atol=1e-5)


def _scripted_cpu(monkeypatch: pytest.MonkeyPatch, load: list[float]) -> list[tuple[float, float, float]]:
    """Readings ``CpuPassWatch`` takes in turn, (time, machine busy CPU s, our CPU s), on 2 cores, with a fresh
    verdict; the load average (what decides before passes are measured) is ``load[0]``."""
    from qwen_embed_adapters.local import tokens

    script: list[tuple[float, float, float]] = []
    monkeypatch.setattr(tokens, "_watch", tokens._CpuWatch())
    monkeypatch.setattr(tokens, "_cpu_reading", lambda: script.pop(0))
    monkeypatch.setattr(tokens.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(tokens.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(tokens.os, "getloadavg", lambda: (load[0], 0.0, 0.0))
    return script


def _pass(script: list[tuple[float, float, float]], start: tuple[float, float, float],
          end: tuple[float, float, float]) -> None:
    from qwen_embed_adapters.local.tokens import CpuPassWatch

    script += [start, end]
    with CpuPassWatch():
        pass
    assert script == []


def test_default_token_budget_follows_other_work_during_passes_and_stays_out_of_the_config(
    tiny_qwen3_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qwen_embed_adapters.local import default_batch_tokens

    assert [default_batch_tokens("cpu", shared=False), default_batch_tokens("cpu", shared=True)] == [1024, 8192]
    assert [default_batch_tokens(d, shared=s) for d in ("cuda", "mps") for s in (False, True)] == [16384] * 4
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu")
    load = [0.5]
    script = _scripted_cpu(monkeypatch, load)
    assert emb.max_batch_tokens == 1024  # no pass measured yet: the load average (0.5 on 2 cores)
    load[0] = 3.5  # 2 cores: our 2 threads and 1.5 more runnable on average
    assert emb.max_batch_tokens == 8192  # decided per call, not when the embedder was built
    load[0] = 3.0  # the boundary, cores + 1, is still "alone"
    assert emb.max_batch_tokens == 1024
    load[0] = 3.5
    _pass(script, (0.0, 0.0, 0.0), (0.3, 0.6, 0.6))  # 0.3 s of pass, all the busy CPU ours
    assert emb.max_batch_tokens == 8192  # under SHARED_CHECK_S of passes measured: still the load average
    # between passes the machine was busy 10 s more (a client reading its answers): not counted
    _pass(script, (1.0, 10.6, 0.6), (1.3, 11.2, 0.9))  # 0.3 core of other work: 0.3 CPU s in 0.6 s of passes
    assert emb.max_batch_tokens == 1024  # 0.5 core is not above half a core: the load average is overruled
    _pass(script, (2.0, 12.0, 1.0), (2.5, 13.0, 1.5))  # 1.0 core of others: two busy loops beside our 2 threads
    assert emb.max_batch_tokens == 8192
    load[0] = 0.0
    _pass(script, (3.0, 14.0, 2.0), (3.6, 15.3, 2.5))  # we ran one thread; others still 1.3 cores
    assert emb.max_batch_tokens == 8192
    assert emb.to_config()["max_batch_tokens"] is None  # rebuilt elsewhere, it picks that device's default
    assert LocalEmbedder(tiny_qwen3_dir, device="cpu", max_batch_tokens=16384).max_batch_tokens == 16384


def test_cpu_is_shared_falls_back_to_the_load_average(monkeypatch: pytest.MonkeyPatch) -> None:
    from qwen_embed_adapters.local import cpu_is_shared, tokens

    load = [3.5]
    script = _scripted_cpu(monkeypatch, load)
    monkeypatch.setattr(tokens, "_cpu_reading", lambda: None)  # no /proc/stat (macOS): passes are not measured
    with tokens.CpuPassWatch():
        pass
    assert script == [] and tokens._watch.wall == 0.0
    assert cpu_is_shared() is True
    load[0] = 3.0
    assert cpu_is_shared() is False

    def no_load() -> tuple[float, float, float]:
        raise OSError("no load average")  # what os.getloadavg raises where it cannot be read

    monkeypatch.setattr(tokens.os, "getloadavg", no_load)
    assert cpu_is_shared() is False


def test_busy_ticks_read_the_whole_machine_or_only_our_cpus() -> None:
    """/proc/stat as proc(5) lays it out: busy is every column of the first eight but idle and iowait."""
    from qwen_embed_adapters.local.tokens import _busy_ticks

    stat = ["cpu  100 1 50 900 9 2 3 4 0 0", "cpu0 60 1 30 400 5 1 2 2 0 0", "cpu1 40 0 20 500 4 1 1 2 0 0",
            "intr 12345 0 0", "ctxt 999"]
    assert _busy_ticks(stat, None) == 100 + 1 + 50 + 2 + 3 + 4
    assert _busy_ticks(stat, frozenset({1})) == 40 + 0 + 20 + 1 + 1 + 2  # pinned to cpu1: cpu0's work is not ours
    assert _busy_ticks(stat, frozenset({0, 1})) == _busy_ticks(stat, None)
    # bad input: a /proc/stat of another shape (a short cpu line, no cpu lines) is no reading
    assert _busy_ticks(["cpu  1 2 3"], None) is None
    assert _busy_ticks(["intr 1 2 3"], None) is None
    assert _busy_ticks(stat, frozenset({7})) is None  # a CPU /proc/stat does not list


@pytest.mark.skipif(not Path("/proc/stat").exists() or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux's /proc/stat and two CPUs to pin to")
@pytest.mark.parametrize(("busy_cpu", "shared"), [(1, False), (0, True)])
def test_cpu_is_shared_counts_only_the_cores_the_process_is_pinned_to(
    monkeypatch: pytest.MonkeyPatch, busy_cpu: int, shared: bool
) -> None:
    """A server pinned to cpu0 (taskset, a container's cpuset) with a busy process on cpu1 has its core to itself;
    the same busy process on cpu0 shares it. Before, the whole machine's busy time counted in both cases."""
    import time

    from qwen_embed_adapters.local import tokens

    monkeypatch.setattr(tokens, "_watch", tokens._CpuWatch())
    code = f"import os, time\nos.sched_setaffinity(0, {{{busy_cpu}}})\nt = time.time()\nwhile time.time() - t < 20: pass"
    busy = subprocess.Popen([sys.executable, "-c", code])
    mask = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {0})
        time.sleep(0.5)  # started and pinned
        with tokens.CpuPassWatch():
            time.sleep(0.6)
        assert tokens._watch.shared is shared
    finally:
        os.sched_setaffinity(0, mask)
        busy.kill()
        busy.wait()


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="the CPU-time reading is Linux's /proc/stat")
def test_cpu_is_shared_sees_busy_processes_during_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two busy child processes through a 0.6 s "pass" of ours (a sleep): at least a core of other work."""
    import time

    from qwen_embed_adapters.local import cpu_is_shared, tokens

    monkeypatch.setattr(tokens, "_watch", tokens._CpuWatch())
    monkeypatch.setattr(tokens.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(tokens.os, "cpu_count", lambda: 2)
    assert cpu_is_shared() is False  # nothing measured: the (patched) load average
    busy = [subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 20: pass"])
            for _ in range(2)]
    try:
        time.sleep(0.5)  # started
        with tokens.CpuPassWatch():
            time.sleep(0.6)
        assert tokens._watch.shared is True
        assert cpu_is_shared() is True
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()


def test_cpu_passes_are_measured(tiny: LocalEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    from qwen_embed_adapters.local import tokens

    readings: list[object] = []
    real = tokens._cpu_reading
    monkeypatch.setattr(tokens, "_watch", tokens._CpuWatch())
    monkeypatch.setattr(tokens, "_cpu_reading", lambda: readings.append(1) or real())
    tiny.embed_documents(["one", "two"])
    assert len(readings) == 2 * len(tiny._plan_batches(["one", "two"]))  # before and after every pass


@pytest.fixture
def two_torch_threads() -> Iterator[Any]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield torch
    torch.set_num_threads(before)


def test_small_passes_run_on_one_thread_on_a_shared_cpu(
    tiny_qwen3_dir: str, monkeypatch: pytest.MonkeyPatch, two_torch_threads: Any
) -> None:
    from qwen_embed_adapters.local import ONE_THREAD_PASS_TOKENS, tokens

    torch = two_torch_threads
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu", max_batch_tokens=4096)
    seen: list[int] = []
    emb._runtime.model.register_forward_pre_hook(lambda module, args: seen.append(torch.get_num_threads()))
    short = ["a short query about vectors"]
    long = [" ".join(["vector"] * 200)] * 8  # one pass of more than ONE_THREAD_PASS_TOKENS padded tokens
    assert len(emb._plan_batches(long)) == 1 and 8 * emb.token_counts(long[:1])[0] > ONE_THREAD_PASS_TOKENS
    monkeypatch.setattr(tokens, "cpu_is_shared", lambda: False)
    alone = emb.embed_documents(short + long[:1])
    emb.embed_documents(long)
    monkeypatch.setattr(tokens, "cpu_is_shared", lambda: True)
    shared = emb.embed_documents(short + long[:1])
    emb.embed_documents(long)
    assert seen == [2, 2, 1, 2]
    assert torch.get_num_threads() == 2  # restored after the pass
    np.testing.assert_allclose(shared, alone, atol=1e-6)  # one thread sums in another order: same vectors

    def broken(module: object, args: object) -> None:
        raise RuntimeError("forward failed")

    emb._runtime.model.register_forward_pre_hook(broken)
    with pytest.raises(RuntimeError, match="forward failed"):
        emb.embed_documents(short)
    assert torch.get_num_threads() == 2  # restored when the pass raises too


def test_a_shared_cpu_cuts_fewer_passes(tiny_qwen3_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from qwen_embed_adapters.local import tokens

    monkeypatch.setattr(tokens, "cpu_is_shared", lambda: True)
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu")
    texts = [" ".join(["vector"] * 200)] * 40
    n = emb.token_counts(texts[:1])[0]
    assert 100 < n < 1024
    assert len(emb._plan_batches(texts)) == -(-40 // (8192 // n))
    monkeypatch.setattr(tokens, "cpu_is_shared", lambda: False)
    assert len(emb._plan_batches(texts)) == -(-40 // (1024 // n))
    assert -(-40 // (8192 // n)) < -(-40 // (1024 // n))


# ---------------------------------------------------------------- config, model resolution, dependencies
def test_config_round_trip(tiny_qwen3_dir: str) -> None:
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu", dimensions=32, query_instruction="Find it",
                        max_length=128, max_batch_tokens=512)
    cfg = emb.to_config()
    assert cfg == {
        "engine": "local", "model": tiny_qwen3_dir, "device": "cpu", "dtype": "auto", "dimensions": 32,
        "query_instruction": "Find it", "max_length": 128, "max_batch_tokens": 512, "batch_size": 256,
        "truncate": True, "attn_implementation": None, "padding_side": None, "backend": "torch",
    }
    again = embedder_from_config(json.loads(json.dumps(cfg)))
    assert isinstance(again, LocalEmbedder)
    np.testing.assert_allclose(again.embed_query("q"), emb.embed_query("q"), atol=1e-6)
    with pytest.raises(ConfigurationError, match=r"unknown LocalEmbedder settings: \['colour'\]"):
        LocalEmbedder.from_config({**cfg, "colour": "red"})


def test_missing_model_names_every_place_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Bad input: a model that is in no folder, no cache and (offline) not on the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    with pytest.raises(ConfigurationError) as info:
        resolve_model_path("Qwen/Qwen3-Embedding-404B")
    msg = str(info.value)
    for place in ["local folder 'Qwen/Qwen3-Embedding-404B'", "Hugging Face cache", "ModelScope cache",
                  str(tmp_path / "ms" / "Qwen" / "Qwen3-Embedding-404B"), "Hugging Face hub (skipped"]:
        assert place in msg


def test_model_from_env_and_modelscope_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             tiny_qwen3_dir: str) -> None:
    monkeypatch.setenv("QWEN_EMBED_MODEL", tiny_qwen3_dir)
    assert resolve_model_path(None) == Path(tiny_qwen3_dir).resolve()
    assert LocalEmbedder(device="cpu").model == tiny_qwen3_dir
    ms = tmp_path / "ms"
    shutil.copytree(tiny_qwen3_dir, ms / "Qwen" / "Qwen3-Embedding-0___6B")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(ms))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_path("Qwen/Qwen3-Embedding-0.6B") == ms / "Qwen" / "Qwen3-Embedding-0___6B"
    assert resolve_model_path("Qwen3-Embedding-0.6B") == ms / "Qwen" / "Qwen3-Embedding-0___6B"


def test_model_from_hugging_face_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_qwen3_dir: str) -> None:
    hub = pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hf"
    snap = cache / "models--Qwen--Qwen3-Embedding-4B" / "snapshots" / "abc123"
    shutil.copytree(tiny_qwen3_dir, snap)
    (cache / "models--Qwen--Qwen3-Embedding-4B" / "refs").mkdir()
    (cache / "models--Qwen--Qwen3-Embedding-4B" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_path("Qwen/Qwen3-Embedding-4B") == snap


def test_missing_torch_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch, tiny_qwen3_dir: str) -> None:
    """Bad input: torch is not installed (hidden from the import system)."""
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError) as info:
        LocalEmbedder(tiny_qwen3_dir)
    assert info.value.package == "torch"
    assert 'pip install "qwen-embed-adapters[local]"' in str(info.value)


def test_importing_the_package_does_not_import_torch() -> None:
    code = ("import sys, qwen_embed_adapters, qwen_embed_adapters.local, qwen_embed_adapters.server; "
            "print('torch' in sys.modules, 'transformers' in sys.modules, 'fastapi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert out.stdout.split() == ["False", "False", "False"]


def test_sentence_transformers_folder_settings(tmp_path: Path, tiny: LocalEmbedder) -> None:
    folder = tmp_path / "cls-model"
    shutil.copytree(tiny.path, folder)
    pool = json.loads((folder / "1_Pooling" / "config.json").read_text())
    pool.update(pooling_mode_lasttoken=False, pooling_mode_mean_tokens=True, pooling_mode_max_tokens=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pool))
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": "passage: "}}))
    emb = LocalEmbedder(str(folder), device="cpu", padding_side="right")
    assert emb.pooling.modes == ("max", "mean") and emb.dimension == 128
    np.testing.assert_allclose(emb.embed_query("x"), emb.embed_texts(["query: x"])[0], atol=1e-6)
    np.testing.assert_allclose(emb.embed_documents(["x"]), emb.embed_texts(["passage: x"]), atol=1e-6)
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(folder), device="cpu").encode(["x", MIXED[0]], prompt_name="document",
                                                                    normalize_embeddings=True)
    np.testing.assert_allclose(emb.embed_documents(["x", MIXED[0]]), ref, atol=1e-5)


def test_unsupported_sentence_transformers_module(tmp_path: Path, tiny: LocalEmbedder) -> None:
    """Bad input: a modules.json with a Dense module LocalEmbedder does not implement."""
    folder = tmp_path / "dense"
    shutil.copytree(tiny.path, folder)
    mods = json.loads((folder / "modules.json").read_text())
    mods.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(mods))
    with pytest.raises(ConfigurationError, match="sentence_transformers.models.Dense"):
        LocalEmbedder(str(folder), device="cpu")


# ---------------------------------------------------------------- device, dtype, attention (CUDA branches)
class _FakeCuda:
    def __init__(self, available: bool, bf16: bool) -> None:
        self._a, self._b = available, bf16

    def is_available(self) -> bool:
        return self._a

    def is_bf16_supported(self) -> bool:
        return self._b


def test_device_and_dtype_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "cuda", _FakeCuda(True, True))
    assert resolve_device(torch, "auto") == "cuda"
    assert resolve_dtype(torch, "auto", "cuda") is torch.bfloat16
    monkeypatch.setattr(torch, "cuda", _FakeCuda(True, False))
    assert resolve_dtype(torch, "auto", "cuda:1") is torch.float16
    monkeypatch.setattr(torch, "cuda", _FakeCuda(False, False))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device(torch, "auto") == "cpu"
    assert resolve_dtype(torch, "auto", "cpu") is torch.float32
    assert resolve_dtype(torch, "bf16", "cpu") is torch.bfloat16
    assert resolve_attn_implementation(torch, "cpu", torch.float32) == "sdpa"
    with pytest.raises(ConfigurationError, match="no CUDA device"):
        resolve_device(torch, "cuda")
    with pytest.raises(ConfigurationError, match="dtype 'int8'"):
        resolve_dtype(torch, "int8", "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_auto_uses_half_precision_and_matches_cpu(tiny_qwen3_dir: str, tiny: LocalEmbedder) -> None:
    emb = LocalEmbedder(tiny_qwen3_dir, device="auto")
    assert emb.device == "cuda"
    assert emb.torch_dtype in (torch.bfloat16, torch.float16)
    np.testing.assert_allclose(emb.embed_documents(MIXED), tiny.embed_documents(MIXED), atol=3e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp32_matches_cpu(tiny_qwen3_dir: str, tiny: LocalEmbedder) -> None:
    emb = LocalEmbedder(tiny_qwen3_dir, device="cuda", dtype="float32")
    np.testing.assert_allclose(emb.embed_documents(MIXED), tiny.embed_documents(MIXED), atol=1e-4)


def test_quickstart_example_runs_offline(capsys: pytest.CaptureFixture[str], tiny_qwen3_dir: str) -> None:
    import runpy

    module = runpy.run_path(str(Path(__file__).resolve().parents[2] / "examples" / "local_quickstart.py"))
    module["main"](tiny_qwen3_dir)
    out = capsys.readouterr().out
    assert "64-d, pooling lasttoken, padding left" in out
    assert out.count("\n+") + out.count("\n-") >= 2  # three scored documents


def test_backend_and_runtime_interface(tiny: LocalEmbedder, tiny_qwen3_dir: str) -> None:
    """Bad input: an unknown backend. The runtime takes numpy batches: padding is runtime-neutral."""
    from qwen_embed_adapters.local import TorchRuntime, pad_batch

    with pytest.raises(ConfigurationError, match="backend must be one of 'torch', got 'onnx'"):
        LocalEmbedder(tiny_qwen3_dir, device="cpu", backend="onnx")
    assert tiny.backend == "torch" and tiny.to_config()["backend"] == "torch"
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0, side="left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids_r, mask_r = pad_batch([[5, 6, 7], [8]], pad_id=9, side="right")
    assert ids_r.tolist() == [[5, 6, 7], [8, 9, 9]] and mask_r.tolist() == [[1, 1, 1], [1, 0, 0]]
    runtime = TorchRuntime(tiny.path, device="cpu", dtype="float32")
    texts = ["Beijing is the capital of China", "ok"]
    ids, mask = pad_batch(tiny.tokenize(texts), tiny._pad_id, "left")
    raw = runtime.run(ids, mask, ("lasttoken",))
    raw = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(raw, tiny.embed_documents(texts), atol=1e-6)


# ---------------------------------------------------------------- tokens counted once (qwen-embed serve)
def test_counted_texts_are_not_tokenised_again(tiny_qwen3_dir: str, tiny: LocalEmbedder) -> None:
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu", max_length=16)
    long_text = MIXED[3]  # over 16 tokens: counted in full, kept out of the memo, truncated when embedded
    texts = ["short one", long_text, "机器学习"]
    counts = emb.count_tokens(texts)
    assert counts[1] > 16 and counts[0] == len(emb.tokenize(["short one"])[0])
    assert len(emb._memo) == 2
    calls: list[list[str]] = []
    real = emb._tokens

    def spy(batch: list[str], *, truncate: bool = True) -> list[list[int]]:
        calls.append(list(batch))
        return real(batch, truncate=truncate)

    emb._tokens = spy  # type: ignore[assignment]
    got = emb.embed_texts(texts)
    assert calls == [[long_text]]  # only the text the memo could not hold
    assert len(emb._memo) == 0  # handed over once, then forgotten
    emb._tokens = real
    np.testing.assert_allclose(got, emb.embed_texts(texts), atol=1e-6)  # same vectors without the memo


def test_token_memo_is_bounded() -> None:
    from qwen_embed_adapters.local.tokens import TokenMemo

    memo = TokenMemo(capacity_tokens=10)
    memo.put(["a", "b", "c"], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], max_length=8)
    assert len(memo) == 2  # 12 tokens > 10: the oldest ("a") dropped
    memo.put(["long"], [list(range(9))], max_length=8)  # over max_length: would need truncating, not kept
    assert memo.take(["a", "c", "long", "c"]) == [None, [9, 10, 11, 12], None, None]
    assert memo.take(["b"]) == [[5, 6, 7, 8]] and len(memo) == 0


def test_token_memo_keeps_a_text_counted_twice_for_two_uses() -> None:
    """Two waiting requests carrying the same text (or one request carrying it twice) are each handed its ids:
    the second was tokenised again in the model thread before."""
    from qwen_embed_adapters.local.tokens import TokenMemo

    memo = TokenMemo(capacity_tokens=10)
    memo.put(["q", "r", "q"], [[1, 2], [3], [1, 2]], max_length=8)  # one request, "q" twice
    memo.put(["q"], [[1, 2]], max_length=8)  # a second request, the same text
    assert len(memo) == 2 and memo._tokens == 7
    assert memo.take(["q", "r"]) == [[1, 2], [3]]
    assert memo.take(["q", "q", "q"]) == [[1, 2], [1, 2], None]  # two uses left of three, then none
    assert len(memo) == 0 and memo._tokens == 0
    memo.put(["a", "a", "b"], [[1, 2, 3], [1, 2, 3], [4, 5, 6, 7, 8]], max_length=8)  # 11 tokens > 10
    assert memo.take(["a", "b"]) == [None, [4, 5, 6, 7, 8]]  # the oldest text dropped with both its uses
    assert memo._tokens == 0


def test_plan_passes_are_the_passes_the_embedder_makes(tiny_qwen3_dir: str) -> None:
    """qwen-embed serve runs a gathered call pass by pass from ``plan_passes(counts)``: each planned pass must be
    one forward pass when embedded alone (the same budget, the same lengths, counts over max_length capped)."""
    emb = LocalEmbedder(tiny_qwen3_dir, device="cpu", max_batch_tokens=64, max_length=24, truncate=True)
    texts = [" ".join(["word"] * n) for n in (1, 30, 3, 12, 7, 2, 9, 40)]
    counts = emb.count_tokens(texts)
    assert max(counts) > 24  # one text over max_length: planned as 24 tokens
    passes = emb.plan_passes(counts)
    assert sorted(i for p in passes for i in p) == list(range(len(texts)))
    assert passes == emb._plan_batches(texts)
    for p in passes:
        assert emb._plan_batches([texts[i] for i in p]) == [list(range(len(p)))]
