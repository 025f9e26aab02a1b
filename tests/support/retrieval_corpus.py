"""The four-passage retrieval check the framework integration tests share: with a real model (MiniLM),
QUESTION must retrieve EXPECTED, and the query side must carry TASK as its Qwen3 instruction."""

from __future__ import annotations

TASK = "Given a question, retrieve the passage that answers it"
DOCS = [
    "Paris is the capital and largest city of France.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.",
    "The Great Barrier Reef is the world's largest coral reef system, off Australia.",
    "Python is a programming language known for its readable syntax.",
]
QUESTION = "How do plants make food from light?"
EXPECTED = DOCS[1]
