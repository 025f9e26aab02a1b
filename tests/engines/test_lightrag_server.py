"""``lightrag-server`` itself (``lightrag-hku[api]``, its own venv from ``scripts/engines.sh lightrag``), its embedding configured only by the ``.env`` that
``write_lightrag_env`` writes, embedding through a real ``qwen-embed serve``; its LLM is a chat stand-in.

It inserts one document, waits until it is processed, checks the chunk vector it stored equals the
in-process vector, and queries it back (``naive`` mode, context only: the query is embedded by the server).
lightrag-server tokenises with tiktoken's o200k_base, which cannot be downloaded here:
``scripts/engines.sh tiktoken`` rebuilds it (hash-checked) from npm's js-tiktoken.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.local import LocalEmbedder
from tests.support import local_fixtures
from tests.support.chat_stub import ChatStub
from tests.support.engines import EngineProcess, build, cache_dir, engine_venv, start_engine
from tests.support.local_fixtures import ServeProcess
from tests.support.recording_proxy import RecordingProxy

tiny_qwen3_dir = local_fixtures.tiny_qwen3_dir
serve_tiny = local_fixtures.serve_tiny

pytestmark = [pytest.mark.engines, pytest.mark.integration]

DOC = "Beijing is the capital of China. It hosted the 2008 Summer Olympics."


@pytest.fixture(scope="module")
def tiktoken_cache() -> str:
    out = cache_dir() / "tiktoken"
    build("tiktoken", out / ".engines-stamp")  # fails in CI, skips naming the log elsewhere
    return str(out)


@dataclass
class LightragServer:
    engine: EngineProcess
    work: Path
    proxy: RecordingProxy  # between lightrag-server and `qwen-embed serve`
    first: int  # proxy.exchanges from here on are lightrag-server's


@pytest.fixture(scope="module")
def lightrag_server(serve_tiny: ServeProcess, tiktoken_cache: str,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[LightragServer]:
    exe = engine_venv("lightrag") / "bin" / "lightrag-server"
    from qwen_embed_adapters.adapters.lightrag import write_lightrag_env

    work = tmp_path_factory.mktemp("lightrag-server")
    port = local_fixtures.free_port()
    with ChatStub() as chat, RecordingProxy(serve_tiny.root_url) as proxy, \
            RemoteEmbedder(f"{proxy.url}/v1", model="tiny-qwen3") as emb:
        env_file = work / ".env"
        # the server's own settings, and its LLM: not ours to write
        env_file.write_text(
            f"HOST=127.0.0.1\nPORT={port}\nWORKING_DIR={work / 'rag_storage'}\nINPUT_DIR={work / 'inputs'}\n"
            f"LLM_BINDING=openai\nLLM_BINDING_HOST={chat.base_url}\nLLM_MODEL=stub-chat\nLLM_BINDING_API_KEY=unused\n"
            "ENABLE_LLM_CACHE_FOR_EXTRACT=false\nSUMMARY_LANGUAGE=English\n"
        )
        write_lightrag_env(env_file, emb)  # every EMBEDDING_* line comes from our writer
        first = len(proxy.exchanges)
        # lightrag-server reads ./.env; nothing EMBEDDING_*/LLM_* may leak in from this environment
        server = start_engine("lightrag-server", [str(exe)], health_path="/health", log_dir=work, port=port,
                              timeout=180, cwd=work, env={"TIKTOKEN_CACHE_DIR": tiktoken_cache},
                              drop_env=("EMBEDDING_", "LLM_", "OPENAI_"))
        try:
            yield LightragServer(server, work, proxy, first)
        finally:
            server.stop()


def test_lightrag_server_inserts_and_queries_through_qwen_embed_serve(
    lightrag_server: LightragServer, tiny_qwen3_dir: str
) -> None:
    server, work = lightrag_server.engine, lightrag_server.work
    env_text = (work / ".env").read_text()
    assert "EMBEDDING_BINDING=openai" in env_text and "EMBEDDING_DIM=64" in env_text
    assert "EMBEDDING_SEND_DIM=false" in env_text
    r = httpx.post(f"{server.root_url}/documents/text", json={"text": DOC, "file_source": "beijing.txt"}, timeout=60)
    assert r.status_code == 200, r.text
    track = r.json()["track_id"]
    deadline = time.monotonic() + 180
    status: dict = {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{server.root_url}/documents/track_status/{track}", timeout=30).json()
        if status.get("total_count") and all(d["status"] in ("processed", "failed") for d in status["documents"]):
            break
        time.sleep(1)
    assert [d["status"] for d in status["documents"]] == ["processed"], (status, server.log_tail())

    local = LocalEmbedder(tiny_qwen3_dir, device="cpu", max_length=512)
    store = json.loads((work / "rag_storage" / "vdb_chunks.json").read_text())
    assert store["embedding_dim"] == 64
    matrix = np.frombuffer(base64.b64decode(store["matrix"]), dtype=np.float32).reshape(-1, 64)
    contents = [row["content"] for row in store["data"]]
    assert contents == [DOC]
    np.testing.assert_allclose(matrix, local.embed_documents(contents), atol=1e-5)

    q = httpx.post(f"{server.root_url}/query", json={"query": "What is the capital of China?", "mode": "naive",
                                                       "only_need_context": True}, timeout=60)
    assert q.status_code == 200, q.text
    assert "Beijing is the capital of China" in q.json()["response"]
    # what lightrag-server sent to `qwen-embed serve`: the chunk, then the query, as text, with no
    # `dimensions` (the .env asks for the native width, so EMBEDDING_SEND_DIM stays off)
    sent = [e for e in lightrag_server.proxy.exchanges[lightrag_server.first:] if e.method == "POST"]
    assert sent and all(e.path == "/v1/embeddings" and e.status == 200 for e in sent)
    assert all("dimensions" not in e.body for e in sent), [sorted(e.body) for e in sent]
    inputs = [t for e in sent for t in (e.body["input"] if isinstance(e.body["input"], list) else [e.body["input"]])]
    assert DOC in inputs and any(t.endswith("What is the capital of China?") for t in inputs)
