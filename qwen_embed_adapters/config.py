"""TEMP (ray branch): replaced by the cli branch's config.py on merge."""
from .embedder import embedder_from_config as embedder_from_config
