"""Haystack components over FakeEmbedder: instruction split, Documents, serialisation with a Secret."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no posthog calls from tests
pytest.importorskip("haystack")
from haystack import Document, Pipeline
from haystack.utils import Secret

from qwen_embed_adapters.errors import ConfigurationError
from qwen_embed_adapters.integrations.haystack import QwenDocumentEmbedder, QwenTextEmbedder
from qwen_embed_adapters.models import format_query
from qwen_embed_adapters.testing import FakeEmbedder

TASK = "Given a question, retrieve passages that answer it"


def test_text_embedder_wraps_document_embedder_does_not() -> None:
    fake = FakeEmbedder(dimensions=16, query_instruction=TASK)
    out = QwenTextEmbedder(fake).run("capital of China")
    docs = [Document(content="Beijing is the capital", meta={"title": "China"}), Document(content="cats purr")]
    res = QwenDocumentEmbedder(fake, meta_fields_to_embed=["title"]).run(docs)
    assert fake.calls == [[format_query("capital of China", TASK)], ["China\nBeijing is the capital", "cats purr"]]
    assert len(out["embedding"]) == 16 and all(type(x) is float for x in out["embedding"])
    assert out["meta"] == {"model": "fake-embedding", "dimension": 16}
    assert [d.content for d in res["documents"]] == ["Beijing is the capital", "cats purr"]
    assert all(len(d.embedding) == 16 for d in res["documents"])
    assert docs[0].embedding is None  # the inputs are not modified


async def test_run_async_matches_run() -> None:
    fake = FakeEmbedder(dimensions=8)
    t, d = QwenTextEmbedder(fake), QwenDocumentEmbedder(fake)
    assert (await t.run_async("q"))["embedding"] == t.run("q")["embedding"]
    docs = [Document(content="a"), Document(content="b")]
    assert [x.embedding for x in (await d.run_async(docs))["documents"]] == \
        [x.embedding for x in d.run(docs)["documents"]]


def test_bad_input_names_the_item() -> None:
    with pytest.raises(TypeError, match="item 1 is str"):  # a bare string among Documents
        QwenDocumentEmbedder(FakeEmbedder()).run([Document(content="ok"), "not a document"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="embeds one string, got list"):  # a list given to the query embedder
        QwenTextEmbedder(FakeEmbedder()).run(["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="Secret"):  # a plain string key
        QwenTextEmbedder(base_url="http://x/v1", api_key="sk-plain")  # type: ignore[arg-type]


def test_to_dict_keeps_the_secret_env_not_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_QWEN_KEY", "sk-very-secret")
    comp = QwenTextEmbedder(base_url="http://127.0.0.1:9/v1", model="Qwen3-Embedding-0.6B",
                            api_key=Secret.from_env_var("MY_QWEN_KEY"), dimensions=256)
    data = comp.to_dict()
    assert "sk-very-secret" not in json.dumps(data)
    assert data["init_parameters"]["api_key"] == {"type": "env_var", "env_vars": ["MY_QWEN_KEY"], "strict": True}
    back = QwenTextEmbedder.from_dict(data)
    back.warm_up()
    assert back.embedder._api_key == "sk-very-secret"  # type: ignore[attr-defined]
    assert back.embedder.to_config()["api_key_env"] == "MY_QWEN_KEY"
    assert back.embedder.dimension == 256
    with pytest.raises(ValueError, match="token"):  # haystack refuses to serialise a token secret
        QwenTextEmbedder(base_url="http://x/v1", api_key=Secret.from_token("sk-inline")).to_dict()


def test_pipeline_round_trips_through_yaml() -> None:
    p = Pipeline()
    p.add_component("embed", QwenDocumentEmbedder(FakeEmbedder(dimensions=8), meta_fields_to_embed=["title"]))
    again = Pipeline.loads(p.dumps(), allowed_modules=["qwen_embed_adapters.integrations.haystack"])
    comp = again.get_component("embed")
    assert isinstance(comp, QwenDocumentEmbedder) and comp.meta_fields_to_embed == ["title"]
    out = again.run({"embed": {"documents": [Document(content="x")]}})
    assert len(out["embed"]["documents"][0].embedding) == 8
