"""Bulk embedding and ingestion past one machine, on Ray Data (extra ``ray``).

Ray Data does the scheduling: an actor pool of embedders (one model per actor, one GPU each with
``num_gpus=1``), blocks streamed through it, failed tasks retried and dead actors restarted. This module
adds what is ours: the embedder travels as its ``to_config()`` (a key stays in each worker's
environment, never in the job), vectors come out as one fixed-width float32 column, and the sink
writes with content-hash ids, so a retried task writes nothing twice.

    import ray
    from qwen_embed_adapters import RemoteEmbedder
    from qwen_embed_adapters.ray import ingest_ray

    ray.init()                                   # or ray.init("ray://head:10001")
    emb = RemoteEmbedder("http://vllm:8000/v1", dimensions=512)
    report = ingest_ray("s3://bucket/chunks/*.jsonl", "milvus+http://milvus:19530/kb", emb,
                        concurrency=8)
    str(report)      # "written 1000000, skipped 0, failed 0 in 812.0 s (1231.5 texts/s)"
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np

from .adapters.base import VectorStore, content_id, prepare_records
from .adapters.spec import is_local_only, parse_store_spec, store_from_spec, writes_from_driver
from .config import embedder_from_config
from .embedder import Embedder
from .errors import (
    ConfigurationError,
    InvalidInputError,
    MissingDependencyError,
    QwenEmbedError,
)
from .ingest import IngestReport
from .settings import check_choice, check_int

logger = logging.getLogger(__name__)

Kind = Literal["document", "query"]
_STATUS = "_qwen_status"  # per-row status column between the stages of ingest_ray
_NEW, _EXISTS, _INVALID = "new", "exists", "invalid"


def require_ray() -> Any:
    """The `ray` module with Ray Data, or MissingDependencyError naming the extra."""
    try:
        import ray
        import ray.data
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise MissingDependencyError("ray[data]", "ray", "qwen_embed_adapters.ray") from exc
    return ray


class PrecomputedEmbedder(Embedder):
    """Stands for the real embedder where the vectors are already computed (the sink's writers):
    it carries the model name and width that a store records and checks, and refuses to embed."""

    engine = "precomputed"

    def __init__(self, model: str, dimension: int) -> None:
        super().__init__(model, dimensions=dimension, native_dim=dimension)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        raise ConfigurationError(
            "this store was built to write precomputed vectors (qwen_embed_adapters.ray); it cannot embed"
        )

    def to_config(self) -> dict[str, Any]:
        return {"engine": "precomputed", "model": self.model, "dimensions": self.dimensions}


# ---------------------------------------------------------------------------------- the embed stage
class _EmbedActor:
    """One embedder per Ray actor, built once from its plain config."""

    def __init__(self, config: Mapping[str, Any], text_column: str, vector_column: str,
                 kind: Kind, instruction: str | None) -> None:
        self.embedder = embedder_from_config(dict(config))
        self.text_column, self.vector_column = text_column, vector_column
        self.kind, self.instruction = kind, instruction
        marker = os.environ.get("QWEN_EMBED_RAY_PID_DIR")
        if marker:  # tests find the actor processes here to kill one mid-run
            open(os.path.join(marker, f"{os.getpid()}.pid"), "w").close()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = batch[self.text_column]
        n = len(texts)
        todo = np.arange(n) if _STATUS not in batch else np.flatnonzero(batch[_STATUS] == _NEW)
        dim = self.embedder.dimension
        vectors = np.zeros((n, dim), dtype=np.float32)
        if len(todo):
            chosen = [str(texts[i]) for i in todo]
            if self.kind == "query":
                vectors[todo] = self.embedder.embed_queries(chosen, instruction=self.instruction)
            else:
                vectors[todo] = self.embedder.embed_documents(chosen)
        out = dict(batch)
        out[self.vector_column] = vectors
        return out


def embed_dataset(
    ds: Any,
    embedder: Embedder | Mapping[str, Any],
    *,
    text_column: str = "text",
    vector_column: str = "vector",
    kind: Kind = "document",
    instruction: str | None = None,
    batch_size: int = 256,
    concurrency: int | tuple[int, int] = 1,
    num_gpus: float = 0,
) -> Any:
    """Add a float32 fixed-width ``vector_column`` to a Ray Dataset (lazily, like any Ray transform).

    ``kind="query"`` wraps texts in the Qwen3 instruction; documents are embedded as they are. The
    embedder travels as ``to_config()`` (no secret: each worker reads a key from its own environment)
    and is built once per actor; ``num_gpus=1`` gives each actor its own GPU for a LocalEmbedder.
    """
    require_ray()
    check_choice("kind", kind, ("document", "query"))
    check_int("batch_size", batch_size, minimum=1)
    config = embedder.to_config() if isinstance(embedder, Embedder) else dict(embedder)
    return ds.map_batches(
        _EmbedActor,
        fn_constructor_kwargs={
            "config": config, "text_column": text_column, "vector_column": vector_column,
            "kind": kind, "instruction": instruction,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=_actor_pool(concurrency),
        num_gpus=num_gpus,
    )


def _actor_pool(concurrency: int | tuple[int, int]) -> Any:
    from ray.data import ActorPoolStrategy

    if isinstance(concurrency, tuple):
        return ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    check_int("concurrency", concurrency, minimum=1)  # or a (min, max) tuple, taken above
    return ActorPoolStrategy(size=concurrency)


# ---------------------------------------------------------------------------------- the store side
_STORES: dict[str, VectorStore] = {}
_STORES_LOCK = threading.Lock()


def _spec_key(spec: str | Mapping[str, Any], model: str, dim: int) -> str:
    return json.dumps([spec if isinstance(spec, str) else dict(spec), model, dim], sort_keys=True, default=str)


def _worker_store(spec: str | Mapping[str, Any], model: str, dim: int) -> VectorStore:
    """One store (one client) per worker process and spec, reused by every block it writes."""
    key = _spec_key(spec, model, dim)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = store_from_spec(spec, PrecomputedEmbedder(model, dim))
            _STORES[key] = store
        return store


def _drop_worker_store(spec: str | Mapping[str, Any], model: str, dim: int) -> None:
    with _STORES_LOCK:
        store = _STORES.pop(_spec_key(spec, model, dim), None)
    if store is not None:
        _close(store)


def _with_worker_store(spec: str | Mapping[str, Any], model: str, dim: int, fn: Any,
                       attempts: int = 4) -> Any:
    """Run ``fn(store)`` with this worker's store; on a connection failure (a cached client that the
    server dropped, a database restarted meanwhile) build a new client and try again with backoff."""
    for attempt in range(attempts):
        try:
            return fn(_worker_store(spec, model, dim))
        except (QwenEmbedError, ValueError, TypeError):
            raise
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            logger.warning("store %s failed (%s); reconnecting (attempt %d of %d)",
                           _describe(spec), exc, attempt + 2, attempts)
            _drop_worker_store(spec, model, dim)
            time.sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


def _vector_width(schema: Any, column: str) -> int:
    try:
        field_type = schema.field(column).type
    except (KeyError, AttributeError) as exc:
        raise ConfigurationError(f"the dataset has no {column!r} column to write") from exc
    shape = getattr(field_type, "shape", None)
    if shape is not None and len(shape) == 1:
        return int(shape[0])
    size = getattr(field_type, "list_size", None)
    if size:
        return int(size)
    raise ConfigurationError(f"column {column!r} is not a fixed-width vector column ({field_type})")


def _rows(block: Any) -> dict[str, np.ndarray]:
    from ray.data.block import BlockAccessor

    out: dict[str, np.ndarray] = BlockAccessor.for_block(block).to_batch_format("numpy")
    return out


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        loaded = json.loads(value) if value else {}
        return dict(loaded)
    return dict(value)


class QwenStoreDatasink:
    """A Ray ``Datasink`` writing rows (id, text, vector, metadata) into any store built from a spec.

    The dimension guard runs once on the driver (``on_write_start``) before any block is written; each
    write task builds (once per worker process) the store from the plain spec and upserts its blocks
    with the rows' ids, so a retried task writes nothing twice.
    """

    def __init__(self, store_spec: str | Mapping[str, Any], model: str, *, text_column: str = "text",
                 vector_column: str = "vector", id_column: str = "id", metadata_column: str = "metadata") -> None:
        self.store_spec = store_spec if isinstance(store_spec, str) else dict(store_spec)
        self.model = model
        self.text_column, self.vector_column = text_column, vector_column
        self.id_column, self.metadata_column = id_column, metadata_column
        self.dimension: int | None = None
        self.totals: dict[str, int] = {}

    def on_write_start(self, schema: Any = None) -> None:
        if schema is None:
            return
        self.dimension = _vector_width(schema, self.vector_column)
        store = store_from_spec(self.store_spec, PrecomputedEmbedder(self.model, self.dimension))
        try:
            store.ensure_dimension()
        finally:
            _close(store)

    def write(self, blocks: Iterable[Any], ctx: Any) -> dict[str, int]:
        counts = {"written": 0, "skipped": 0, "invalid": 0}
        for block in blocks:
            rows = _rows(block)
            vectors = np.asarray(rows[self.vector_column], dtype=np.float32)
            if vectors.ndim != 2 or not len(vectors):
                continue
            status = rows.get(_STATUS)
            keep = np.arange(len(vectors)) if status is None else np.flatnonzero(status == _NEW)
            if status is not None:
                counts["skipped"] += int(np.sum(status == _EXISTS))
                counts["invalid"] += int(np.sum(status == _INVALID))
            if not len(keep):
                continue
            texts = [str(rows[self.text_column][i]) for i in keep]
            ids = ([str(rows[self.id_column][i]) for i in keep] if self.id_column in rows
                   else [content_id(t) for t in texts])
            metas = ([_metadata(rows[self.metadata_column][i]) for i in keep]
                     if self.metadata_column in rows else [{} for _ in keep])
            chosen = vectors[keep]

            def put(store: VectorStore, ids: list[str] = ids, texts: list[str] = texts,
                    metas: list[dict[str, Any]] = metas, chosen: np.ndarray = chosen) -> None:
                # write_batch's contract: the store checked (pgvector registers its vector type on the
                # connection there); once per worker store, a no-op afterwards
                store.ensure_dimension()
                size = store.write_batch_size
                for start in range(0, len(ids), size):
                    part = slice(start, start + size)
                    store.check_batch(ids[part], texts[part], metas[part])
                    store.write_batch(ids[part], chosen[part], texts[part], metas[part])

            # Upserts by id: writing a block again after a reconnect stores nothing twice.
            _with_worker_store(self.store_spec, self.model, vectors.shape[1], put)
            counts["written"] += len(keep)
        return counts

    def on_write_complete(self, write_result: Any) -> None:
        totals = {"written": 0, "skipped": 0, "invalid": 0}
        for part in getattr(write_result, "write_returns", []) or []:
            for k, v in (part or {}).items():
                totals[k] = totals.get(k, 0) + int(v)
        self.totals = totals

    def on_write_failed(self, error: Exception) -> None:
        logger.error("writing to %s failed: %s", _describe(self.store_spec), error)

    def get_name(self) -> str:
        return "QwenStore"

    @property
    def supports_distributed_writes(self) -> bool:
        return not _is_local_only(self.store_spec)

    @property
    def min_rows_per_write(self) -> int | None:
        return None

    @property
    def min_bytes_per_write(self) -> int | None:
        return None


def _describe(spec: str | Mapping[str, Any]) -> str:
    from .adapters.spec import redact_spec

    return redact_spec(spec)


def _is_local_only(spec: str | Mapping[str, Any]) -> bool:
    return is_local_only(spec)  # declared per store in adapters/spec.py's STORES


def _close(store: VectorStore) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # closing is best effort: the work is done
            logger.debug("closing %r failed", store, exc_info=True)


def _as_datasink(sink: QwenStoreDatasink) -> Any:
    """Wrap ours in Ray's ``Datasink`` class (imported lazily: Ray is an optional extra)."""
    from ray.data import Datasink

    class _Sink(Datasink[dict[str, int]]):  # type: ignore[misc]
        def __init__(self, inner: QwenStoreDatasink) -> None:
            self.inner = inner

        def on_write_start(self, schema: Any = None) -> None:
            self.inner.on_write_start(schema)

        def write(self, blocks: Iterable[Any], ctx: Any) -> dict[str, int]:
            return self.inner.write(blocks, ctx)

        def on_write_complete(self, write_result: Any) -> None:
            self.inner.on_write_complete(write_result)

        def on_write_failed(self, error: Exception) -> None:
            self.inner.on_write_failed(error)

        def get_name(self) -> str:
            return self.inner.get_name()

        @property
        def supports_distributed_writes(self) -> bool:
            return self.inner.supports_distributed_writes

    return _Sink(sink)


def write_to_store(
    ds: Any,
    store_spec: str | Mapping[str, Any],
    *,
    model: str,
    text_column: str = "text",
    vector_column: str = "vector",
    id_column: str = "id",
    metadata_column: str = "metadata",
    concurrency: int | None = None,
) -> dict[str, int]:
    """Write a Dataset holding ``vector_column`` (from ``embed_dataset``) into the store a spec names.

    ``model`` is the embedding model's name, recorded with a new collection and checked against an
    existing one, with the vector width, before any block is written (``DimensionMismatchError``).
    Rows without an ``id`` column get content-hash ids. Returns counts (written, skipped, invalid).
    """
    require_ray()
    if _is_local_only(store_spec):
        raise ConfigurationError(
            f"the {parse_store_spec(store_spec)['store']} store is local to one process: Ray workers cannot "
            "write into it; use ingest() on one machine, or a store reached by URI"
        )
    inner = QwenStoreDatasink(store_spec, model, text_column=text_column, vector_column=vector_column,
                              id_column=id_column, metadata_column=metadata_column)
    try:
        ds.write_datasink(_as_datasink(inner), concurrency=concurrency)
    except Exception as exc:
        ours = _unwrap(exc)
        if ours is exc:
            raise
        raise ours from exc
    return inner.totals


# ---------------------------------------------------------------------------------- read -> embed -> write
class _Prepare:
    """Validate rows, give them ids, and mark those the store already holds (a re-run skips them)."""

    def __init__(self, store_spec: str | Mapping[str, Any], model: str, dimension: int,
                 text_column: str, on_invalid: str, skip_existing: bool) -> None:
        self.spec, self.model, self.dimension = store_spec, model, dimension
        self.skip_existing = skip_existing
        self.text_column, self.on_invalid = text_column, on_invalid

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = batch[self.text_column]
        n = len(texts)
        given_ids = batch.get("id")
        metas = batch.get("metadata")
        ids: list[str] = []
        status = np.full(n, _NEW, dtype=object)
        clean_texts: list[str] = []
        meta_out: list[str] = []
        for i in range(n):
            text = texts[i]
            rid = None if given_ids is None or given_ids[i] is None else given_ids[i]
            meta = None if metas is None else metas[i]
            try:
                items, id_list, meta_list = prepare_records(
                    [text], None if rid is None else [rid], None if meta is None else [_metadata(meta)]
                )
            except (InvalidInputError, ValueError, TypeError) as exc:
                where = f"id {rid!r}" if rid is not None else f"text {str(text)[:40]!r}"
                if self.on_invalid == "raise":
                    raise InvalidInputError(f"record ({where}) is invalid: {exc}", item_id=rid) from None
                logger.warning("skipping invalid record (%s): %s", where, exc)
                status[i] = _INVALID
                ids.append(str(rid) if rid is not None else "")
                clean_texts.append(" ")
                meta_out.append("{}")
                continue
            ids.append(id_list[0])
            clean_texts.append(items[0])
            meta_out.append(json.dumps(meta_list[0]))
        if self.skip_existing:
            new = [ids[i] for i in range(n) if status[i] == _NEW]
            held: set[str] = (
                _with_worker_store(self.spec, self.model, self.dimension, lambda st: st.existing_ids(new))
                if new else set()
            )
            for i in range(n):
                if status[i] == _NEW and ids[i] in held:
                    status[i] = _EXISTS
        return {
            "id": np.array(ids, dtype=object),
            self.text_column: np.array(clean_texts, dtype=object),
            "metadata": np.array(meta_out, dtype=object),
            _STATUS: status,
        }


def _read(source: Any, text_column: str) -> Any:
    ray = require_ray()
    if not isinstance(source, (str, os.PathLike, list, tuple)):
        return source  # an existing Dataset
    paths = [os.fspath(p) for p in (source if isinstance(source, (list, tuple)) else [source])]
    suffixes = {os.path.splitext(p.rstrip("/"))[1].lower() for p in paths}
    if suffixes <= {".jsonl", ".json"}:
        return ray.data.read_json(paths)
    if suffixes <= {".parquet"}:
        return ray.data.read_parquet(paths)
    if suffixes <= {".txt", ".md", ""}:
        ds = ray.data.read_text(paths)
        return ds if text_column == "text" else ds.rename_columns({"text": text_column})
    raise ConfigurationError(
        f"cannot tell how to read {sorted(suffixes)}: pass .jsonl/.json, .parquet or .txt files, or a Dataset"
    )


def ingest_ray(
    source: Any,
    store_spec: str | Mapping[str, Any],
    embedder: Embedder,
    *,
    text_column: str = "text",
    batch_size: int = 256,
    concurrency: int | tuple[int, int] = 1,
    num_gpus: float = 0,
    on_invalid: Literal["raise", "skip"] = "raise",
    skip_existing: bool = True,
) -> IngestReport:
    """Read -> embed -> write on Ray Data; returns an ``IngestReport`` (written, skipped, invalid, seconds).

    ``source``: a path or list of paths (``.jsonl``/``.json`` with ``text`` and optional ``id`` and
    ``metadata`` fields, ``.parquet``, or ``.txt`` one record per line) or an existing Dataset.
    ``store_spec``: a URI or dict for ``store_from_spec`` (Milvus by URI, Chroma by host/port,
    Pinecone by index host). Ids default to content hashes, so re-running the job stores only what is
    missing; ``skip_existing`` asks the store first and embeds only the new rows.

    A store one process holds (Qdrant local mode on a folder: qdrant-client locks it to one client) is
    written by the driver: the workers read and embed, the driver asks it which ids it holds and writes
    the embedded rows as they stream back. Stores that live only in memory (FAISS, Qdrant ``:memory:``)
    are refused.
    """
    require_ray()
    check_choice("on_invalid", on_invalid, ("raise", "skip"))
    if _is_local_only(store_spec) and not writes_from_driver(store_spec):
        raise ConfigurationError(f"the {parse_store_spec(store_spec)['store']} store is local-only: "
                                 "use qwen_embed_adapters.ingest.ingest on one machine")
    started = time.perf_counter()
    ctx = require_ray().data.DataContext.get_current()
    # Our InvalidInputError / DimensionMismatchError reach the caller as themselves, not as text inside
    # Ray's UserCodeException (whose cause is lost when it crosses processes).
    saved, ctx.raise_original_map_exception = ctx.raise_original_map_exception, True
    try:
        report = _ingest_ray(source, store_spec, embedder, text_column=text_column, batch_size=batch_size,
                             concurrency=concurrency, num_gpus=num_gpus, on_invalid=on_invalid,
                             skip_existing=skip_existing)
    finally:
        ctx.raise_original_map_exception = saved
    report.seconds = time.perf_counter() - started
    logger.info("ingest_ray into %s: %s", _describe(store_spec), report)
    return report


def _ingest_ray(source: Any, store_spec: str | Mapping[str, Any], embedder: Embedder, *, text_column: str,
                batch_size: int, concurrency: int | tuple[int, int], num_gpus: float, on_invalid: str,
                skip_existing: bool) -> IngestReport:
    dim = embedder.dimension
    # The guard before anything is read or embedded: the dimension (on_write_start repeats it) and, once on
    # the driver with the real embedder, the space card (the workers' stores only write vectors). The guard
    # store holds a PrecomputedEmbedder like the workers' (Chroma records its embedding function).
    guard = store_from_spec(store_spec, PrecomputedEmbedder(embedder.model, dim))
    try:
        guard.ensure_dimension()
        guard.ensure_space(writing=True, embedder=embedder)
    finally:
        _close(guard)
    on_driver = _is_local_only(store_spec)  # ingest_ray let it through: the driver writes it
    ds = _read(source, text_column).map_batches(
        _Prepare,
        fn_constructor_kwargs={
            "store_spec": store_spec, "model": embedder.model, "dimension": dim,
            "text_column": text_column, "on_invalid": on_invalid,
            "skip_existing": skip_existing and not on_driver,  # a worker cannot open the driver's store
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=_actor_pool(1),
    )
    try:
        if on_driver and skip_existing:
            ds = _mark_held_on_driver(ds, store_spec, embedder.model, dim)
        ds = embed_dataset(ds, embedder, text_column=text_column, batch_size=batch_size,
                           concurrency=concurrency, num_gpus=num_gpus)
        # A Dataset keeps the DataContext it was created with (the caller's own, for a Dataset passed in).
        ds.context.raise_original_map_exception = True
        if on_driver:
            totals = _write_on_driver(ds, store_spec, embedder.model, dim, text_column)
        else:
            totals = write_to_store(ds, store_spec, model=embedder.model, text_column=text_column)
    finally:
        if on_driver:  # the driver's store closes, and with it the folder's lock, whatever happened
            _drop_worker_store(store_spec, embedder.model, dim)
    report = IngestReport(
        written=totals.get("written", 0), skipped=totals.get("skipped", 0), invalid=totals.get("invalid", 0),
    )
    report.seen = report.written + report.skipped + report.invalid
    return report


def _mark(batch: dict[str, np.ndarray], held: frozenset[str]) -> dict[str, np.ndarray]:
    status = np.array(batch[_STATUS], dtype=object, copy=True)
    for i, x in enumerate(batch["id"]):
        if status[i] == _NEW and str(x) in held:
            status[i] = _EXISTS
    return {**batch, _STATUS: status}


def _mark_held_on_driver(ds: Any, spec: str | Mapping[str, Any], model: str, dim: int) -> Any:
    """Mark the rows the driver's store already holds, before anything is embedded (the ids are known only
    after ``_Prepare``: the prepared rows are materialised once and their ids asked on the driver)."""
    ds = ds.materialize()
    ids = [str(x) for b in ds.iter_batches(batch_format="numpy", batch_size=4096)
           for x, st in zip(b["id"], b[_STATUS], strict=True) if st == _NEW]
    held = frozenset(_with_worker_store(spec, model, dim, lambda st: st.existing_ids(ids))) if ids else frozenset()
    return ds.map_batches(_mark, fn_kwargs={"held": held}, batch_format="numpy") if held else ds


def _write_on_driver(ds: Any, spec: str | Mapping[str, Any], model: str, dim: int, text_column: str) -> dict[str, int]:
    """Write the embedded rows from this (the driver) process, as they stream back, into its one store."""
    sink = QwenStoreDatasink(spec, model, text_column=text_column)
    totals = {"written": 0, "skipped": 0, "invalid": 0}
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        for key, value in sink.write([batch], None).items():
            totals[key] += value
    return totals


def _unwrap(exc: BaseException) -> BaseException:
    """Ray wraps a task's exception (RayTaskError, UserCodeException); give back ours when it is one."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        cause = getattr(cur, "cause", None)
        if isinstance(cur, QwenEmbedError) and not isinstance(cause, QwenEmbedError):
            return cur
        cur = cause if isinstance(cause, BaseException) else (cur.__cause__ or cur.__context__)
    return exc


__all__ = [
    "Kind",
    "PrecomputedEmbedder",
    "QwenStoreDatasink",
    "embed_dataset",
    "ingest_ray",
    "require_ray",
    "write_to_store",
]
