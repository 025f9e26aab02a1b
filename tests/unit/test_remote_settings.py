"""RemoteEmbedder, RemoteReranker and LocalReranker settings: every field survives to_config -> from_config
and pickle, and no secret (a key, a credential header) is ever persisted or shown (issue 26, item 1)."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import httpx
import pytest

from qwen_embed_adapters import embedder_from_config
from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.remote import RemoteEmbedder, RemoteEmbedderSettings
from qwen_embed_adapters.rerank import LocalRerankerSettings, RemoteReranker, RemoteRerankerSettings
from qwen_embed_adapters.settings import Settings

#: A value for every field that differs from its default, so a field that is dropped on the way shows.
REMOTE_EMBEDDER: dict[str, Any] = {
    "base_url": ("http://a.example:8000/v1", "http://b.example:8000/v1"),
    "model": "Qwen3-Embedding-4B", "dimensions": 512, "query_instruction": "Find the answer",
    "batch_size": 16, "max_concurrency": 2, "max_retries": 1, "timeout": 9.5, "api_key_env": "MY_KEY_VAR",
    "send_dimensions": False, "encoding_format": "float", "truncate": True, "max_requests_per_minute": 60.0,
    "max_tokens_per_minute": 1e6, "backoff_base": 0.1, "backoff_max": 2.0, "max_retry_after": 5.0,
    "headers": {"X-Org": "research"}, "header_envs": {"X-Api-Key": "GATEWAY_KEY_VAR"},
}
REMOTE_RERANKER: dict[str, Any] = {
    "base_url": "http://r.example:8080/rerank", "model": "Qwen3-Reranker-4B", "api": "tei", "template": "qwen3",
    "instruction": "Judge relevance", "api_key_env": "MY_KEY_VAR", "batch_size": 8, "max_concurrency": 2,
    "max_retries": 1, "timeout": 9.5, "backoff_base": 0.1, "backoff_max": 2.0, "max_retry_after": 5.0,
    "headers": {"X-Org": "research"}, "header_envs": {"X-Api-Key": "GATEWAY_KEY_VAR"},
}


def assert_every_field_differs_from_default(settings: Settings) -> None:
    for f in dataclasses.fields(settings):
        if f.default is not dataclasses.MISSING:
            assert getattr(settings, f.name) != f.default, f"test value of {f.name} is its default: it proves nothing"


def assert_every_field_survives(before: Settings, after: Settings) -> None:
    assert type(after) is type(before)
    for f in dataclasses.fields(before):  # a new field that is not round-tripped fails here
        assert getattr(after, f.name) == getattr(before, f.name), f.name


def test_remote_embedder_settings_survive_config_json_and_pickle() -> None:
    emb = RemoteEmbedder(**REMOTE_EMBEDDER)
    assert set(REMOTE_EMBEDDER) == set(RemoteEmbedderSettings.field_names())
    assert_every_field_differs_from_default(emb.settings)
    cfg = json.loads(json.dumps(emb.to_config()))  # plain JSON
    assert cfg["engine"] == "remote"
    assert_every_field_survives(emb.settings, RemoteEmbedder.from_config(cfg).settings)
    assert_every_field_survives(emb.settings, embedder_from_config(cfg).settings)  # type: ignore[attr-defined]
    again = pickle.loads(pickle.dumps(emb))
    assert isinstance(again, RemoteEmbedder) and again is not emb
    assert_every_field_survives(emb.settings, again.settings)


def test_the_defect_of_issue_26_float_and_no_dimensions_survive_a_rebuild() -> None:
    """The reported defect: to_config dropped encoding_format, send_dimensions, headers, the backoff
    settings and max_retry_after, and from_config rebuilt the embedder asking for base64."""
    emb = RemoteEmbedder("http://127.0.0.1:9/v1", encoding_format="float", send_dimensions=False, dimensions=256,
                         headers={"X-Org": "a"}, backoff_base=0.2, backoff_max=3.0, max_retry_after=7.0,
                         truncate=True)
    for again in (embedder_from_config(emb.to_config()), pickle.loads(pickle.dumps(emb))):
        assert isinstance(again, RemoteEmbedder)
        assert again.encoding_format == "float" and again.send_dimensions is False
        assert (again.backoff_base, again.backoff_max, again.max_retry_after) == (0.2, 3.0, 7.0)
        assert again.truncate is True and again._session.headers["X-Org"] == "a"


def test_remote_reranker_settings_survive_config_and_pickle() -> None:
    rr = RemoteReranker(**REMOTE_RERANKER)
    assert set(REMOTE_RERANKER) == set(RemoteRerankerSettings.field_names())
    assert_every_field_differs_from_default(rr.settings)
    cfg = json.loads(json.dumps(rr.to_config()))
    assert_every_field_survives(rr.settings, RemoteReranker.from_config(cfg).settings)
    again = pickle.loads(pickle.dumps(rr))
    assert isinstance(again, RemoteReranker) and again.api == "tei" and again.template == "qwen3"
    assert_every_field_survives(rr.settings, again.settings)


def test_local_reranker_settings_survive_config_and_pickle(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from qwen_embed_adapters.rerank import LocalReranker
    from qwen_embed_adapters.testing import make_tiny_qwen3_reranker

    folder = make_tiny_qwen3_reranker(tmp_path / "rr", seed=0)
    rr = LocalReranker(folder, device="cpu", dtype="float32", instruction="Judge relevance", max_length=256,
                       max_batch_tokens=512)
    values = {f.name: getattr(rr.settings, f.name) for f in dataclasses.fields(LocalRerankerSettings)}
    assert values == {"model": folder, "device": "cpu", "dtype": "float32", "instruction": "Judge relevance",
                      "max_length": 256, "max_batch_tokens": 512}
    assert_every_field_differs_from_default(rr.settings)
    assert_every_field_survives(rr.settings, LocalReranker.from_config(json.loads(json.dumps(rr.to_config()))).settings)
    again = pickle.loads(pickle.dumps(rr))
    assert_every_field_survives(rr.settings, again.settings)
    assert again.score("q", ["a", "b"]).tolist() == pytest.approx(rr.score("q", ["a", "b"]).tolist())
    assert repr(again) == (
        f"LocalReranker(model={folder!r}, device='cpu', dtype='float32', instruction='Judge relevance', "
        "max_length=256, max_batch_tokens=512)"
    )


# ---------------------------------------------------------------------------- secrets
def test_a_key_given_directly_is_never_persisted_and_the_default_variable_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QWEN_EMBED_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    secret = "sk-direct-SECRET-42"
    for component in (RemoteEmbedder("http://127.0.0.1:9/v1", api_key=secret),
                      RemoteReranker("http://127.0.0.1:9/v1", api_key=secret)):
        blob = pickle.dumps(component)
        shown = repr(component) + json.dumps(component.to_config())
        assert secret.encode() not in blob and secret not in shown and "api_key=***" in repr(component)
        assert component.to_config()["api_key_env"] == "QWEN_EMBED_API_KEY"  # the rebuilt one reads it there
        assert pickle.loads(blob)._api_key is None  # no key in the environment: none, not the given one
        monkeypatch.setenv("QWEN_EMBED_API_KEY", "sk-from-env")
        assert pickle.loads(blob)._api_key == "sk-from-env"
        monkeypatch.delenv("QWEN_EMBED_API_KEY")


def test_credential_headers_are_sent_but_never_persisted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers whose values are credentials (Authorization, *key*, *token*) are sent as given but left out
    of to_config, pickle and repr; ``header_envs`` persists them by the name of their variable."""
    monkeypatch.setenv("GATEWAY_KEY_VAR", "gw-key-from-env")
    headers = {"X-Org": "research", "Authorization": "Basic dXNlcjpwdw==", "X-Api-Key": "gw-secret-1",
               "X-Auth-Token": "tok-secret-2"}
    seen: list[httpx.Headers] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [0.6, 0.8]}]})

    emb = RemoteEmbedder("http://127.0.0.1:9/v1", model="m", headers=headers, transport=httpx.MockTransport(answer),
                         header_envs={"X-Gateway-Key": "GATEWAY_KEY_VAR"})
    emb.embed_documents(["a"])
    assert {k: seen[0][k] for k in headers} == headers  # sent as given
    assert seen[0]["X-Gateway-Key"] == "gw-key-from-env"
    cfg = emb.to_config()
    assert cfg["headers"] == {"X-Org": "research"}
    assert cfg["header_envs"] == {"X-Gateway-Key": "GATEWAY_KEY_VAR"}
    blob = pickle.dumps(emb)
    for secret in ("dXNlcjpwdw", "gw-secret-1", "tok-secret-2", "gw-key-from-env"):
        assert secret not in json.dumps(cfg) and secret not in repr(emb) and secret.encode() not in blob
    again = pickle.loads(blob)
    sent = again._session.headers
    assert sent["X-Org"] == "research" and sent["X-Gateway-Key"] == "gw-key-from-env"
    assert "X-Api-Key" not in sent and "X-Auth-Token" not in sent


@pytest.mark.parametrize("name", ["Authorization", "X-Api-Key", "x-auth-token", "Cookie"])
def test_settings_refuse_a_credential_header_in_clear(name: str) -> None:
    # Bad input: a config (as a user might write it) holding a credential header's value in clear.
    with pytest.raises(ConfigurationError, match=f"header '{name}' holds a credential"):
        RemoteEmbedderSettings(base_url="http://h:1/v1", headers={name: "v"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encoding_format": "f16"}, "encoding_format must be one of 'base64', 'float', got 'f16'"),  # unknown format
        ({"send_dimensions": 1}, "send_dimensions must be True or False, got 1"),  # an int for a bool
        ({"backoff_max": -1}, "backoff_max must be at least 0, got -1"),  # a negative pause
        ({"base_url": ("http://h:1/v1", "http://h:1/v1/")}, "base_url lists 'http://h:1/v1' twice"),  # a duplicate
        ({"bogus": 1}, "unknown RemoteEmbedder settings: ['bogus']"),  # a misspelt key
    ],
)
def test_bad_remote_embedder_config_names_the_setting(change: dict[str, Any], message: str) -> None:
    cfg = {**RemoteEmbedder("http://h:1/v1").to_config(), **change}
    with pytest.raises(ConfigurationError) as info:
        RemoteEmbedder.from_config(cfg)
    assert message in str(info.value)
