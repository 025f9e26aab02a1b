"""FAISS: a local vector store with texts and metadata kept beside the index.

``FaissStore`` is what the guides build by hand (``faiss.IndexFlatIP`` over normalised Qwen3 vectors
plus a Python list of documents), with the shape every store here shares: content-hash ids,
idempotent re-adds, ``delete``, metadata filters, async twins, two-stage reranking, and ``save()`` /
``FaissStore.load()`` that record the model and dimension and refuse another.

Example::

    from qwen_embed_adapters.adapters.faiss import FaissStore

    store = FaissStore(embedder, path="./kb")            # opens ./kb if it was saved before
    store.add_texts(["Paris is the capital of France.", "Qubits are quantum bits."])
    hits = store.search("Tell me about Paris", top_k=2)
    store.save()

Index kinds: ``index="flat"`` (default) is exact inner-product search; ``index="hnsw"`` is an
approximate graph index (``IndexHNSWFlat``) for large corpora. Both keep the raw float32 vectors,
so ``get_vectors`` returns exactly what was stored.

Keyword and hybrid search (``search(query, mode="keyword" | "hybrid")``) use a client-side BM25 index
(``retrieval.KeywordIndex``): built from the stored texts on the first keyword search in a process (or by
``build_keyword_index()``), kept up to date by every write and delete, and saved beside the index.

On disk a store is a folder: ``store.json`` (model, dimension, metric, index settings and the
names of the current data files), ``index-<gen>.faiss``, ``records-<gen>.jsonl`` and, once the keyword
side was built, ``keywords-<gen>.jsonl`` (ids and their terms). ``save()`` writes
a new generation and then replaces ``store.json`` atomically, so a crash mid-save leaves the previous
save readable.

Compact vectors (``precision="int8" | "binary"``) search a small code index (rebuilt from the float vectors
when a folder is opened) and rescore its candidates with the float vectors, which then stay out of RAM: a
saved store reads them from ``vectors-<gen>.f32`` (raw float32 rows, in place of ``index-<gen>.faiss``)
with positioned reads, only the rows a search rescores or ``get_vectors`` asks for; vectors written
since the last save (and all of an in-memory store's) go to an unnamed temporary file, in the store's folder
when it exists, else in the system temp directory (``TMPDIR``; on a tmpfs that is RAM again). ``save()``
writes the new ``vectors-<gen>.f32`` under a temporary name and moves it into place just before
``store.json``, like the other files of a generation.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np

from .. import models
from ..embedder import Embedder
from ..errors import ConfigurationError, DimensionMismatchError, InvalidInputError, MissingDependencyError
from ..retrieval import KeywordIndex
from ..settings import check_choice, check_int, check_str
from ..vectors import as_float32_matrix, l2_normalize
from .base import PRECISIONS, Hit, StoreSettings, VectorStore, check_ids, check_top_k, prepare_records

logger = logging.getLogger(__name__)

FORMAT = "qwen-embed-adapters/faiss"
#: 2: a compact (int8/binary) store keeps its float vectors in ``vectors-<gen>.f32`` (float32 folders still
#: say 1, so readers of version 1 open them)
FORMAT_VERSION = 2
METRICS = ("cosine", "ip", "l2")
INDEX_KINDS = ("flat", "hnsw")
# Below this many allowed records a filtered search scans them exactly instead of walking the graph:
# exact, and faster than HNSW with a very selective filter (which can also come back short).
_EXACT_FILTER_LIMIT = 4096

Filter = Mapping[str, Any] | Callable[[dict[str, Any]], bool] | None


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("faiss-cpu", "faiss", "FaissStore") from None
    return faiss


@dataclasses.dataclass(frozen=True)
class FaissSettings(StoreSettings):
    """Everything that opens a ``FaissStore`` again (``{"store": "faiss", **fields}`` is its spec). A store
    reopened from a saved folder reports the folder's metric and index settings, which won."""

    path: str | None = None
    metric: str = "cosine"
    index: str = "flat"
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128

    def __post_init__(self) -> None:
        if isinstance(self.metric, str):
            object.__setattr__(self, "metric", self.metric.lower())
        super().__post_init__()

    def validate(self) -> None:
        check_str("path", self.path, optional=True)
        check_choice("metric", self.metric, METRICS)
        check_choice("index", self.index, INDEX_KINDS)
        for name in ("hnsw_m", "ef_construction", "ef_search"):
            check_int(name, getattr(self, name), minimum=1)
        if self.precision not in (None, "float32") and self.index != "flat":
            raise ConfigurationError(
                f"FaissStore: precision={self.precision!r} searches a flat compact index (IndexScalarQuantizer / "
                f"IndexBinaryFlat) and rescores it; it is not combined with index={self.index!r}"
            )

    def missing_location(self) -> str | None:
        return None if self.path else "needs 'path' (a folder; an in-memory FAISS store has no config)"


class FaissStore(VectorStore):
    """A FAISS index plus the texts and metadata of its vectors.

    Args:
        embedder: the Embedder that turns texts into vectors (its model and dimension are recorded).
        path: a folder to ``save()`` to. If it already holds a saved store, that store is opened
            (as ``FaissStore.load`` would) and its settings win over ``metric``/``index``.
        metric: ``"cosine"`` (inner product of unit vectors; default), ``"ip"`` (raw inner product)
            or ``"l2"`` (score = minus the squared L2 distance, so higher is always better).
        index: ``"flat"`` (exact, default) or ``"hnsw"`` (approximate, for large corpora).
        hnsw_m, ef_construction, ef_search: HNSW graph degree and beam widths.
        precision: ``"float32"`` (exact), ``"int8"`` (``IndexScalarQuantizer`` QT_8bit) or ``"binary"``
            (``IndexBinaryFlat`` over sign bits); a compact search fetches ``rescore`` x top_k candidates and
            re-scores them with the float vectors, which the store keeps on disk, not in RAM
            (``vectors-<gen>.f32`` once saved, a temporary file before; ``get_vectors`` returns them bit for
            bit). Recorded in ``store.json``; None (default) opens a saved folder at its own precision.
        rescore: the oversampling factor of a compact search (default 4).

    Scores are similarities, best first: for ``cosine`` the cosine similarity in [-1, 1].
    """

    settings_class: ClassVar[type[FaissSettings]] = FaissSettings
    kind: ClassVar[str] = "faiss"
    settings: FaissSettings
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    keyword_support: ClassVar[str] = "client"
    keyword_note: ClassVar[str] = (
        "FAISS stores vectors only: BM25 (bm25s) over retrieval.tokenize terms, saved beside the index"
    )

    def __init__(
        self,
        embedder: Embedder,
        *,
        path: str | os.PathLike[str] | None = None,
        metric: str = "cosine",
        index: str = "flat",
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        precision: str | None = None,
        rescore: int = 4,
    ) -> None:
        super().__init__(embedder)
        folder = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
        self.settings = s = FaissSettings(path=folder, metric=metric, index=index, hnsw_m=hnsw_m,
                                          ef_construction=ef_construction, ef_search=ef_search,
                                          precision=precision, rescore=rescore)
        self._faiss = _faiss()
        self.path: Path | None = Path(s.path) if s.path is not None else None
        self.metric = s.metric
        self.index_kind = s.index
        self.hnsw_m = s.hnsw_m
        self.ef_construction = s.ef_construction
        self.ef_search = s.ef_search
        self._lock = threading.RLock()
        self._index: Any = None  # faiss.IndexIDMap2 over a flat or HNSW index, created on first write
        self._dim: int | None = None
        self._model: str | None = None
        self._slot_of: dict[str, int] = {}  # record id -> faiss id ("slot")
        self._records: dict[int, tuple[str, str, dict[str, Any]]] = {}  # slot -> (id, text, metadata)
        self._dead: set[int] = set()  # HNSW slots deleted but still in the graph (HNSW cannot remove)
        self._next_slot = 0
        self._generation = 0
        self._compact: Any = None  # the int8/binary search index beside the float one (precision != float32)
        self._compact_trained_on = 0
        self._keywords: KeywordIndex | None = None  # built on first keyword search, then kept up to date
        self._keywords_file: Path | None = None  # the saved one, read when first needed
        if self.path is not None and (self.path / "store.json").exists():
            self._read(self.path)
            self._sync_settings()

    @classmethod
    def from_settings(cls, settings: FaissSettings, embedder: Embedder) -> FaissStore:
        """Open (or start) the store ``settings`` describe."""
        fields = settings.store_fields()  # the space card settings: VectorStore.from_config
        return cls(embedder, **fields)

    def _sync_settings(self) -> None:
        """The settings as the store now stands (a saved folder's metric and index win; save() gives a path)."""
        self.settings = self.settings.replace(
            path=None if self.path is None else str(self.path), metric=self.metric, index=self.index_kind,
            hnsw_m=self.hnsw_m, ef_construction=self.ef_construction, ef_search=self.ef_search,
        )

    # ---------------------------------------------------------------- persistence
    @classmethod
    def load(cls, path: str | os.PathLike[str], embedder: Embedder, *, ef_search: int | None = None) -> FaissStore:
        """Open a store written by ``save()``.

        Raises DimensionMismatchError if ``embedder`` produces another dimension than the store holds,
        ConfigurationError if it is another known model, FileNotFoundError if nothing was saved there.
        """
        folder = Path(path)
        if not (folder / "store.json").exists():
            raise FileNotFoundError(f"no FAISS store saved at {str(folder)!r} (store.json missing)")
        store = cls(embedder, path=folder)
        if ef_search is not None:
            check_int("ef_search", ef_search, minimum=1)
            store.ef_search = ef_search
            store._sync_settings()
        return store

    _unsaved = False

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its folder (config) and embedder; refused while writes are not saved, since the other
        process opens the saved folder and would silently miss them."""
        if self._unsaved:
            raise ConfigurationError(
                f"FAISS store {self.name!r} has writes that are not saved: call save() before pickling it"
            )
        return super().__reduce__()

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the index, texts, metadata, model and dimension to a folder; returns the folder.

        ``path`` defaults to the one given at construction. Earlier generations are removed after the
        new ``store.json`` is in place.
        """
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ConfigurationError("save() needs a folder: pass path= here or to FaissStore(...)")
        self._unsaved = False
        target.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._generation += 1
            gen = self._generation
            index_name, records_name = f"index-{gen}.faiss", f"records-{gen}.jsonl"
            keywords_name = f"keywords-{gen}.jsonl" if self._keywords is not None else None
            if self._keywords is not None:
                self._keywords.save(target / f"keywords-{gen}.jsonl")
            if self._index is not None and not isinstance(self._index, _FloatFile):
                self._faiss.write_index(self._index, str(target / index_name))
            with open(target / records_name, "w", encoding="utf-8") as fh:
                for slot, (rid, text, meta) in self._records.items():
                    fh.write(json.dumps({"slot": slot, "id": rid, "text": text, "metadata": meta},
                                        ensure_ascii=False) + "\n")
            # compact precisions: the float vectors go to vectors-<gen>.f32 (under a temporary name until just
            # before store.json names it), not into an index file
            floats = self._write_float_file(target)
            vectors_name = None if floats is None else f"vectors-{gen}.f32"
            manifest = {
                "format": FORMAT,
                "version": 1 if floats is None else FORMAT_VERSION,  # float32 folders stay readable by 1's readers
                "model": self._model or self.embedder.model,
                "dimension": self._dim,
                "metric": self.metric,
                "index": self.index_kind,
                "precision": self.precision,
                "hnsw": {"m": self.hnsw_m, "ef_construction": self.ef_construction, "ef_search": self.ef_search},
                "count": len(self._records),
                "next_slot": self._next_slot,
                "dead": sorted(self._dead),
                "generation": gen,
                "files": {"index": index_name if self._index is not None and floats is None else None,
                          "records": records_name, "keywords": keywords_name, "vectors": vectors_name},
                "embedder": self.embedder.to_config(),
                "space_card": json.loads(self._memory_card) if getattr(self, "_memory_card", None) else None,
            }
            fd, tmp = tempfile.mkstemp(prefix=".store-", suffix=".json", dir=target)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=2, ensure_ascii=False)
            if floats is not None:
                os.replace(floats[1], target / f"vectors-{gen}.f32")
            os.replace(tmp, target / "store.json")
            if floats is not None:
                self._adopt_float_file(target, floats[0], floats[2])
            keep = {index_name, records_name, "store.json", keywords_name, vectors_name}
            self._keywords_file = target / keywords_name if keywords_name else None
            olds = [*target.glob("index-*.faiss"), *target.glob("records-*.jsonl"), *target.glob("keywords-*.jsonl"),
                    *target.glob("vectors-*.f32")]
            for old in olds:
                if old.name not in keep:
                    old.unlink(missing_ok=True)
        if self.path is None:
            self.path = target
            self._sync_settings()
        logger.info("saved %d records to %s", len(self._records), target)
        return target

    def _read(self, folder: Path) -> None:
        try:
            manifest = json.loads((folder / "store.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{str(folder)!r}: unreadable store.json ({exc})") from None
        if manifest.get("format") != FORMAT:
            raise ConfigurationError(f"{str(folder)!r} is not a FaissStore folder (format={manifest.get('format')!r})")
        if manifest.get("version", 0) > FORMAT_VERSION:
            raise ConfigurationError(
                f"{str(folder)!r} was written by a newer qwen-embed-adapters (format version {manifest['version']})"
            )
        dim = manifest.get("dimension")
        model = manifest.get("model")
        where = str(folder)
        card = manifest.get("space_card")
        if card:
            self._memory_card = json.dumps(card, ensure_ascii=False)
        self._check_model(model, where)
        actual = self.embedder.dimension_if_known
        if dim is not None and actual is not None and actual != dim:
            raise DimensionMismatchError(dim, actual, where, f"saved with {model!r}, embedder is {self.embedder.model!r}")
        self.metric = manifest["metric"]
        self.index_kind = manifest["index"]
        # A folder saved before precisions existed holds float32 vectors only.
        self._settle_precision(manifest.get("precision") or "float32")
        hnsw = manifest.get("hnsw") or {}
        self.hnsw_m = int(hnsw.get("m", self.hnsw_m))
        self.ef_construction = int(hnsw.get("ef_construction", self.ef_construction))
        self.ef_search = int(hnsw.get("ef_search", self.ef_search))
        self._dim = dim
        self._model = model
        self._next_slot = int(manifest.get("next_slot", 0))
        self._dead = {int(s) for s in manifest.get("dead", [])}
        self._generation = int(manifest.get("generation", 0))
        files = manifest.get("files") or {}
        if files.get("keywords"):
            self._keywords_file = folder / files["keywords"]
        if files.get("index"):
            self._index = self._faiss.read_index(str(folder / files["index"]))
            if self._index.d != dim:
                raise ConfigurationError(f"{where!r}: index file holds {self._index.d}-d vectors, store.json says {dim}")
        with open(folder / files["records"], encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                slot = int(row["slot"])
                self._records[slot] = (row["id"], row["text"], row.get("metadata") or {})
                self._slot_of[row["id"]] = slot
        if self.precision != "float32":
            self._open_float_file(folder, files.get("vectors"), dim, where)
        ntotal = self._index.ntotal if self._index is not None else 0
        if ntotal != len(self._records) + len(self._dead):
            raise ConfigurationError(
                f"{where!r}: the index holds {ntotal} vectors but the records file {len(self._records)} "
                f"(+{len(self._dead)} deleted); the folder is inconsistent"
            )
        if self.precision != "float32" and self._index is not None:
            self._rebuild_compact()  # not saved: rebuilt from the float vectors (int8 trained on all of them)

    def _check_model(self, saved: str | None, where: str) -> None:
        if not saved or saved == self.embedder.model:
            return
        a, b = models.lookup(saved), models.lookup(self.embedder.model)
        if a is not None and b is not None and a.name != b.name:
            raise ConfigurationError(
                f"{where!r} was built with {saved!r}; its vectors cannot be searched with {self.embedder.model!r}"
            )
        if a is None or b is None or a.name != b.name:
            logger.warning("%s was built with model %r, the embedder is %r", where, saved, self.embedder.model)

    # ---------------------------------------------------------------- VectorStore hooks
    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "faiss-index"

    @property
    def dimension(self) -> int | None:
        """The recorded dimension, None before the first write."""
        return self._dim

    def ensure_dimension(self) -> int:
        with self._lock:
            actual = self.embedder.dimension
            if self._dim is None:
                self._dim = actual
                self._model = self.embedder.model
            elif actual != self._dim:
                raise DimensionMismatchError(
                    self._dim, actual, self.name,
                    f"built with {self._model!r}, embedder {self.embedder.model!r} gives {actual}-d",
                )
            if self._index is None:
                self._index = self._new_index(self._dim)
            if self.precision == "binary" and self._dim % 8:
                raise ConfigurationError(
                    f"FAISS store {self.name!r}: precision='binary' packs 8 dimensions per byte; "
                    f"{self._dim} is not a multiple of 8"
                )
            return self._dim

    def _new_index(self, dim: int) -> Any:
        if self.precision != "float32":
            return _FloatFile(dim, self.path)  # compact: the float vectors stay on disk (see _FloatFile)
        faiss = self._faiss
        ftype = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        if self.index_kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, self.hnsw_m, ftype)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        else:
            inner = faiss.IndexFlatL2(dim) if self.metric == "l2" else faiss.IndexFlatIP(dim)
        return faiss.IndexIDMap2(inner)

    def _write(
        self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        self._unsaved = True
        with self._lock:
            keywords = self._keywords_if_kept()
            assert self._dim is not None and self._index is not None
            # Embedder output is already unit-norm; stored as is, so get_vectors() returns it bit for bit.
            vecs = as_float32_matrix(vectors, dim=self._dim, where=self.name)
            new_rows: list[int] = []
            new_slots: list[int] = []
            stale: list[int] = []
            for row, (rid, text, meta) in enumerate(zip(ids, texts, metadatas, strict=True)):
                old = self._slot_of.get(rid)
                if old is not None:
                    _, old_text, _ = self._records[old]
                    if old_text == text and np.array_equal(self._index.reconstruct(old), vecs[row]):
                        # Same content again: a metadata update at most, the index is untouched.
                        self._records[old] = (rid, text, dict(meta))
                        continue
                    stale.append(old)
                slot = self._next_slot
                self._next_slot += 1
                new_rows.append(row)
                new_slots.append(slot)
                self._records[slot] = (rid, text, dict(meta))
                self._slot_of[rid] = slot
            if new_rows:
                self._index.add_with_ids(
                    np.ascontiguousarray(vecs[new_rows]), np.asarray(new_slots, dtype=np.int64)
                )
                if self.precision != "float32":
                    self._add_compact(np.ascontiguousarray(vecs[new_rows]), np.asarray(new_slots, dtype=np.int64))
            self._drop_slots(stale)
            if keywords is not None and new_rows:
                keywords.add([ids[r] for r in new_rows], [texts[r] for r in new_rows])

    def _drop_slots(self, slots: list[int]) -> None:
        if not slots:
            return
        for s in slots:
            self._records.pop(s, None)
        if self._compact is not None:
            self._compact.remove_ids(np.asarray(slots, dtype=np.int64))
        if self.index_kind == "hnsw":
            self._dead.update(slots)
            if len(self._dead) > max(1000, len(self._records)):
                self.compact()
        else:
            self._index.remove_ids(np.asarray(slots, dtype=np.int64))

    def compact(self) -> None:
        """Rebuild an HNSW graph without its deleted vectors (done by itself when they outnumber live ones)."""
        with self._lock:
            if self._index is None or not self._dead:
                return
            slots = np.fromiter(self._records, dtype=np.int64, count=len(self._records))
            fresh = self._new_index(self._index.d)
            if len(slots):
                vecs = np.stack([self._index.reconstruct(int(s)) for s in slots])
                fresh.add_with_ids(vecs, slots)
            logger.info("%s: rebuilt the HNSW graph without %d deleted vectors", self.name, len(self._dead))
            self._index = fresh
            self._dead.clear()

    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        with self._lock:
            if self._index is None or not self._records:
                return []
            q = as_float32_matrix(vector, dim=self._dim, where=self.name)
            allowed = self._allowed(filter)
            if allowed is not None:
                if not allowed:
                    return []
                if self.index_kind == "flat" or len(allowed) <= _EXACT_FILTER_LIMIT:
                    return self._exact(q[0], allowed, top_k)
            if self._compact is not None and allowed is None:
                scores, labels = self._compact_search(q, top_k)
            else:
                scores, labels = self._faiss_search(q, top_k, allowed)
            hits: list[Hit] = []
            for score, slot in zip(scores.tolist(), labels.tolist(), strict=True):
                rec = self._records.get(slot) if slot >= 0 else None
                if rec is not None:
                    hits.append(self._hit(rec, score))
            return hits[:top_k]

    def _faiss_search(self, q: np.ndarray, k: int, allowed: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        k_eff = min(k, len(self._records))
        sel: Any = None
        if allowed is not None:
            sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        elif self._dead:
            # Keep the inner selector referenced until the search returns (faiss holds raw pointers).
            inner_sel = faiss.IDSelectorBatch(np.fromiter(self._dead, dtype=np.int64, count=len(self._dead)))
            sel = faiss.IDSelectorNot(inner_sel)
        if self.index_kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(self.ef_search, k_eff))
        elif sel is not None:
            params = faiss.SearchParameters(sel=sel)
        else:
            params = None
        distances, labels = self._index.search(q, k_eff, params=params)
        scores = -distances[0] if self.metric == "l2" else distances[0]
        return scores, labels[0]

    # ---------------------------------------------------------------- compact vectors (precision int8 / binary)
    def _new_compact(self, dim: int) -> Any:
        faiss = self._faiss
        if self.precision == "binary":
            return faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(dim))
        ftype = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        sq = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, ftype)
        # Per-dimension min/max of the training vectors, widened by 20% each side: later vectors beyond
        # it are clipped, which the float rescoring absorbs (and the index is retrained as the store grows).
        sq.sq.rangestat = faiss.ScalarQuantizer.RS_minmax
        sq.sq.rangestat_arg = 0.2
        return faiss.IndexIDMap2(sq)

    def _add_compact(self, vecs: np.ndarray, slots: np.ndarray) -> None:
        if self._compact is None:
            self._compact = self._new_compact(vecs.shape[1])
            if self.precision == "int8":
                self._compact.train(vecs)
                self._compact_trained_on = len(vecs)
        if self.precision == "binary":
            self._compact.add_with_ids(np.packbits(vecs > 0, axis=1), slots)
            return
        self._compact.add_with_ids(vecs, slots)
        # Trained on the first batch; retrained on everything each time the store outgrows it 4x (up to
        # 65,536 training vectors), so ingestion in small batches ends with ranges fit to the data.
        if self._compact_trained_on < 65536 and self._compact.ntotal >= 4 * self._compact_trained_on:
            self._rebuild_compact()

    def _rebuild_compact(self) -> None:
        """The compact index built afresh from the float vectors, read from disk in chunks. int8 is trained on
        the per-dimension minimum and maximum of all of them: all that RS_minmax training keeps (FAISS
        ``ScalarQuantizer::train``), so it equals training on every vector without holding them in RAM."""
        floats = self._index
        assert isinstance(floats, _FloatFile)
        self._compact = None
        self._compact_trained_on = 0
        if not floats.ntotal:
            return
        compact = self._new_compact(floats.d)
        if self.precision == "int8":
            lo = np.full(floats.d, np.inf, dtype=np.float32)
            hi = np.full(floats.d, -np.inf, dtype=np.float32)
            for _, vecs in floats.live():
                np.minimum(lo, vecs.min(axis=0), out=lo)
                np.maximum(hi, vecs.max(axis=0), out=hi)
            compact.train(np.stack([lo, hi]))
            self._compact_trained_on = floats.ntotal
        for slots, vecs in floats.live():
            compact.add_with_ids(np.packbits(vecs > 0, axis=1) if self.precision == "binary" else vecs, slots)
        self._compact = compact

    def _compact_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``rescore`` x k candidates from the compact index, re-scored with the float vectors."""
        k_eff = min(k, len(self._records))
        fetch = min(max(k_eff * self.rescore, k_eff), self._compact.ntotal)
        code = np.packbits(q > 0, axis=1) if self.precision == "binary" else q
        _, labels = self._compact.search(code, fetch)
        slots = [int(s) for s in labels[0] if s >= 0 and int(s) in self._records]
        if not slots:
            return np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)
        vecs = self._float_vectors(slots)  # only these rows are read from disk
        if self.metric == "l2":
            diff = vecs - q[0]
            scores = -np.einsum("ij,ij->i", diff, diff)
        else:
            scores = vecs @ q[0]
        order = np.argsort(-scores, kind="stable")[:k_eff]
        return scores[order], np.asarray(slots, dtype=np.int64)[order]

    def _float_vectors(self, slots: Sequence[int]) -> np.ndarray:
        """The float vectors of ``slots`` (a compact store reads them from disk in one call)."""
        if isinstance(self._index, _FloatFile):
            return self._index.rows(slots)
        return np.stack([self._index.reconstruct(int(s)) for s in slots])

    def _write_float_file(self, folder: Path) -> tuple[IO[bytes], Path, np.ndarray] | None:
        """A compact store's live float vectors written to a new temporary file in ``folder`` (None at float32,
        whose vectors are in the index file): the open file, its path and the slots of its rows."""
        if not isinstance(self._index, _FloatFile):
            return None
        fh, tmp, slots = self._index.write(folder)
        # A reopen takes row i for the i-th smallest record slot: refuse to save anything else.
        if not np.array_equal(slots, np.fromiter(sorted(self._records), dtype=np.int64, count=len(self._records))):
            fh.close()
            tmp.unlink(missing_ok=True)
            raise RuntimeError(f"{self.name}: the float vectors do not match the records ({len(slots)} rows, "
                               f"{len(self._records)} records); store.json was not replaced")
        return fh, tmp, slots

    def _adopt_float_file(self, folder: Path, fh: IO[bytes], slots: np.ndarray) -> None:
        """After a save to the store's own folder, read the float vectors from the file just saved (the rows
        written since the previous save leave their temporary file); a copy saved elsewhere is only closed."""
        assert isinstance(self._index, _FloatFile)
        if self.path is None or folder.resolve() == self.path.resolve():
            self._index.spill_dir = folder
            self._index.adopt(fh, slots)
        else:
            fh.close()

    def _open_float_file(self, folder: Path, name: str | None, dim: int | None, where: str) -> None:
        """A saved compact store's float vectors: ``vectors-<gen>.f32`` read in place, or, in a folder written
        before compact stores kept them there, the float index file's vectors moved to a temporary file."""
        if dim is None:
            return
        slots = np.fromiter(sorted(self._records), dtype=np.int64, count=len(self._records))
        floats = _FloatFile(dim, folder)
        if name is not None:
            try:
                fh = open(folder / name, "rb")  # held open by the _FloatFile
            except OSError as exc:
                raise ConfigurationError(f"{where!r}: cannot read {name} ({exc}); the folder is inconsistent") from None
            size, want = os.fstat(fh.fileno()).st_size, len(slots) * dim * 4
            if size != want:
                fh.close()
                raise ConfigurationError(
                    f"{where!r}: {name} holds {size} bytes, {len(slots)} records of {dim}-d float32 need {want}; "
                    "the folder is inconsistent"
                )
            floats.adopt(fh, slots)
        elif self._index is not None:
            index = self._index
            for start in range(0, len(slots), 4096):
                part = slots[start:start + 4096]
                floats.add_with_ids(np.stack([index.reconstruct(int(s)) for s in part]), part)
        else:
            return
        self._index = floats

    def compact_bytes(self) -> int:
        """Bytes the compact (int8/binary) search index holds for its vectors (0 at float32)."""
        if self._compact is None:
            return 0
        inner = self._faiss.downcast_index(self._compact.index) if self.precision == "int8" else self._compact.index
        return int(inner.ntotal * inner.code_size)

    def _exact(self, q: np.ndarray, slots: list[int], top_k: int) -> list[Hit]:
        vecs = self._float_vectors(slots)
        if self.metric == "l2":
            diff = vecs - q
            scores = -np.einsum("ij,ij->i", diff, diff)
        else:
            scores = vecs @ q
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [self._hit(self._records[slots[i]], float(scores[i])) for i in order]

    def _hit(self, rec: tuple[str, str, dict[str, Any]], score: float) -> Hit:
        rid, text, meta = rec
        return Hit(id=rid, score=score, text=text, metadata=dict(meta))

    def _allowed(self, filter: Any) -> list[int] | None:
        if filter is None:
            return None
        if isinstance(filter, Mapping):
            conds = dict(filter)

            def match(meta: dict[str, Any]) -> bool:
                for key, want in conds.items():
                    if key not in meta:
                        return False
                    if isinstance(want, (list, tuple, set, frozenset)):
                        if meta[key] not in want:
                            return False
                    elif meta[key] != want:
                        return False
                return True

            pred: Callable[[dict[str, Any]], bool] = match
        elif callable(filter):
            pred = filter
        else:
            raise InvalidInputError(
                f"filter must be a dict of metadata values or a callable(metadata) -> bool, got {type(filter).__name__}"
            )
        return [slot for slot, (_, _, meta) in self._records.items() if pred(meta)]

    def count(self) -> int:
        with self._lock:
            return len(self._records)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the store holds (bulk ingestion skips them on a re-run)."""
        id_list = check_ids(ids)
        with self._lock:
            return {i for i in id_list if i in self._slot_of}

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id (missing ids are ignored)."""
        ids = check_ids(ids)
        with self._lock:
            keywords = self._keywords_if_kept()
            slots = [self._slot_of.pop(i) for i in ids if i in self._slot_of]
            self._unsaved = self._unsaved or bool(slots)
            self._drop_slots(slots)
            if keywords is not None:
                keywords.delete(ids)

    # ---------------------------------------------------------------- keyword side
    def _keywords_if_kept(self) -> KeywordIndex | None:
        """The keyword index when this store keeps one (built here, or saved in its folder)."""
        if self._keywords is None and self._keywords_file is not None:
            return self.build_keyword_index()
        return self._keywords

    def build_keyword_index(self) -> KeywordIndex:
        """The BM25 index of the stored texts: read from the folder when it was saved with one (and still
        holds the same ids), else built from the stored texts, once per process; every later write and
        delete updates it, and ``save()`` writes it."""
        with self._lock:
            if self._keywords is not None:
                return self._keywords
            index = None
            if self._keywords_file is not None and self._keywords_file.exists():
                index = KeywordIndex.load(self._keywords_file)
                if set(index.ids()) != set(self._slot_of):
                    logger.warning("%s: the saved keyword index does not match the records; rebuilding it", self.name)
                    index = None
            if index is None:
                index = KeywordIndex()
                records = list(self._records.values())
                index.add([r[0] for r in records], [r[1] for r in records])
            self._keywords = index
            return index

    def _search_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        index = self.build_keyword_index()
        with self._lock:
            allowed = self._allowed(filter)
            keep = None if allowed is None else {self._records[s][0] for s in allowed}
            found = index.search(query, top_k, None if keep is None else keep.__contains__)
            hits = []
            for rid, score in found:
                hit = self._hit(self._records[self._slot_of[rid]], score)
                hit.keyword_score = score
                hits.append(hit)
            return hits

    # ---------------------------------------------------------------- extras
    def add_embeddings(
        self,
        texts: Iterable[str],
        vectors: Any,
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Store texts with vectors computed elsewhere (same model and dimension); returns the ids.

        The vectors must be aligned with ``texts``; with the ``cosine`` metric they are normalised.
        A NaN/inf row or a wrong width raises before anything is stored.
        """
        items = list(texts) if not isinstance(texts, (str, bytes)) else texts
        matrix = as_float32_matrix(vectors, where=f"{self.name} vectors")
        if matrix.shape[0] != len(items):
            raise InvalidInputError(f"got {len(items)} texts but {matrix.shape[0]} vectors")
        if ids is None:
            # prepare_records drops repeated texts under content ids; keep the matching vector rows.
            kept, id_list, metas = prepare_records(items, None, metadatas)
            first: dict[str, int] = {}
            for i, t in enumerate(items):
                first.setdefault(t, i)
            matrix = matrix[[first[t] for t in kept]]
        else:
            kept, id_list, metas = prepare_records(items, ids, metadatas)
        self.check_batch(id_list, kept, metas)
        dim = self.ensure_dimension()
        if matrix.shape[1] != dim:
            raise DimensionMismatchError(dim, matrix.shape[1], self.name)
        if self.metric == "cosine":
            matrix = l2_normalize(matrix, where=f"{self.name} vectors")
        for start in range(0, len(kept), 4096):
            end = start + 4096
            self.write_batch(id_list[start:end], matrix[start:end], kept[start:end], metas[start:end])
        return id_list if ids is None else list(ids)

    def search_by_vector(self, vector: Any, top_k: int = 5, filter: Filter = None) -> list[Hit]:
        """Nearest records to a query vector you embedded yourself, best first."""
        top_k = check_top_k(top_k)
        q = as_float32_matrix(vector, where="query vector")
        if self._dim is not None and q.shape[1] != self._dim:
            raise DimensionMismatchError(self._dim, q.shape[1], self.name)
        if self.metric == "cosine":
            q = l2_normalize(q, where="query vector")
        return self._search_vector(q[0], top_k, filter)

    def get(self, ids: Sequence[str]) -> list[Hit | None]:
        """The stored text and metadata of each id (None where missing), in the order asked."""
        with self._lock:
            out: list[Hit | None] = []
            for i in ids:
                slot = self._slot_of.get(i)
                out.append(None if slot is None else self._hit(self._records[slot], float("nan")))
            return out

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored float32 vectors of ``ids`` (KeyError naming the first missing id)."""
        with self._lock:
            rows = []
            for i in ids:
                if i not in self._slot_of:
                    raise KeyError(f"no record with id {i!r} in {self.name!r}")
                rows.append(self._index.reconstruct(self._slot_of[i]))
            dim = self._dim or 0
            return np.stack(rows) if rows else np.empty((0, dim), dtype=np.float32)

    def __len__(self) -> int:
        return self.count()

    def _repr_state(self) -> dict[str, Any]:
        return {"dimension": self._dim, "count": len(self._records)}


# ---------------------------------------------------------------- the float vectors of a compact store, on disk
class _FloatFile:
    """The float32 vectors of a compact (int8/binary) ``FaissStore``, kept out of RAM.

    Rows ``[0, base_rows)`` are a saved generation's ``vectors-<gen>.f32`` (row i is the vector of the i-th
    smallest live slot), opened read-only; rows written since are appended to an unnamed temporary file
    (``tempfile.TemporaryFile`` in the store's folder, else in the system temp directory), which the operating
    system removes when the process ends, even when it is killed. A search reads only its rescored candidates'
    rows; a full pass (saving, rebuilding the compact index) reads the files in chunks.

    Rows are read with ``os.preadv`` (positioned reads into the result array), not through ``np.memmap``: a
    map's page faults also map up to 64 KB of cached neighbours each (the kernel's fault-around): 800 rows read
    from a 20 MB file left all of it in the process's resident set (measured with ``np.memmap``, Linux 6.18),
    and a map of a file that something truncates kills the process with SIGBUS where a read only comes back
    short. The operating system's page cache still keeps hot rows in memory, as it does for any file.

    It answers what ``FaissStore`` asks of its float index (``reconstruct``, ``add_with_ids``, ``remove_ids``,
    ``ntotal``, ``d``), plus ``rows`` (many at once) and ``live`` (every row, in chunks). A file it reads is
    never written again: ``write`` makes a new one, which another process cannot truncate under this one's map
    (``save`` moves it into place with ``os.replace``).
    """

    def __init__(self, dim: int, spill_dir: Path | None) -> None:
        self.d = dim
        self.spill_dir = spill_dir
        self._row_of = np.full(0, -1, dtype=np.int64)  # slot -> row (-1: no live vector for that slot)
        self._slot_at = np.empty(0, dtype=np.int64)  # row -> the slot it was written for
        self._live = 0
        self._base_rows = 0
        self._base_file: IO[bytes] | None = None
        self._spill: IO[bytes] | None = None
        self._spill_rows = 0
        self._open: list[IO[bytes]] = []  # closed by the finalizer when the store is dropped
        weakref.finalize(self, _close_files, self._open)

    @property
    def ntotal(self) -> int:
        return self._live

    # ------------------------------------------------------------ reads
    def _rows_of(self, slots: np.ndarray) -> np.ndarray:
        rows = np.full(len(slots), -1, dtype=np.int64)
        known = (slots >= 0) & (slots < len(self._row_of))
        rows[known] = self._row_of[slots[known]]
        if len(rows) and rows.min() < 0:
            raise KeyError(f"no float vector for slot {int(slots[np.argmax(rows < 0)])}")
        return rows

    def rows(self, slots: Sequence[int] | np.ndarray) -> np.ndarray:
        """The float vectors of ``slots``, in that order: copies, bit for bit what was written."""
        rows = self._rows_of(np.asarray(slots, dtype=np.int64).reshape(-1))
        order = np.argsort(rows, kind="stable")
        ranked = rows[order]
        # one read per run of consecutive rows (a candidate list: one per row; a wide filter: long runs)
        cuts = np.flatnonzero(np.diff(ranked) != 1) + 1
        out = np.empty((len(rows), self.d), dtype=np.float32)
        for lo, hi in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(ranked)].tolist(), strict=True):
            out[lo:hi] = self._read(int(ranked[lo]), int(ranked[hi - 1]) + 1)
        result = np.empty_like(out)
        result[order] = out
        return result

    def reconstruct(self, slot: int) -> np.ndarray:
        return self.rows([slot])[0]

    def live(self, chunk: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every live (slots, vectors), in ascending slot order, read ``chunk`` file rows at a time."""
        total = self._base_rows + self._spill_rows
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            slots = self._slot_at[start:stop]
            keep = self._row_of[slots] == np.arange(start, stop)
            if keep.any():
                yield slots[keep], self._read(start, stop)[keep]

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.d), dtype=np.float32)
        view = out.reshape(-1).view(np.uint8).data
        row = self.d * 4
        if start < self._base_rows:
            assert self._base_file is not None
            n = min(stop, self._base_rows) - start
            _read_exactly(self._base_file, start * row, view[: n * row])
        if stop > self._base_rows:
            assert self._spill is not None
            first = max(start, self._base_rows)
            _read_exactly(self._spill, (first - self._base_rows) * row, view[(first - start) * row:])
        return out

    # ------------------------------------------------------------ writes
    def add_with_ids(self, vecs: np.ndarray, slots: np.ndarray) -> None:
        """Append ``vecs`` for the new ``slots`` (ascending, above every slot written before)."""
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        slots = np.asarray(slots, dtype=np.int64).reshape(-1)
        if not len(slots):
            return
        if self._spill is None:
            where = self.spill_dir if self.spill_dir is not None and self.spill_dir.is_dir() else None
            self._spill = tempfile.TemporaryFile(prefix=".vectors-", suffix=".tmp", dir=where)
            self._open.append(self._spill)
        # At the offset these rows own: a write that failed half-way (disk full) is overwritten by the next.
        self._spill.seek(self._spill_rows * self.d * 4)
        self._spill.write(vecs.reshape(-1).view(np.uint8).data)
        self._spill.flush()
        first = self._base_rows + self._spill_rows
        self._row_of = _grown(self._row_of, int(slots.max()) + 1, -1)
        self._slot_at = _grown(self._slot_at, first + len(slots), 0)
        self._row_of[slots] = np.arange(first, first + len(slots))
        self._slot_at[first:first + len(slots)] = slots
        self._spill_rows += len(slots)
        self._live += len(slots)

    def remove_ids(self, slots: np.ndarray) -> int:
        slots = np.unique(np.asarray(slots, dtype=np.int64).reshape(-1))
        slots = slots[(slots >= 0) & (slots < len(self._row_of))]
        gone = slots[self._row_of[slots] >= 0]
        self._row_of[gone] = -1
        self._live -= len(gone)
        return len(gone)

    def write(self, folder: Path) -> tuple[IO[bytes], Path, np.ndarray]:
        """Every live row, in ascending slot order, into a new temporary file in ``folder``: its open handle,
        its path (for ``os.replace`` into place) and the slots written."""
        fd, tmp = tempfile.mkstemp(prefix=".vectors-", suffix=".tmp", dir=folder)
        fh = os.fdopen(fd, "w+b")
        written: list[np.ndarray] = []
        try:
            for slots, vecs in self.live():
                fh.write(vecs.reshape(-1).view(np.uint8).data)
                written.append(slots)
            fh.flush()
        except BaseException:
            fh.close()
            Path(tmp).unlink(missing_ok=True)
            raise
        return fh, Path(tmp), np.concatenate(written) if written else np.empty(0, dtype=np.int64)

    def adopt(self, fh: IO[bytes], slots: np.ndarray) -> None:
        """Read from the open file ``fh`` from now on: row i holds the vector of ``slots[i]`` (ascending).
        Rows written since the last save are dropped with their temporary file. The caller checked its size."""
        n = len(slots)
        for old in (self._base_file, self._spill):
            if old is not None:
                old.close()
                self._open.remove(old)
        self._base_file, self._spill = fh, None
        self._open.append(fh)
        self._row_of = np.full(max(len(self._row_of), int(slots.max()) + 1 if n else 0), -1, dtype=np.int64)
        self._row_of[slots] = np.arange(n)
        self._slot_at = np.array(slots, dtype=np.int64)
        self._base_rows, self._spill_rows, self._live = n, 0, n


def _grown(array: np.ndarray, size: int, fill: int) -> np.ndarray:
    """``array`` with room for ``size`` entries (doubling, new entries ``fill``)."""
    if size <= len(array):
        return array
    grown = np.full(max(size, 2 * len(array), 1024), fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown


def _read_exactly(fh: IO[bytes], offset: int, view: memoryview) -> None:
    """``len(view)`` bytes of ``fh`` from ``offset`` into ``view`` (a positioned read where the platform has one:
    it leaves the file's position and buffer alone)."""
    got = 0
    while got < len(view):
        if hasattr(os, "preadv"):
            n = os.preadv(fh.fileno(), [view[got:]], offset + got)
        else:
            fh.seek(offset + got)
            n = fh.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            raise OSError(f"{getattr(fh, 'name', 'vectors file')}: ended {len(view) - got} bytes early")
        got += n


def _close_files(files: list[IO[bytes]]) -> None:
    for fh in files:
        fh.close()
    files.clear()


__all__ = ["FORMAT", "FORMAT_VERSION", "INDEX_KINDS", "METRICS", "FaissSettings", "FaissStore", "Filter"]
