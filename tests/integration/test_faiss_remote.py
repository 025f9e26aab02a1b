"""FaissStore fed by RemoteEmbedder over real HTTP (tests/support/openai_server.py), saved in this process
and searched from a fresh Python process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.adapters.base import content_id
from qwen_embed_adapters.adapters.faiss import FaissStore
from qwen_embed_adapters.errors import DimensionMismatchError, WriteError
from tests.support.openai_server import EmbeddingServer

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
TEXTS = [f"passage {i} about {['rivers', 'capitals', 'vectors', 'music'][i % 4]} number {i * 7}" for i in range(600)]

SEARCH_IN_NEW_PROCESS = """
import json, sys
from qwen_embed_adapters import RemoteEmbedder
from qwen_embed_adapters.adapters.faiss import FaissStore
emb = RemoteEmbedder(sys.argv[2], dimensions=256)
store = FaissStore.load(sys.argv[1], emb)
hits = store.search("passages about capitals", top_k=5, filter={"even": True})
print(json.dumps({"count": store.count(), "hits": [[h.id, h.score, h.text] for h in hits]}))
"""


def test_remote_embedder_store_saved_and_searched_in_another_process(tmp_path: Path) -> None:
    with EmbeddingServer(dim=1024, max_batch=32, batch_status=413) as srv:
        emb = RemoteEmbedder(srv.base_url, dimensions=256, batch_size=64, api_key="sk-never-saved")
        store = FaissStore(emb, index="hnsw")
        ids = store.add_texts(TEXTS, metadatas=[{"even": i % 2 == 0} for i in range(len(TEXTS))])
        assert ids == [content_id(t) for t in TEXTS] and store.count() == len(TEXTS)
        # Exactly the server's vectors (truncated to 256 and renormalised), stored bit for bit.
        ref = srv.expected(TEXTS[:50], dimensions=256)
        ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
        np.testing.assert_allclose(store.get_vectors(ids[:50]), ref, atol=1e-6)
        assert emb.batch_size <= 32  # the server's 413 cap was learnt
        here = store.search("passages about capitals", top_k=5, filter={"even": True})
        folder = store.save(tmp_path / "kb")
        saved = (folder / "store.json").read_text()
        assert "sk-never-saved" not in saved
        assert json.loads(saved)["dimension"] == 256
        out = subprocess.run(
            [sys.executable, "-c", SEARCH_IN_NEW_PROCESS, str(folder), srv.base_url],
            capture_output=True, text=True, timeout=120, cwd=str(REPO), env={"PYTHONPATH": str(REPO), "PATH": ""},
        )
        assert out.returncode == 0, out.stderr
        there = json.loads(out.stdout)
        assert there["count"] == len(TEXTS)
        assert [h[0] for h in there["hits"]] == [h.id for h in here]
        np.testing.assert_allclose([h[1] for h in there["hits"]], [h.score for h in here], atol=1e-6)
        # Another width from the same server is refused on load.
        with pytest.raises(DimensionMismatchError) as err:
            FaissStore.load(folder, RemoteEmbedder(srv.base_url, dimensions=128))
        assert (err.value.expected, err.value.actual) == (256, 128)


def test_server_failure_mid_ingest_names_unwritten_ids_and_rerun_completes(tmp_path: Path) -> None:
    # the first two answers go to the space card's probes (documents, then the query), the third to batch 1
    with EmbeddingServer(dim=1024, faults=["ok", "ok", "ok", "500", "500", "500"]) as srv:
        emb = RemoteEmbedder(srv.base_url, batch_size=100, max_retries=2, backoff_base=0.01)
        store = FaissStore(emb)
        store.write_batch_size = 100
        with pytest.raises(WriteError) as err:
            store.add_texts(TEXTS[:300])
        assert err.value.written_ids == [content_id(t) for t in TEXTS[:100]]
        assert err.value.failed_ids == [content_id(t) for t in TEXTS[100:300]]
        assert store.count() == 100
        store.add_texts(TEXTS[:300])  # the re-run stores what is missing
        assert store.count() == 300
