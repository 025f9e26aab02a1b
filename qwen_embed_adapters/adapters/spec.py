"""TEMP (ray branch): replaced by the cli branch's spec.py on merge."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..embedder import Embedder
from .base import VectorStore


def describe_spec(spec: str | Mapping[str, Any]) -> str:
    return spec if isinstance(spec, str) else str(dict(spec))


def store_from_spec(spec: str | Mapping[str, Any], embedder: Embedder) -> VectorStore:
    assert isinstance(spec, str)
    u = urlsplit(spec)
    scheme, name = u.scheme, u.path.strip("/")
    if scheme.startswith("milvus+"):
        from .milvus import MilvusStore
        return MilvusStore(f"{scheme.split('+')[1]}://{u.netloc}", name, embedder)
    if scheme.startswith("chroma+"):
        import chromadb

        from .chroma import ChromaStore
        return ChromaStore(chromadb.HttpClient(host=u.hostname, port=u.port), name, embedder)
    raise ValueError(spec)
