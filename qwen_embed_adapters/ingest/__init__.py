"""Pipelined, resumable bulk ingestion into any ``VectorStore``, plus the file chunking behind
``qwen-embed ingest``.

``ingest(store, records)`` reads ``records`` lazily (a generator over a huge file is fine: at most
``prefetch + 1`` batches are held in memory), embeds the next batches in a worker thread while the
current one is written, gives every text a content-hash id unless it has one, skips ids the store
already holds (``VectorStore.existing_ids``), and stops on the first batch that still fails after
retries with an ``IngestError`` naming the ids that were not written. Everything before that batch
is stored, so running the same ingestion again finishes the job without duplicates.

    from qwen_embed_adapters.ingest import ingest
    report = ingest(store, ({"id": r["id"], "text": r["body"]} for r in rows), batch_size=256)
    str(report)     # "written 10000, skipped 0, failed 0 in 41.2 s (242.7 texts/s)"

- ``pipeline``: ``ingest`` and its ``IngestReport``: read, check, embed ahead, write, retry
- ``records``: one record (a str or ``{"id", "text", "metadata"}``) checked and given its id
- ``chunking``: ``chunk_text`` and ``estimate_tokens`` (paragraphs, sentences, CJK-aware, no tokenizer)
- ``files``: ``expand_paths`` and ``iter_file_records`` (.txt/.md chunked, .jsonl records) behind
  ``qwen-embed ingest``
"""

from __future__ import annotations

from .chunking import chunk_text, estimate_tokens
from .files import INGEST_SUFFIXES, expand_paths, iter_file_records, json_lines
from .pipeline import IngestReport, ingest
from .records import Record

__all__ = [
    "INGEST_SUFFIXES",
    "IngestReport",
    "Record",
    "chunk_text",
    "estimate_tokens",
    "expand_paths",
    "ingest",
    "iter_file_records",
    "json_lines",
]
