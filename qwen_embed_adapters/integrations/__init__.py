"""Framework integrations: LangChain, LlamaIndex and Haystack, one module each.

Each module imports its framework lazily and raises MissingDependencyError naming the extra
(``pip install "qwen-embed-adapters[langchain]"``, ``[llamaindex]``, ``[haystack]``) when it is missing.
This package itself imports nothing optional.
"""

from __future__ import annotations

__all__: list[str] = []
