"""``ingest(store, records)``: read a batch, check it, embed it on a worker thread while the batch before
it is written, retry a failed write with only the ids still missing, report (``IngestReport``)."""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..adapters.base import prepare_records
from ..cache import CachedEmbedder
from ..errors import DimensionMismatchError, IngestError, InvalidInputError, QwenEmbedError, WriteError
from ..settings import check_choice, check_int
from .records import Record, name_record, normalise_record

if TYPE_CHECKING:
    from ..adapters.base import VectorStore

logger = logging.getLogger("qwen_embed_adapters.ingest")


@dataclass
class IngestReport:
    """What an ingestion did. ``skipped`` counts records already stored (or repeated in the input);
    ``failed`` counts records read but not written because a batch failed; ``invalid`` counts records
    dropped with ``on_invalid="skip"``. ``cache_hit_rate`` is the share of embedded texts answered from
    the cache when the store's embedder is a :class:`~qwen_embed_adapters.cache.CachedEmbedder` (None
    otherwise)."""

    written: int = 0
    skipped: int = 0
    failed: int = 0
    invalid: int = 0
    seen: int = 0
    batches: int = 0
    seconds: float = 0.0
    failed_ids: list[str] = field(default_factory=list)
    cache_hit_rate: float | None = None

    @property
    def texts_per_second(self) -> float:
        """Texts embedded and written per second of wall time."""
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``failed_ids`` included)."""
        out = asdict(self)
        out["texts_per_second"] = round(self.texts_per_second, 2)
        return out

    def __str__(self) -> str:
        extra = f", invalid {self.invalid}" if self.invalid else ""
        if self.cache_hit_rate is not None:
            extra += f", cache hits {self.cache_hit_rate:.0%}"
        return (
            f"written {self.written}, skipped {self.skipped}, failed {self.failed}{extra} "
            f"in {self.seconds:.1f} s ({self.texts_per_second:.1f} texts/s)"
        )


@dataclass
class _Batch:
    number: int
    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    read: int = 0  # records of the input this batch accounts for (written + skipped + invalid)
    attempted: bool = False  # a write was tried: a retry writes only the ids still missing
    future: Future[np.ndarray] | None = None


@dataclass
class _Rows:
    """The records of one batch being read: parallel lists, and how many were skipped as repeats."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadatas: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # each row's position in the whole input
    skipped: int = 0

    def add(self, rid: str, text: str, meta: dict[str, Any], pos: int) -> None:
        self.ids.append(rid)
        self.texts.append(text)
        self.metadatas.append(meta)
        self.positions.append(pos)

    def drop(self, k: int) -> None:
        del self.ids[k], self.texts[k], self.metadatas[k], self.positions[k]

    def keep(self, indices: list[int]) -> None:
        self.ids = [self.ids[i] for i in indices]
        self.texts = [self.texts[i] for i in indices]
        self.metadatas = [self.metadatas[i] for i in indices]
        self.positions = [self.positions[i] for i in indices]


def ingest(
    store: VectorStore,
    records: Iterable[Record],
    *,
    batch_size: int | None = None,
    progress: bool = True,
    skip_existing: bool = True,
    prefetch: int = 2,
    write_retries: int = 3,
    retry_backoff: float = 0.5,
    on_invalid: Literal["raise", "skip"] = "raise",
    total: int | None = None,
    on_batch: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Embed and store ``records``; returns an ``IngestReport``.

    ``records``: any iterable of str or ``{"id", "text", "metadata"}`` dicts (``id`` and ``metadata``
    optional; the default id is the content hash, so a re-run never duplicates). Read lazily.

    - ``batch_size``: records per embed/write step (default: the store's ``write_batch_size``).
    - ``prefetch``: how many batches may be embedded ahead of the one being written (memory holds at
      most ``prefetch + 1`` batches).
    - ``skip_existing``: ask the store which ids it already holds and embed only the others.
    - ``write_retries``/``retry_backoff``: a failed write is retried (only the ids still missing) with
      exponential backoff; embedding retries are the embedder's own (``RemoteEmbedder(max_retries=)``).
    - ``on_invalid``: a bad record (None, non-str text, empty text, bad metadata) raises
      ``InvalidInputError`` naming its position after the batches before it are stored, or with
      ``"skip"`` is logged and counted in ``report.invalid``.
    - ``progress``: a tqdm bar on stderr when stderr is a terminal; silent otherwise.
    - ``on_batch``: called with the running report after each written batch.

    Raises ``IngestError`` (``.failed_ids``, ``.written_ids`` is empty, ``.report``) when a batch still
    fails; ``DimensionMismatchError`` before anything is written when the embedder's width differs from
    the collection's.
    """
    size = store.write_batch_size if batch_size is None else batch_size
    check_int("batch_size", size, minimum=1)
    check_int("prefetch", prefetch, minimum=1)
    check_choice("on_invalid", on_invalid, ("raise", "skip"))
    if isinstance(records, (str, bytes)) or records is None:
        raise InvalidInputError(
            f"records: expected an iterable of str or dicts, got {type(records).__name__}"
        )
    if total is None and hasattr(records, "__len__"):
        total = len(records)  # type: ignore[arg-type]

    dim = store.ensure_dimension()
    store.ensure_space(writing=True)  # the space card, before anything is read or written
    run = _Run(store, dim, size, skip_existing, write_retries, retry_backoff, on_invalid, on_batch)
    run.bar = _progress_bar(progress, total, store.name)
    cache = store.embedder if isinstance(store.embedder, CachedEmbedder) else None
    counted = (cache.hits, cache.misses) if cache is not None else (0, 0)
    try:
        run.execute(iter(records), prefetch)
    finally:
        run.report.seconds = time.perf_counter() - run.started
        if cache is not None:
            hits, misses = cache.hits - counted[0], cache.misses - counted[1]
            run.report.cache_hit_rate = hits / (hits + misses) if hits + misses else 0.0
        if run.bar is not None:
            run.bar.close()
    logger.info("ingest into %r: %s", store.name, run.report)
    return run.report


class _Run:
    """One ingestion: the reading/checking/writing loop on the caller's thread, embedding on a worker."""

    def __init__(
        self,
        store: VectorStore,
        dim: int,
        size: int,
        skip_existing: bool,
        write_retries: int,
        retry_backoff: float,
        on_invalid: str,
        on_batch: Callable[[IngestReport], None] | None,
    ) -> None:
        self.store = store
        self.dim = dim
        self.size = size
        self.skip_existing = skip_existing
        self.write_retries = max(0, int(write_retries))
        self.retry_backoff = retry_backoff
        self.on_invalid = on_invalid
        self.on_batch = on_batch
        self.report = IngestReport()
        self.started = time.perf_counter()
        self.bar: Any = None
        # ids of batches read but not yet written: a repeat inside this window is skipped, not re-sent.
        self.inflight: set[str] = set()

    def execute(self, it: Iterator[Record], prefetch: int) -> None:
        pending: deque[_Batch] = deque()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qwen-embed-ingest")
        try:
            for number in itertools.count():
                raw = list(itertools.islice(it, self.size))
                if not raw:
                    break
                try:
                    batch = self._prepare(raw, number, pending)
                except InvalidInputError:
                    # Store what was read before the bad record, then report it.
                    while pending:
                        self._write_next(pending)
                    raise
                if batch is None:
                    continue
                batch.future = pool.submit(self.store.embedder.embed_documents, batch.texts)
                pending.append(batch)
                self.inflight.update(batch.ids)
                # The write of the oldest batch runs while the newer ones embed on the worker.
                while len(pending) > prefetch:
                    self._write_next(pending)
            while pending:
                self._write_next(pending)
        finally:
            for b in pending:
                if b.future is not None:
                    b.future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ reading
    def _prepare(self, raw: list[Record], number: int, pending: deque[_Batch]) -> _Batch | None:
        """One batch of raw records -> the batch to embed, or None when nothing in it is new."""
        rows = self._read(raw)
        self._check_with_store(rows)
        if self.skip_existing and rows.ids:
            self._drop_stored(rows, number, pending)
        self.report.skipped += rows.skipped
        if not rows.ids:
            self._advance(len(raw))
            return None
        return _Batch(number, rows.ids, rows.texts, rows.metadatas, read=len(raw))

    def _read(self, raw: list[Record]) -> _Rows:
        """Step 1: each record checked and given its id; a repeat of an id read before is skipped."""
        start = self.report.seen
        self.report.seen += len(raw)
        rows = _Rows()
        first_text: dict[str, str] = {}
        for offset, record in enumerate(raw):
            pos = start + offset
            checked = self._checked(record, pos)
            if checked is None:
                continue
            rid, text, item, meta = checked
            if rid in first_text or rid in self.inflight:
                previous = first_text.get(rid)
                if previous is not None and previous != text:
                    raise InvalidInputError(
                        f"record {pos}: id {rid!r} repeats an earlier record of the same batch with a "
                        "different text", index=pos, item_id=rid,
                    )
                rows.skipped += 1
                continue
            first_text[rid] = text
            rows.add(rid, item, meta, pos)
        return rows

    def _checked(self, record: Record, pos: int) -> tuple[str, str, str, dict[str, Any]] | None:
        """(id, text, the text as stored, metadata) of one record; None for a bad one skipped."""
        try:
            rid, text, meta = normalise_record(record, pos)
            items, _, checked = prepare_records([text], [rid], [meta])
        except InvalidInputError as exc:
            if self.on_invalid == "skip":
                logger.warning("ingest: skipping invalid record %d: %s", pos, exc)
                self.report.invalid += 1
                return None
            raise InvalidInputError(name_record(str(exc), pos), index=pos, item_id=exc.item_id) from None
        return rid, text, items[0], checked[0]

    def _check_with_store(self, rows: _Rows) -> None:
        """Step 2: the store's own limits (id length, metadata types); a refused record is named by its
        position in the input, or skipped with ``on_invalid="skip"``."""
        while True:
            try:
                self.store.check_batch(rows.ids, rows.texts, rows.metadatas)
                return
            except InvalidInputError as exc:
                k = exc.index
                if k is None or not 0 <= k < len(rows.positions):
                    raise
                if self.on_invalid != "skip":
                    exc.index = rows.positions[k]
                    raise
                logger.warning("ingest: skipping invalid record %d: %s", rows.positions[k], exc)
                self.report.invalid += 1
                rows.drop(k)

    def _drop_stored(self, rows: _Rows, number: int, pending: deque[_Batch]) -> None:
        """Step 3: the ids the store already holds are skipped (asked with retries)."""
        ids = rows.ids
        try:
            existing = self._retrying("look up existing ids", lambda: self.store.existing_ids(ids), ids)
        except Exception as exc:
            batch = _Batch(number, rows.ids, rows.texts, rows.metadatas)
            raise self._fail(batch, pending, "looking up stored ids", exc) from exc
        if existing:
            keep = [i for i, x in enumerate(rows.ids) if x not in existing]
            rows.skipped += len(rows.ids) - len(keep)
            rows.keep(keep)

    # ------------------------------------------------------------------ writing
    def _write_next(self, pending: deque[_Batch]) -> None:
        batch = pending.popleft()
        try:
            vectors = self._embedded(batch)
        except Exception as exc:
            raise self._fail(batch, pending, "embedding", exc) from exc
        if not batch.ids:  # every record of the batch was refused by the embedder and skipped
            self._advance(batch.read)
            return
        try:
            self._retrying(
                f"write batch {batch.number}",
                lambda: self._write_missing(batch, vectors),
                batch.ids,
            )
        except IngestError:
            raise
        except Exception as exc:
            raise self._fail(batch, pending, "writing", exc) from exc
        self.inflight.difference_update(batch.ids)
        self.report.written += len(batch.ids)
        self.report.batches += 1
        logger.info(
            "ingest %r: batch %d written (%d records; %d written, %d skipped so far)",
            self.store.name, batch.number, len(batch.ids), self.report.written, self.report.skipped,
        )
        self._advance(batch.read)
        if self.on_batch is not None:
            self.report.seconds = time.perf_counter() - self.started
            self.on_batch(self.report)

    def _embedded(self, batch: _Batch) -> np.ndarray:
        """The batch's vectors. With ``on_invalid="skip"``, a record the embedder refuses (an input the
        server finds too long) is dropped and counted, and the rest of the batch is embedded again."""
        assert batch.future is not None
        try:
            return self._check_vectors(batch, batch.future.result())
        except InvalidInputError as exc:
            refused: InvalidInputError = exc
        while True:
            k = refused.index
            if self.on_invalid != "skip" or k is None or not 0 <= k < len(batch.ids):
                raise refused
            logger.warning("ingest: skipping record id %r the embedder refused: %s", batch.ids[k], refused)
            self.report.invalid += 1
            self.inflight.discard(batch.ids[k])
            del batch.ids[k], batch.texts[k], batch.metadatas[k]
            if not batch.ids:
                return np.zeros((0, self.dim), dtype=np.float32)
            try:
                return self._check_vectors(batch, self.store.embedder.embed_documents(batch.texts))
            except InvalidInputError as exc:
                refused = exc

    def _write_missing(self, batch: _Batch, vectors: np.ndarray) -> None:
        """Write a batch; on a retry only the ids the store does not hold yet (a failed write may have
        landed partly, and Milvus ``insert`` would duplicate)."""
        if batch.attempted:
            have = self.store.existing_ids(batch.ids)
            if have:
                keep = [i for i, x in enumerate(batch.ids) if x not in have]
                if not keep:
                    return
                self.store.write_batch(
                    [batch.ids[i] for i in keep], vectors[keep],
                    [batch.texts[i] for i in keep], [batch.metadatas[i] for i in keep],
                )
                return
        batch.attempted = True
        self.store.write_batch(batch.ids, vectors, batch.texts, batch.metadatas)

    def _check_vectors(self, batch: _Batch, vectors: Any) -> np.ndarray:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != len(batch.ids):
            raise QwenEmbedError(
                f"the embedder returned shape {arr.shape} for {len(batch.ids)} texts"
            )
        if arr.shape[1] != self.dim:
            raise DimensionMismatchError(self.dim, arr.shape[1], self.store.name, "embedder output")
        if not np.isfinite(arr).all():
            bad = int(np.argmax(~np.isfinite(arr).all(axis=1)))
            raise QwenEmbedError(f"the vector of id {batch.ids[bad]!r} holds NaN or infinite values")
        return arr

    def _retrying(self, what: str, fn: Callable[[], Any], ids: Sequence[str]) -> Any:
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if not _transient(exc) or attempt >= self.write_retries:
                    raise
                delay = self.retry_backoff * (2**attempt)
                logger.warning(
                    "ingest %r: %s failed (%s: %s), attempt %d/%d, retrying in %.2fs",
                    self.store.name, what, type(exc).__name__, exc, attempt + 1,
                    self.write_retries + 1, delay,
                )
                time.sleep(delay)
                attempt += 1

    def _fail(self, batch: _Batch, pending: deque[_Batch], stage: str, exc: BaseException) -> IngestError:
        not_written = list(batch.ids)
        for later in pending:
            not_written.extend(later.ids)
            if later.future is not None:
                later.future.cancel()
        self.report.failed += len(not_written)
        self.report.failed_ids = not_written
        self.report.seconds = time.perf_counter() - self.started
        logger.error(
            "ingest %r: batch %d failed while %s: %s; %d records not written, %d written before",
            self.store.name, batch.number, stage, exc, len(not_written), self.report.written,
        )
        return IngestError(
            f"ingest into {self.store.name!r} stopped at batch {batch.number} ({stage} failed: {exc}); "
            f"{len(not_written)} records not written (first: {not_written[:3]}), "
            f"{self.report.written} written before it are stored; run the same ingestion again to "
            "finish (stored ids are skipped)",
            failed_ids=not_written,
            cause=exc,
            report=self.report,
        )

    def _advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)


def _transient(exc: BaseException) -> bool:
    """Worth retrying: a store/network failure, not a dimension, input, configuration or programming error."""
    if isinstance(exc, WriteError):
        return exc.cause is None or _transient(exc.cause)
    return not isinstance(exc, (QwenEmbedError, TypeError, AttributeError, NotImplementedError))


def _progress_bar(progress: bool, total: int | None, name: str) -> Any:
    if not progress or not _stderr_is_tty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        logger.debug('no progress bar: pip install "qwen-embed-adapters[progress]"')
        return None
    return tqdm(total=total, unit="text", desc=f"ingest {name}", file=sys.stderr, dynamic_ncols=True)


def _stderr_is_tty() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


__all__ = ["IngestReport", "ingest"]
