"""Length errors are not batch caps (issue 20), against the stand-in engines of
tests/support/openai_server.py speaking TEI's, vLLM's, Ollama's and DashScope's exact wordings.

The stand-in counts tokens as white-space separated words, so a test knows each input's length.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.errors import EmbeddingServiceError, IngestError, InvalidInputError
from qwen_embed_adapters.http.engines import classify_refusal
from qwen_embed_adapters.vectors import l2_normalize
from tests.support.openai_server import EmbeddingServer

LONG = " ".join(f"w{i}" for i in range(600))  # 600 tokens for the stand-in


def short_texts(n: int, tag: str = "s") -> list[str]:
    return [f"{tag} short text {i}" for i in range(n)]


def embed(emb: RemoteEmbedder, texts: list[str], mode: str) -> np.ndarray:
    return emb.embed_documents(texts) if mode == "sync" else asyncio.run(emb.aembed_documents(texts))


# ---------------------------------------------------------------------------- reading the wordings
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (413, "Input validation error: `inputs` must have less than 512 tokens. Given: 600", ("length", 512, 600, "tei")),
        (400, "This model's maximum context length is 512 tokens. However, you requested 600 tokens in the input "
              "for embedding generation. Please reduce the length of the input.", ("length", 512, 600, "vllm")),
        (400, "This model's maximum context length is 8192 tokens. However, your request has 9000 input tokens.",
         ("length", 8192, 9000, "vllm")),
        (400, '{"error":"the input length exceeds the context length"}', ("length", None, None, "ollama")),
        (500, '{"error":"the input length exceeds the context length"}', ("length", None, None, "ollama")),
        (400, "max context 8192 tokens, the prompt had at least 8193", ("length", 8192, 8193, "vllm")),
        (500, "input is too large to process. increase the physical batch size", ("length", None, None, "llamacpp")),
        (400, "input too long", ("length", None, None, None)),
        (413, "batch size 64 > maximum allowed batch size 32", ("batch", 32, None, None)),
        (422, "batch size 64 > maximum allowed batch size 32", ("batch", 32, None, None)),
        (400, "batch size is invalid, it should not be larger than 10.", ("batch", 10, None, None)),
        (422, "List should have at most 2048 items after validation, not 4096", ("batch", 2048, None, None)),
        (413, "Payload Too Large", ("batch", None, None, None)),
    ],
)
def test_length_and_batch_refusals_are_told_apart(status: int, body: str, expected: tuple) -> None:
    r = classify_refusal(status, body.lower())
    assert r is not None and (r.kind, r.limit, r.tokens, r.engine) == expected


@pytest.mark.parametrize(("status", "body"), [(400, "invalid api key"), (401, "too many tokens"), (503, "busy")])
def test_other_errors_are_neither(status: int, body: str) -> None:
    assert classify_refusal(status, body) is None


# ---------------------------------------------------------------------------- the scenario
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_one_long_input_is_named_and_the_batch_cap_survives(mode: str) -> None:
    """Bad input: 200 short texts with a 600-token text at index 5, against TEI's 512-token and 32-input
    limits, batch_size=64. Before: the length refusal was read as a batch cap, halved down to 1 and kept."""
    with EmbeddingServer(dim=16, max_batch=32, max_tokens=512, length_style="tei") as srv:
        emb = RemoteEmbedder(srv.base_url, "m", batch_size=64, max_concurrency=2)
        texts = short_texts(200)
        texts[5] = LONG
        with pytest.raises(InvalidInputError) as err:
            embed(emb, texts, mode)
        assert err.value.index == 5 and (err.value.tokens, err.value.limit) == (600, 512)
        assert str(err.value).startswith("input 5: 600 tokens, the server takes at most 512")
        assert "truncate=True" in str(err.value)
        assert emb.batch_size == 32  # TEI's cap, read from its message; not lowered by the long input
        srv.requests.clear()
        out = embed(emb, short_texts(256, "t"), mode)
        assert out.shape == (256, 16)
        assert [len(r["input"]) for r in srv.requests] == [32] * 8  # the next call still sends batches of 32


def test_the_callers_index_in_a_later_batch() -> None:
    """Bad input: the long text at index 100 (in the second batch of 64, at its place 36)."""
    with EmbeddingServer(dim=16, max_tokens=512, length_style="vllm") as srv:
        emb = RemoteEmbedder(srv.base_url, "m", batch_size=64, max_concurrency=1)
        texts = short_texts(150)
        texts[100] = LONG
        with pytest.raises(InvalidInputError, match=r"^input 100: 600 tokens, the server takes at most 512") as err:
            emb.embed_documents(texts)
        assert err.value.index == 100 and emb.batch_size == 64


def test_ollama_wording_names_the_input_without_counts() -> None:
    with EmbeddingServer(dim=16, max_tokens=512, length_style="ollama") as srv:
        emb = RemoteEmbedder(srv.base_url, "m", batch_size=8)
        texts = short_texts(8)
        texts[6] = LONG
        with pytest.raises(InvalidInputError, match="^input 6: too many tokens") as err:
            emb.embed_documents(texts)
        assert (err.value.index, err.value.tokens, err.value.limit) == (6, None, None)
        assert not isinstance(err.value, EmbeddingServiceError)


# ---------------------------------------------------------------------------- truncate=True
@pytest.mark.parametrize(("style", "switch"), [("tei", ("truncate", True)), ("vllm", ("truncate_prompt_tokens", 512))])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_truncate_uses_the_engines_own_switch(
    style: str, switch: tuple[str, object], mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddingServer(dim=16, max_tokens=512, length_style=style) as srv:
        emb = RemoteEmbedder(srv.base_url, "m", batch_size=16, truncate=True)
        texts = short_texts(40)
        texts[21] = LONG
        with caplog.at_level(logging.WARNING, logger="qwen_embed_adapters.remote"):
            out = embed(emb, texts, mode)
        expected = [" ".join(LONG.split()[:512]) if t == LONG else t for t in texts]
        np.testing.assert_allclose(out, l2_normalize(srv.expected(expected)), atol=1e-6)
        assert emb.batch_size == 16
        answered = [r for r in srv.requests if LONG in r["input"]][-1]  # the request that embedded the long text
        assert answered[switch[0]] == switch[1]
        assert f"asking the server to truncate ({switch[0]})" in caplog.text
        assert emb.to_config()["truncate"] is True


def test_truncate_cuts_client_side_where_the_engine_has_no_switch(caplog: pytest.LogCaptureFixture) -> None:
    """Ollama's OpenAI route has no truncation switch: the long input is cut on the client and logged."""
    with EmbeddingServer(dim=16, max_tokens=512, length_style="ollama") as srv:
        emb = RemoteEmbedder(srv.base_url, "m", batch_size=8, truncate=True)
        texts = short_texts(8)
        texts[3] = LONG
        with caplog.at_level(logging.WARNING, logger="qwen_embed_adapters.remote"):
            out = emb.embed_documents(texts)
        sent = [r["input"] for r in srv.requests if len(r["input"]) == 1][-1]
        assert len(sent) == 1 and LONG.startswith(sent[0]) and len(sent[0].split()) <= 512
        np.testing.assert_allclose(out[3], l2_normalize(srv.expected(sent))[0], atol=1e-6)
        np.testing.assert_allclose(out[:3], l2_normalize(srv.expected(texts[:3])), atol=1e-6)
        assert "input 3 of its batch has too many tokens" in caplog.text and "cut client-side" in caplog.text


# ---------------------------------------------------------------------------- batch caps that name a number
def test_dashscope_cap_is_taken_at_once() -> None:
    with EmbeddingServer(dim=16, max_batch=10, batch_style="dashscope") as srv:
        emb = RemoteEmbedder(srv.base_url, "m", batch_size=64, max_concurrency=1)
        emb.embed_documents(short_texts(64))
        sizes = [len(r["input"]) for r in srv.requests]
        assert sizes == [64] + [10] * 6 + [4] and emb.batch_size == 10


# ---------------------------------------------------------------------------- ingest
def test_ingest_skips_a_record_the_server_finds_too_long() -> None:
    """Bad input: record 7 of 20 has 600 tokens against TEI's 512; with on_invalid='skip' the run
    stores the other 19 and counts record 7 as invalid."""
    pytest.importorskip("faiss")
    from qwen_embed_adapters.adapters.faiss import FaissStore
    from qwen_embed_adapters.ingest import ingest

    with EmbeddingServer(dim=16, max_tokens=512, length_style="tei") as srv:
        emb = RemoteEmbedder(srv.base_url, "m", batch_size=8)
        store = FaissStore(emb)
        texts = short_texts(20)
        texts[7] = LONG
        report = ingest(store, texts, batch_size=10, on_invalid="skip", progress=False)
        assert report.invalid == 1 and report.written == 19 and store.count() == 19
        assert set(store.existing_ids([content_id(t) for t in texts])) == {content_id(t) for i, t in enumerate(texts) if i != 7}
        # Without "skip" the same record stops the run with the refusal named.
        with pytest.raises(IngestError, match="tokens"):
            ingest(FaissStore(emb), texts, batch_size=10, progress=False)


# ---------------------------------------------------------------------------- silent truncation
def test_silent_truncation_is_seen_in_usage(caplog: pytest.LogCaptureFixture) -> None:
    """Ollama's default: inputs over num_ctx are cut without an error; only ``usage.prompt_tokens`` shows it."""
    very_long = " ".join(f"word{i}" for i in range(5000))  # ~ 40k characters, 5000 tokens for the stand-in
    with EmbeddingServer(dim=16, max_tokens=512, length_style="ollama-silent") as srv:
        emb = RemoteEmbedder(srv.base_url, "m")
        with caplog.at_level(logging.WARNING, logger="qwen_embed_adapters.remote"):
            emb.embed_documents(["short", very_long])
            emb.embed_documents([very_long])
        warnings = [r for r in caplog.records if "truncate long inputs silently" in r.getMessage()]
        assert len(warnings) == 1 and "num_ctx" in warnings[0].getMessage()  # once per embedder


def test_no_truncation_warning_when_the_server_read_everything(caplog: pytest.LogCaptureFixture) -> None:
    very_long = " ".join(f"word{i}" for i in range(5000))
    with EmbeddingServer(dim=16) as srv:  # counts every character as a token: nothing was cut
        with caplog.at_level(logging.WARNING, logger="qwen_embed_adapters.remote"):
            RemoteEmbedder(srv.base_url, "m").embed_documents([very_long])
        assert "silently" not in caplog.text
