"""ingest(): pipelining, resumability, bounded memory, failures, progress; chunking of files."""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.errors import DimensionMismatchError, IngestError, InvalidInputError
from qwen_embed_adapters.ingest import (
    IngestReport,
    chunk_text,
    estimate_tokens,
    ingest,
    iter_file_records,
)
from qwen_embed_adapters.testing import FakeEmbedder
from tests.support.ingest_helpers import MemoryStore


def texts(n: int, prefix: str = "text") -> list[str]:
    return [f"{prefix} number {i} about topic {i % 7}" for i in range(n)]


def test_generator_of_strings_stores_every_text_with_content_ids_and_exact_vectors() -> None:
    emb = FakeEmbedder(dimensions=32)
    store = MemoryStore(emb)
    items = texts(1000)
    report = ingest(store, (t for t in items), batch_size=64, progress=False)
    assert (report.written, report.skipped, report.failed, report.seen) == (1000, 0, 0, 1000)
    assert report.batches == 16
    assert store.count() == 1000
    assert set(store.records) == {content_id(t) for t in items}
    ref = FakeEmbedder(dimensions=32).embed_documents(items[:50])
    got = np.stack([store.records[content_id(t)][0] for t in items[:50]])
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert report.texts_per_second > 0
    assert "written 1000, skipped 0, failed 0" in str(report)


def test_dict_records_keep_given_ids_and_metadata() -> None:
    store = MemoryStore(FakeEmbedder(dimensions=16))
    records = [
        {"id": "a", "text": "北京是中国的首都", "metadata": {"lang": "zh"}},
        {"text": "Beijing is the capital of China", "metadata": {"lang": "en"}},
        "def add(a, b): return a + b",
    ]
    report = ingest(store, records, progress=False)
    assert report.written == 3
    assert store.records["a"][1] == "北京是中国的首都"
    assert store.records["a"][2] == {"lang": "zh"}
    assert store.records[content_id("Beijing is the capital of China")][2] == {"lang": "en"}
    assert store.records[content_id("def add(a, b): return a + b")][2] == {}


def test_rerun_skips_everything_without_embedding() -> None:
    emb = FakeEmbedder(dimensions=16)
    store = MemoryStore(emb)
    items = texts(250)
    ingest(store, items, batch_size=50, progress=False)
    emb.calls.clear()
    report = ingest(store, iter(items), batch_size=50, progress=False)
    assert (report.written, report.skipped) == (0, 250)
    assert emb.calls == []
    assert store.count() == 250 and store.rewrites == []


def test_repeated_texts_are_stored_once() -> None:
    """Bad input: the same text three times (in one batch and across batches)."""
    store = MemoryStore(FakeEmbedder(dimensions=16))
    items = ["alpha", "beta", "alpha", "gamma", "alpha"]
    report = ingest(store, items, batch_size=2, prefetch=3, progress=False)
    assert store.count() == 3
    assert (report.written, report.skipped) == (3, 2)
    assert store.rewrites == []


def test_failed_batch_raises_with_the_ids_not_written_and_everything_before_stored() -> None:
    emb = FakeEmbedder(dimensions=16)
    store = MemoryStore(emb)
    items = texts(500)
    ids = [content_id(t) for t in items]
    poisoned = ids[320]  # in batch 3 (records 300..399)
    store.fail_on = lambda batch: poisoned in batch
    with pytest.raises(IngestError) as info:
        ingest(store, iter(items), batch_size=100, prefetch=1, write_retries=1, retry_backoff=0.0, progress=False)
    err = info.value
    # batch 3 failed; batch 4 was read (embedding ahead) but not written.
    assert err.failed_ids == ids[300:500]
    assert err.written_ids == []
    assert set(store.records) == set(ids[:300])
    assert err.report.written == 300 and err.report.failed == 200
    assert "stopped at batch 3" in str(err) and "store unavailable" in str(err)
    assert isinstance(err.cause, ConnectionError)
    # The store recovers: the re-run embeds and writes only what is missing.
    store.fail_on = None
    emb.calls.clear()
    report = ingest(store, iter(items), batch_size=100, progress=False)
    assert (report.written, report.skipped) == (200, 300)
    assert sorted(t for call in emb.calls for t in call) == sorted(items[300:])
    assert store.count() == 500 and store.rewrites == []


def test_transient_write_failures_are_retried_and_partial_writes_not_duplicated() -> None:
    store = MemoryStore(FakeEmbedder(dimensions=16))
    store.land_then_fail = 3  # three writes land half their records and then raise
    items = texts(400)
    report = ingest(store, items, batch_size=100, retry_backoff=0.0, progress=False)
    assert report.written == 400 and store.count() == 400
    assert store.rewrites == []  # the retries sent only the missing halves
    assert [len(w) for w in store.writes[:4]] == [50, 25, 12, 13]  # each retry: the missing part only


def test_without_lookup_a_rerun_still_stores_each_id_once() -> None:
    """A store without existing_ids: the re-run upserts the same ids; the count stays exact."""
    store = MemoryStore(FakeEmbedder(dimensions=16), lookup=False)
    items = texts(120)
    ingest(store, items, batch_size=50, progress=False)
    report = ingest(store, items, batch_size=50, progress=False)
    assert report.written == 120 and store.count() == 120


def test_embedding_of_the_next_batch_overlaps_the_current_write() -> None:
    """The write of batch 0 blocks until batch 1's embedding has started: a serial pipeline would deadlock."""
    started: list[int] = []
    second_started = threading.Event()

    class Recording(FakeEmbedder):
        def _embed_batch(self, batch: list[str]) -> np.ndarray:
            started.append(len(started))
            if len(started) >= 2:
                second_started.set()
            return super()._embed_batch(batch)

    store = MemoryStore(Recording(dimensions=16, batch_size=1000))
    overlapped: list[bool] = []

    def before_write(ids: list[str]) -> None:
        if not overlapped:
            overlapped.append(second_started.wait(timeout=20))

    store.before_write = before_write
    ingest(store, texts(300), batch_size=100, prefetch=1, progress=False)
    assert overlapped == [True]
    assert store.count() == 300


def test_memory_stays_bounded_on_a_generator() -> None:
    """At the write of batch k, the generator has been read at most (k + prefetch + 1) batches deep."""
    pulled = 0

    def gen() -> Iterator[str]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield f"streamed text {i}"

    store = MemoryStore(FakeEmbedder(dimensions=8))
    depth: list[int] = []
    store.before_write = lambda ids: depth.append(pulled - 100 * len(depth))
    report = ingest(store, gen(), batch_size=100, prefetch=2, progress=False)
    assert report.written == 10_000
    assert max(depth) <= 100 * 3 + 1
    assert len(store.writes) == 100


def test_nan_answer_refuses_the_batch_and_stores_nothing_wrong() -> None:
    """Bad input: the embedder answers NaN for one batch."""

    class Poisoned(FakeEmbedder):
        def _embed_batch(self, batch: list[str]) -> np.ndarray:
            out = super()._embed_batch(batch)
            if any("poison" in t for t in batch):
                out[0, 0] = np.nan
            return out

    store = MemoryStore(Poisoned(dimensions=16, batch_size=10))
    items = texts(30) + ["poison pill"] + texts(9, "tail")
    with pytest.raises(IngestError) as info:
        ingest(store, items, batch_size=10, prefetch=1, progress=False)
    assert "NaN" in str(info.value)
    assert content_id("poison pill") in info.value.failed_ids
    assert set(store.records) == {content_id(t) for t in items[:30]}
    assert all(np.isfinite(v).all() for v, _, _ in store.records.values())


def test_dimension_mismatch_is_raised_before_any_write() -> None:
    """Bad input: a collection holding 32-d vectors and a 16-d embedder."""
    store = MemoryStore(FakeEmbedder(dimensions=16), dim=32)
    with pytest.raises(DimensionMismatchError) as info:
        ingest(store, texts(10), progress=False)
    assert (info.value.expected, info.value.actual) == (32, 16)
    assert store.writes == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "record 150 is NoneType"),
        ({"text": None}, "record 150: 'text' is NoneType"),
        ({"text": 42}, "record 150: 'text' is int"),
        ("", "record 150 is an empty string"),
        ({"text": "x", "title": "y"}, "unknown keys ['title']"),
        ({"id": 7, "text": "x"}, "'id' must be a non-empty str"),
        ({"text": "x", "metadata": {"v": float("nan")}}, "not JSON-serialisable"),
    ],
)
def test_invalid_record_names_its_position_after_storing_earlier_batches(bad: object, message: str) -> None:
    """Bad input: None, a None/int text, an empty string, an unknown key, an int id, NaN in metadata."""
    store = MemoryStore(FakeEmbedder(dimensions=16))
    items: list[object] = [*texts(150), bad, *texts(20, "after")]
    with pytest.raises(InvalidInputError) as info:
        ingest(store, items, batch_size=50, progress=False)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert info.value.index == 150
    assert store.count() == 150


def test_invalid_records_can_be_skipped() -> None:
    """Bad input: None and an int among valid records, with on_invalid='skip'."""
    store = MemoryStore(FakeEmbedder(dimensions=16))
    report = ingest(store, ["a", None, "b", 3, "c"], on_invalid="skip", progress=False)  # type: ignore[list-item]
    assert (report.written, report.invalid) == (3, 2)


class _ShortTextStore(MemoryStore):
    """A store whose own limit (like Milvus's VARCHAR or Pinecone's 40 KB) refuses texts over 30 chars."""

    def _validate_batch(self, ids: list[str], texts: list[str], metadatas: list[dict]) -> None:
        for i, t in enumerate(texts):
            if len(t) > 30:
                raise InvalidInputError(f"texts[{i}] is over 30 characters", index=i, item_id=ids[i])


def test_records_over_a_store_limit_are_skipped_too() -> None:
    """Bad input: two texts over the store's own length limit, with on_invalid='skip'."""
    store = _ShortTextStore(FakeEmbedder(dimensions=16))
    items = ["a", "x" * 40, "b", "c", "y" * 50, "d"]
    report = ingest(store, items, batch_size=4, on_invalid="skip", progress=False)
    assert (report.written, report.invalid) == (4, 2)
    assert set(store.records) == {content_id(t) for t in "abcd"}


def test_same_id_with_two_texts_in_one_batch_is_refused() -> None:
    """Bad input: two records with id "x" and different texts."""
    store = MemoryStore(FakeEmbedder(dimensions=16))
    with pytest.raises(InvalidInputError, match="id 'x' repeats"):
        ingest(store, [{"id": "x", "text": "one"}, {"id": "x", "text": "two"}], progress=False)


def test_a_single_string_is_refused() -> None:
    """Bad input: records is one str, not an iterable of records."""
    with pytest.raises(InvalidInputError, match="got str"):
        ingest(MemoryStore(FakeEmbedder(dimensions=8)), "just one text", progress=False)


def test_no_progress_output_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    ingest(MemoryStore(FakeEmbedder(dimensions=8)), texts(50), progress=True)
    assert capsys.readouterr().err == ""


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    fake = Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    ingest(MemoryStore(FakeEmbedder(dimensions=8)), texts(50), progress=True)
    out = fake.getvalue()
    assert "ingest memory" in out and "50/50" in out


def test_on_batch_sees_running_counts() -> None:
    seen: list[int] = []
    ingest(
        MemoryStore(FakeEmbedder(dimensions=8)), texts(250), batch_size=100, progress=False,
        on_batch=lambda r: seen.append(r.written),
    )
    assert seen == [100, 200, 250]


def test_report_as_dict_is_json() -> None:
    report = IngestReport(written=10, seconds=2.0)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["texts_per_second"] == 5.0 and data["written"] == 10


# ---------------------------------------------------------------------------- chunking
def test_estimate_tokens_counts_cjk_characters_and_words() -> None:
    assert estimate_tokens("机器学习") == 4
    assert estimate_tokens("machine learning") == 3  # ceil(2 * 1.3)
    assert estimate_tokens("a+b") == 4  # ceil(2 * 1.3) + 1 symbol


def test_chunk_text_merges_short_paragraphs_and_splits_long_ones() -> None:
    para = " ".join(f"word{i}." for i in range(200))  # ~400 tokens in 200 sentences
    text = "short one\n\nshort two\n\n" + para + "\n\n机器学习需要数据。模型需要训练！"
    chunks = chunk_text(text, max_tokens=64)
    assert chunks[0] == "short one\n\nshort two"
    assert all(estimate_tokens(c) <= 64 for c in chunks)
    assert len(chunks) >= 7
    squash = lambda s: "".join(s.split())  # noqa: E731
    assert squash("".join(chunks)) == squash(text)


def test_chunk_text_keeps_a_fenced_code_block_together() -> None:
    text = "Intro line.\n\n```python\ndef f():\n\n    return 1\n```\n\nOutro."
    chunks = chunk_text(text, max_tokens=200)
    assert chunks == ["Intro line.\n\n```python\ndef f():\n\n    return 1\n```\n\nOutro."]
    small = chunk_text(text, max_tokens=18)
    assert small[0] == "Intro line."
    assert small[1].startswith("```python\ndef f():\n\n    return 1\n```")


def test_chunk_text_cuts_one_endless_sentence() -> None:
    text = "无" * 1000
    chunks = chunk_text(text, max_tokens=100)
    assert "".join(chunks) == text and all(len(c) <= 100 for c in chunks)


def test_chunk_text_rejects_a_tiny_limit() -> None:
    """Bad input: max_tokens=2."""
    with pytest.raises(InvalidInputError, match="max_tokens"):
        chunk_text("x", max_tokens=2)


def test_iter_file_records_reads_txt_md_and_jsonl(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.txt").write_text("第一段。\n\n第二段。", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\nBody text.", encoding="utf-8")
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"id": "r1", "text": "row one", "lang": "en"}) + "\n\n" + json.dumps("bare string") + "\n",
        encoding="utf-8",
    )
    (tmp_path / "skip.bin").write_bytes(b"\x00")
    recs = list(iter_file_records([tmp_path], max_tokens=512))
    assert [r["text"] for r in recs] == ["第一段。\n\n第二段。", "# Title\n\nBody text.", "row one", "bare string"]
    assert recs[0]["metadata"] == {"source": str(tmp_path / "a.txt"), "chunk": 0}
    assert recs[2]["id"] == "r1" and recs[2]["metadata"]["lang"] == "en"
    assert "id" not in recs[3]


def test_iter_file_records_names_the_bad_jsonl_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bad input: a JSONL line that is not JSON, and one without 'text'."""
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n{oops\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad.jsonl:2: not JSON"):
        list(iter_file_records([p]))
    p.write_text('{"title": "no text"}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad.jsonl:1: expected an object"):
        list(iter_file_records([p]))
    with pytest.raises(InvalidInputError, match="no such file"):
        list(iter_file_records([tmp_path / "missing.txt"]))


@pytest.mark.parametrize("metadata", ['"a string"', "[1, 2]", "7"])
def test_iter_file_records_names_the_line_whose_metadata_is_not_an_object(tmp_path, metadata: str) -> None:  # type: ignore[no-untyped-def]
    """Bad input: a JSONL record whose 'metadata' is a string, a list or a number."""
    p = tmp_path / "meta.jsonl"
    p.write_text('{"text": "ok"}\n{"text": "two", "metadata": ' + metadata + "}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"meta.jsonl:2: 'metadata' must be an object"):
        list(iter_file_records([p]))
