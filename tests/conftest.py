"""Shared test settings: nothing here may reach a network other than 127.0.0.1."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# pymilvus reads MILVUS_URI at import time and fails on a .db path (pymilvus 3.0 settings.py reads it into
# Config.MILVUS_URI; orm/connections.py parses it in the module-level `connections = Connections()`): never inherit it.
os.environ.pop("MILVUS_URI", None)
