"""A persistent embedding cache keyed by the vector space (issue #25, item 5).

:class:`CachedEmbedder` wraps any :class:`~qwen_embed_adapters.embedder.Embedder` and keeps every vector it
returns in one SQLite file (standard library, WAL journal, so several processes, e.g. Ray workers, can
read and write the same file at once). A re-ingestion of unchanged texts, or a query asked again, is
answered from the file instead of the model.

The key of a vector is ``(space, kind, instruction, dimensions, sha256(text))``:

- ``space`` is the fingerprint of the inner embedder's space card (:mod:`qwen_embed_adapters.space`),
  made by embedding the card's probes when the cache is first used. The file keeps every card it was
  built with. When the current embedder's probes agree with a stored card (``compare_cards`` at
  ``tolerance``) its entries are used; when they agree with none, the embedder speaks another space
  (another model, mean pooling, a server build that disagrees...): its vectors go to a new namespace,
  a warning names both fingerprints, and the old entries stay in the file unused. A cache never answers
  from another space.
- ``kind`` is ``query``, ``document`` or ``text`` (``embed_texts``: no instruction, no prompt), and
  ``instruction`` the query instruction (empty for documents), so the same string as a query and as a
  document, or under two instructions, are two entries.
- ``dimensions`` is the output width (MRL truncation).

Values are the float32 bytes the inner embedder returned: a hit is bit-for-bit the vector a miss
returned. Misses of one call are embedded in one call to the inner embedder, in input order.

Example::

    from qwen_embed_adapters.cache import CachedEmbedder
    from qwen_embed_adapters.testing import FakeEmbedder

    emb = CachedEmbedder(FakeEmbedder(dimensions=64), "/tmp/qwen-embed-cache-example.sqlite")
    emb.embed_documents(["hello", "world"])   # misses: embedded and stored
    emb.embed_documents(["hello", "world"])   # hits
    assert (emb.hits, emb.misses) == (2, 2) and emb.hit_rate == 0.5
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .embedder import Embedder
from .errors import ConfigurationError
from .settings import Settings, check_number, check_str
from .space import DEFAULT_TOLERANCE, SpaceCard, aembed_probes, card_from_vectors, compare_cards, embed_probes
from .vectors import as_text_list

logger = logging.getLogger(__name__)

__all__ = ["CacheSettings", "CachedEmbedder"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spaces (fingerprint TEXT PRIMARY KEY, model TEXT NOT NULL, "
    "dimension INTEGER NOT NULL, card TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS vectors (space TEXT NOT NULL, kind TEXT NOT NULL, instruction TEXT NOT NULL, "
    "dimensions INTEGER NOT NULL, digest BLOB NOT NULL, vector BLOB NOT NULL, "
    "PRIMARY KEY (space, kind, instruction, dimensions, digest)) WITHOUT ROWID",
)
_CHUNK = 500  # digests per SELECT ... IN (...): below SQLite's 999 host parameters of older builds


@dataclasses.dataclass(frozen=True)
class CacheSettings(Settings):
    """The cache's own settings (the inner embedder keeps its own).

    ``path``: the SQLite file (created with its folder). ``tolerance``: the cosine a probe must reach for
    the current embedder to use a stored space's entries. ``timeout``: seconds a process waits for
    another's write lock before failing.
    """

    path: str
    tolerance: float = DEFAULT_TOLERANCE
    timeout: float = 30.0

    def validate(self) -> None:
        check_str("path", self.path)
        check_number("tolerance", self.tolerance, minimum=-1.0, maximum=1.0)
        check_number("timeout", self.timeout, positive=True)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _rebuild(inner: Embedder, settings: dict[str, Any]) -> CachedEmbedder:
    """Unpickling entry point: the inner embedder (pickled by its own settings) and the cache settings."""
    return CachedEmbedder.from_config(settings, inner=inner)


class CachedEmbedder(Embedder):
    """An Embedder that answers repeated texts from a SQLite file, per vector space.

    ``embedder``: the inner embedder that embeds the misses. ``path``: the cache file. The first call
    (or :attr:`fingerprint`) embeds the space card's probes with ``embedder`` and picks the namespace (see
    the module docstring). ``hits`` and ``misses`` count the inputs of this object (each process or
    unpickled copy counts its own); ``hit_rate`` is ``hits / (hits + misses)``.

    ``to_config()`` holds the inner embedder's config under ``"embedder"``, so
    ``embedder_from_config(cached.to_config())`` rebuilds both; pickling sends the inner embedder and the
    cache settings, and the copy opens the file afresh.
    """

    engine = "cached"

    def __init__(
        self,
        embedder: Embedder,
        path: str | os.PathLike[str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        timeout: float = 30.0,
    ) -> None:
        if not isinstance(embedder, Embedder):
            raise ConfigurationError(f"embedder must be an Embedder, got {type(embedder).__name__}")
        if isinstance(embedder, CachedEmbedder):
            raise ConfigurationError("embedder is already a CachedEmbedder; wrap the inner embedder once")
        self.settings = CacheSettings(path=os.fspath(path) if isinstance(path, os.PathLike) else path,
                                      tolerance=tolerance, timeout=timeout)
        self.inner = embedder
        super().__init__(
            embedder.model,
            dimensions=embedder.dimensions,
            query_instruction=embedder.query_instruction,
            batch_size=embedder.batch_size,
            max_concurrency=embedder.max_concurrency,
            native_dim=embedder.native_dimension,
        )
        self.hits = 0
        self.misses = 0
        self._count_lock = threading.Lock()
        self._db_lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._space: str | None = None
        self._open_lock = threading.Lock()

    # ------------------------------------------------------------------ config, pickling, repr
    @property
    def path(self) -> str:
        return self.settings.path

    def to_config(self) -> dict[str, Any]:
        """``{"engine": "cached", "embedder": inner config, "path": ..., "tolerance": ..., "timeout": ...}``."""
        return {"engine": "cached", "embedder": self.inner.to_config(), **self.settings.to_config()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, inner: Embedder) -> CachedEmbedder:
        """The cache of ``config`` (``to_config()`` output, ``engine`` and ``embedder`` keys optional) over
        ``inner``, already rebuilt (``config.embedder_from_config`` does both)."""
        cfg = dict(config)
        engine = cfg.pop("engine", "cached")
        if engine != "cached":
            raise ConfigurationError(f"CachedEmbedder config has engine={engine!r}, expected 'cached'")
        cfg.pop("embedder", None)
        settings = CacheSettings.from_config(cfg, what="CachedEmbedder")
        return cls(inner, settings.path, tolerance=settings.tolerance, timeout=settings.timeout)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.inner, self.settings.to_config()))

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, path={self.path!r})"

    # ------------------------------------------------------------------ what the inner embedder knows
    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def dimension_if_known(self) -> int | None:
        return self.inner.dimension_if_known

    @property
    def native_dimension(self) -> int | None:
        return self.inner.native_dimension

    @property
    def max_input_tokens(self) -> int | None:
        return self.inner.max_input_tokens

    @property
    def engine_family(self) -> str:
        """The inner embedder's engine (and family): what space cards record for a cached embedder."""
        family = getattr(self.inner, "engine_family", None)
        return self.inner.engine + (f"/{family}" if isinstance(family, str) else "")

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        return self.inner.count_tokens(texts)

    def format_queries(self, texts: Iterable[str], instruction: str | None = None) -> list[str]:
        return self.inner.format_queries(texts, instruction)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - the public calls are overridden
        return self.inner.embed_texts(texts)

    @property
    def hit_rate(self) -> float:
        """``hits / (hits + misses)``; 0.0 before any lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    # ------------------------------------------------------------------ the file
    def _connection(self) -> sqlite3.Connection:
        """This process's connection (a forked child opens its own: SQLite connections do not survive fork)."""
        if self._conn is None or self._pid != os.getpid():
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.settings.timeout, check_same_thread=False,
                                   isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.settings.timeout * 1000)}")
            # WAL lets readers go on while one process writes (sqlite.org/wal.html); NORMAL sync is
            # durable against a crash of the process, which is what a cache needs.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            with conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _choose_space(self, card: SpaceCard) -> str:
        """The namespace for ``card`` (the current embedder's): a stored space it agrees with, else its own."""
        with self._db_lock:
            conn = self._connection()
            rows = conn.execute(
                "SELECT fingerprint, card FROM spaces WHERE dimension = ? ORDER BY created",
                (card.dimension,),
            ).fetchall()
            others = [r[0] for r in conn.execute("SELECT fingerprint FROM spaces").fetchall()]
            fp = card.fingerprint
            best: tuple[float, str] | None = None
            for stored_fp, text in rows:
                try:
                    stored = SpaceCard.from_json(text)
                except ConfigurationError as exc:
                    logger.warning("cache %s: unreadable card for space %s (%s); not used", self.path, stored_fp, exc)
                    continue
                comparison = compare_cards(stored, card.vectors, self.settings.tolerance)
                if comparison.same_space and (best is None or comparison.worst[1] > best[0]):
                    best = (comparison.worst[1], stored_fp)
            if best is not None:
                return best[1]
            conn.execute(
                "INSERT OR IGNORE INTO spaces (fingerprint, model, dimension, card, created) VALUES (?, ?, ?, ?, ?)",
                (fp, card.model, card.dimension, card.dumps(), time.time()),
            )
        if others:
            logger.warning(
                "cache %s: %s (engine %s) speaks another vector space than the %d stored (%s): its vectors go "
                "to the new space %s; the old entries stay in the file and are not used",
                self.path, card.model, card.engine, len(others), ", ".join(others), fp,
            )
        return fp

    def _card(self, vectors: np.ndarray) -> SpaceCard:
        card = card_from_vectors(self.inner, vectors, self.inner.query_instruction)
        return dataclasses.replace(card, engine=self.engine_family)

    @property
    def fingerprint(self) -> str:
        """The namespace this cache reads and writes (embeds the probes on first use)."""
        if self._space is None:
            with self._open_lock:
                if self._space is None:
                    self._space = self._choose_space(self._card(embed_probes(self.inner)))
        return self._space

    async def _afingerprint(self) -> str:
        if self._space is None:
            vectors = await aembed_probes(self.inner)
            space = await asyncio.to_thread(self._choose_space, self._card(vectors))
            with self._open_lock:
                if self._space is None:
                    self._space = space
        return self._space

    def _lookup(self, space: str, kind: str, instruction: str, digests: list[bytes]) -> dict[bytes, np.ndarray]:
        dim = self.inner.dimension
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(digests))
        with self._db_lock:
            conn = self._connection()
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT digest, vector FROM vectors WHERE space = ? AND kind = ? AND instruction = ? "
                    f"AND dimensions = ? AND digest IN ({marks})",
                    (space, kind, instruction, dim, *chunk),
                ).fetchall()
                for digest, blob in rows:
                    if len(blob) == 4 * dim:  # a truncated row is a miss (and is overwritten)
                        found[bytes(digest)] = np.frombuffer(blob, dtype="<f4")
        return found

    def _store(self, space: str, kind: str, instruction: str, digests: list[bytes], vectors: np.ndarray) -> None:
        dim = vectors.shape[1]
        rows = [
            (space, kind, instruction, dim, d, np.ascontiguousarray(v, dtype="<f4").tobytes())
            for d, v in zip(digests, vectors, strict=True)
        ]
        with self._db_lock:
            conn = self._connection()
            with conn:  # one transaction: a crash leaves all or none of the batch
                conn.executemany(
                    "INSERT OR REPLACE INTO vectors (space, kind, instruction, dimensions, digest, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )

    # ------------------------------------------------------------------ the lookups
    def _plan(self, space: str, kind: str, instruction: str, texts: list[str]
              ) -> tuple[list[bytes], dict[bytes, np.ndarray], list[int]]:
        digests = [_digest(t) for t in texts]
        found = self._lookup(space, kind, instruction, digests)
        first: dict[bytes, int] = {}
        for i, d in enumerate(digests):
            if d not in found:
                first.setdefault(d, i)
        missing = sorted(first.values())  # each distinct missing text once, in input order
        hits = sum(d in found for d in digests)
        with self._count_lock:
            self.hits += hits
            self.misses += len(texts) - hits
        return digests, found, missing

    def _assemble_rows(self, digests: list[bytes], found: dict[bytes, np.ndarray],
                       missing: list[int], fresh: np.ndarray | None) -> np.ndarray:
        if fresh is not None:
            for k, i in enumerate(missing):
                found[digests[i]] = fresh[k]
        return np.stack([found[d] for d in digests]).astype(np.float32, copy=False)

    def _cached(self, kind: str, instruction: str, texts: list[str],
                embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        if not texts:
            return embed([])
        space = self.fingerprint
        digests, found, missing = self._plan(space, kind, instruction, texts)
        fresh = None
        if missing:
            fresh = np.asarray(embed([texts[i] for i in missing]), dtype=np.float32)
            self._store(space, kind, instruction, [digests[i] for i in missing], fresh)
        return self._assemble_rows(digests, found, missing, fresh)

    async def _acached(self, kind: str, instruction: str, texts: list[str],
                       embed: Callable[[list[str]], Awaitable[np.ndarray]]) -> np.ndarray:
        if not texts:
            return await embed([])
        space = await self._afingerprint()
        digests, found, missing = await asyncio.to_thread(self._plan, space, kind, instruction, texts)
        fresh = None
        if missing:
            fresh = np.asarray(await embed([texts[i] for i in missing]), dtype=np.float32)
            await asyncio.to_thread(self._store, space, kind, instruction, [digests[i] for i in missing], fresh)
        return self._assemble_rows(digests, found, missing, fresh)

    def _instruction(self, instruction: str | None) -> str:
        return self.inner.query_instruction if instruction is None else instruction

    def embed_documents(self, texts: Iterable[str]) -> np.ndarray:
        items = as_text_list(texts)  # bad input fails here, before any lookup or write
        return self._cached("document", "", items, self.inner.embed_documents)

    def embed_queries(self, texts: Iterable[str], instruction: str | None = None) -> np.ndarray:
        items = as_text_list(texts, what="queries")
        task = self._instruction(instruction)
        return self._cached("query", task, items, lambda batch: self.inner.embed_queries(batch, task))

    def embed_texts(self, texts: Iterable[str]) -> np.ndarray:
        items = as_text_list(texts)
        return self._cached("text", "", items, self.inner.embed_texts)

    async def aembed_documents(self, texts: Iterable[str]) -> np.ndarray:
        items = as_text_list(texts)
        return await self._acached("document", "", items, self.inner.aembed_documents)

    async def aembed_queries(self, texts: Iterable[str], instruction: str | None = None) -> np.ndarray:
        items = as_text_list(texts, what="queries")
        task = self._instruction(instruction)
        return await self._acached("query", task, items, lambda batch: self.inner.aembed_queries(batch, task))

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the file (reopened on next use) and the inner embedder."""
        with self._db_lock:
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()
        self.inner.close()

    async def aclose(self) -> None:
        """Async twin of ``close``."""
        with self._db_lock:
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()
        await self.inner.aclose()

    def stats(self) -> dict[str, Any]:
        """Entries per stored space in the file, and this object's counters."""
        with self._db_lock:
            rows = self._connection().execute(
                "SELECT s.fingerprint, s.model, COUNT(v.digest) FROM spaces s LEFT JOIN vectors v "
                "ON v.space = s.fingerprint GROUP BY s.fingerprint ORDER BY s.created"
            ).fetchall()
        return {
            "path": self.path,
            "space": self._space,
            "spaces": {fp: {"model": model, "entries": n} for fp, model, n in rows},
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
        }
