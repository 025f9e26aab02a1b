"""Engine knowledge as data (issue 26, item 3): one profile per engine family, and what reads them."""

from __future__ import annotations

import dataclasses

import pytest

from qwen_embed_adapters.http.engines import (
    PROFILES,
    EngineProfile,
    classify_refusal,
    profile,
    recognise,
    rerank_route_hint,
    route_hint,
    truncate_switches,
)

FAMILIES = ("tei", "vllm", "sglang", "ollama", "infinity", "llamacpp", "dashscope", "qwen-embed-serve")


def test_one_frozen_profile_per_family_each_with_a_source() -> None:
    assert tuple(p.family for p in PROFILES) == FAMILIES
    for p in PROFILES:
        assert profile(p.family) is p and p.source, p.family
        assert p.embeddings_route in ("/v1/embeddings", "/embeddings")
        assert p.rerank_route in ("", "/rerank", "/v1/rerank")
        for rp in p.refusal_patterns:  # every wording is given with an example it reads
            assert rp.kind in ("length", "batch") and rp.compiled.search(rp.example.lower()), (p.family, rp.regex)
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.family = "other"  # type: ignore[misc]
    with pytest.raises(KeyError, match="no engine profile 'triton'"):
        profile("triton")  # bad input: a family with no profile


def test_truncate_switches_and_fixes_are_read_from_the_profiles() -> None:
    assert truncate_switches() == {"tei": "truncate", "vllm": "truncate_prompt_tokens"}
    assert "--hf-overrides" in profile("vllm").fix("dimensions")
    assert "--max-client-batch-size" in profile("tei").fix("batch")
    assert "num_ctx" in profile("ollama").fix("truncation")
    assert "--url-prefix /v1" in profile("infinity").fix("route")
    assert profile("sglang").fix("truncation", "none known") == "none known"


@pytest.mark.parametrize(
    ("owned_by", "family"),
    [("vllm", "vllm"), ("llamacpp", "llamacpp"), ("infinity", "infinity"), ("sglang", "sglang"),
     ("library", "ollama"), ("qwen-embed-adapters", "qwen-embed-serve")],
)
def test_recognise_from_the_models_answer(owned_by: str, family: str) -> None:
    payload = {"object": "list", "data": [{"id": "Qwen3-Embedding-0.6B", "object": "model", "owned_by": owned_by}]}
    found = recognise(models_payload=payload)
    assert isinstance(found, EngineProfile) and found.family == family


def test_recognise_from_headers_and_refusal_wording() -> None:
    tei = recognise(headers={"X-Compute-Type": "cpu", "Content-Type": "application/json"})
    assert tei is not None and tei.family == "tei"
    llama = recognise(headers={"Server": "llama.cpp"})
    assert llama is not None and llama.family == "llamacpp"
    vllm = recognise(body="This model's maximum context length is 512 tokens. However, you requested 600 tokens")
    assert vllm is not None and vllm.family == "vllm"
    ds = recognise(body="batch size is invalid, it should not be larger than 10.")
    assert ds is not None and ds.family == "dashscope"
    # Nothing that tells: an unknown owner, a generic server header, a refusal no engine owns.
    assert recognise(models_payload={"data": [{"id": "m", "owned_by": "someone"}]}, headers={"Server": "uvicorn"},
                     body="input too long") is None
    assert recognise() is None


def test_route_hints_are_derived_from_the_profiles() -> None:
    hint = route_hint()
    assert hint.startswith("TEI, vLLM, SGLang, Ollama, llama.cpp server and `qwen-embed serve` answer on /v1/embeddings; ")
    assert "Infinity answers on /embeddings by default (/v1/embeddings with --url-prefix /v1)" in hint
    assert "DashScope" not in hint  # a hosted API has one URL to give
    assert "TEI and Infinity (by default) on /rerank" in rerank_route_hint()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (413, "Input validation error: `inputs` must have less than 512 tokens. Given: 600", ("length", 512, 600, "tei")),
        (400, "max context 8192 tokens, the prompt had at least 8193", ("length", 8192, 8193, "vllm")),
        (500, "input is too large to process. increase the physical batch size", ("length", None, None, "llamacpp")),
        (400, "exceeds max sequence length 512", ("length", 512, None, None)),
        (422, "batch size 64 > maximum allowed batch size 32", ("batch", 32, None, None)),
        (400, "too_many_inputs: at most 8 inputs per request", ("batch", 8, None, None)),
        (413, "Payload Too Large", ("batch", None, None, None)),
    ],
)
def test_refusals_read_with_the_profiles_wordings(status: int, body: str, expected: tuple[object, ...]) -> None:
    r = classify_refusal(status, body.lower())
    assert r is not None and (r.kind, r.limit, r.tokens, r.engine) == expected
