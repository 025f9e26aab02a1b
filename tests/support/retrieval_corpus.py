"""The four-passage retrieval check the framework integration tests share: with a real model (MiniLM),
QUESTION must retrieve EXPECTED, and the query side must carry TASK as its Qwen3 instruction.

The fixtures ``minilm`` (a LocalEmbedder over the packaged MiniLM, one per module) and ``recording`` (a
RecordingEmbedder over it with TASK) are taken into a test module by name, next to
``minilm_dir = local_fixtures.minilm_dir``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.recording import RecordingEmbedder

TASK = "Given a question, retrieve the passage that answers it"
DOCS = [
    "Paris is the capital and largest city of France.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.",
    "The Great Barrier Reef is the world's largest coral reef system, off Australia.",
    "Python is a programming language known for its readable syntax.",
]
QUESTION = "How do plants make food from light?"
EXPECTED = DOCS[1]


@pytest.fixture(scope="module")
def minilm(minilm_dir: str) -> Any:
    from qwen_embed_adapters.local import LocalEmbedder

    return LocalEmbedder(minilm_dir, device="cpu", max_length=256)


@pytest.fixture
def recording(minilm: Any) -> RecordingEmbedder:
    return RecordingEmbedder(minilm, query_instruction=TASK)
