"""What the stores share: ``Hit``, content-hash ids, input checks and the ``VectorStore`` base.

A store implements the database calls (``ensure_dimension``, ``_write``, ``_search_vector``,
``count``, ``delete``, and optionally ``_validate_batch`` for its own limits); the base class owns
validation (texts, ids, metadata), ids, embedding, batching of writes, the public batch hooks
``check_batch`` / ``write_batch`` that bulk ingestion uses, async twins, one async client per event
loop, ``close()`` and context-manager use, and the optional reranking stage, so every store behaves
the same.

A store's settings are one frozen dataclass (a ``StoreSettings`` subclass beside the store): the
constructor validates by building it, and ``to_config()`` (the same plain dict ``parse_store_spec``
gives), ``from_config(config, embedder)`` and ``repr`` derive from it. The embedder is not a setting (it
has its own ``to_config``); secrets are not settings either, only the names of the variables holding them.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import os
import re
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

import numpy as np

from ..embedder import Embedder
from ..errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    QwenEmbedError,
    VectorSpaceMismatchError,
    WriteError,
)
from ..http.session import LoopClients  # the one per-event-loop cache (stores' grpc/httpx clients too)
from ..retrieval import DEFAULT_FUSION, Fusion, KeywordIndex, check_mode
from ..settings import Settings, check_choice, check_int, check_number
from ..space import (
    DEFAULT_TOLERANCE,
    SpaceCard,
    aembed_probes,
    card_from_vectors,
    compare_cards,
    embed_probes,
    mismatch_error,
)
from ..vectors import as_float32_matrix, as_text_list, check_unicode, lone_surrogate

if TYPE_CHECKING:
    from ..rerank import Reranker

logger = logging.getLogger(__name__)

_S = TypeVar("_S", bound="VectorStore")

#: ``space_check`` values: "adopt" (default: a collection without a card gets one on its first write),
#: "strict" (a collection holding data but no card is refused), "off" (no check: a foot-gun, see docs/space.md).
SPACE_CHECKS = ("adopt", "strict", "off")

# The probe vectors of each embedder, per instruction, embedded once per process (space.py's card check
# costs one probe call per (store, embedder) pair, and stores sharing an embedder share it).
_probe_cache: weakref.WeakKeyDictionary[Embedder, dict[str | None, np.ndarray]] = weakref.WeakKeyDictionary()
_probe_lock = threading.Lock()


def _cached_probes(embedder: Embedder, instruction: str | None) -> np.ndarray | None:
    with _probe_lock:
        return _probe_cache.get(embedder, {}).get(instruction)


def _keep_probes(embedder: Embedder, instruction: str | None, vectors: np.ndarray) -> np.ndarray:
    with _probe_lock:
        _probe_cache.setdefault(embedder, {})[instruction] = vectors
    return vectors


def probes_of(embedder: Embedder, instruction: str | None) -> np.ndarray:
    """The space card's probe vectors from ``embedder`` under ``instruction``, embedded once per embedder and
    instruction (cached for the embedder's lifetime): what a store's card is written from and checked against."""
    hit = _cached_probes(embedder, instruction)
    return hit if hit is not None else _keep_probes(embedder, instruction, embed_probes(embedder, instruction))


async def aprobes_of(embedder: Embedder, instruction: str | None) -> np.ndarray:
    """``probes_of`` through the embedder's async path."""
    hit = _cached_probes(embedder, instruction)
    if hit is not None:
        return hit
    return _keep_probes(embedder, instruction, await aembed_probes(embedder, instruction))


@dataclass
class Hit:
    """One search result. ``score`` is the final score: the reranker's when reranked, else the vector
    similarity (mode "dense"), the engine's keyword score (mode "keyword") or the fused reciprocal-rank
    score (mode "hybrid"); ``vector_score``, ``keyword_score`` and ``rerank_score`` keep each stage's
    (None where a stage did not score the hit)."""

    id: str
    score: float
    text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    vector_score: float | None = None
    rerank_score: float | None = None
    keyword_score: float | None = None


def content_id(text: str) -> str:
    """The default id of a text: a hash of its content, so re-adding the same text is a no-op."""
    return hashlib.sha256(check_unicode(text, "text").encode("utf-8")).hexdigest()[:32]


def check_ids(ids: Sequence[str], *, what: str = "ids") -> list[str]:
    """``ids`` as a list, each a non-empty str of valid Unicode; InvalidInputError naming the first bad one.

    >>> check_ids(["a", "b"])
    ['a', 'b']
    """
    if isinstance(ids, (str, bytes)):
        raise InvalidInputError(f"{what}: expected a sequence of str, got a single {type(ids).__name__}; wrap it in a list")
    if ids is None:
        raise InvalidInputError(f"{what}: expected a sequence of str, got None")
    try:
        id_list = list(ids)
    except TypeError:
        raise InvalidInputError(f"{what}: expected a sequence of str, got {type(ids).__name__}") from None
    for i, x in enumerate(id_list):
        if not isinstance(x, str) or not x:
            raise InvalidInputError(f"{what}[{i}] must be a non-empty str, got {x!r}", index=i)
        check_unicode(x, f"{what}[{i}]", index=i)
    return id_list


def _bad_unicode_path(value: Any, path: str) -> str | None:
    """The key path inside ``value`` of the first str (key or value) holding a lone surrogate."""
    if isinstance(value, str):
        return path if lone_surrogate(value) is not None else None
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str) and lone_surrogate(k) is not None:
                return f"{path}, key {k!r}"
            found = _bad_unicode_path(v, f"{path}[{k!r}]")
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for j, v in enumerate(value):
            found = _bad_unicode_path(v, f"{path}[{j}]")
            if found is not None:
                return found
    return None


def check_metadata(metadata: Any, index: int, item_id: str) -> dict[str, Any]:
    """One record's metadata as a plain dict (None means ``{}``): a JSON-serialisable mapping whose
    keys and strings are valid Unicode. InvalidInputError names ``metadatas[index]``, the id and key."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(
            f"metadatas[{index}] (id {item_id!r}) must be a dict, got {type(metadata).__name__}",
            index=index, item_id=item_id,
        )
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"metadatas[{index}] (id {item_id!r}) is not JSON-serialisable: {exc}",
            index=index, item_id=item_id,
        ) from None
    bad = _bad_unicode_path(metadata, f"metadatas[{index}]")
    if bad is not None:
        raise InvalidInputError(
            f"{bad} (id {item_id!r}) holds a lone surrogate: not valid Unicode text",
            index=index, item_id=item_id,
        )
    return dict(metadata)


def prepare_records(
    texts: Iterable[str],
    ids: Sequence[str] | None = None,
    metadatas: Sequence[Mapping[str, Any] | None] | None = None,
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Validate texts, ids and metadatas together; return aligned lists.

    Raises InvalidInputError naming the bad item: a None/non-str/empty text, an id that is not a
    non-empty str, a duplicate id in one call, metadata that is not a JSON-serialisable dict, a lone
    surrogate in a text, an id or metadata, or lists of different lengths. With default
    (content-hash) ids a text repeated in one call is stored once.
    """
    items = as_text_list(texts)
    if ids is None:
        id_list = [content_id(t) for t in items]
        explicit = False
    else:
        id_list = check_ids(ids)
        explicit = True
        if len(id_list) != len(items):
            raise InvalidInputError(f"got {len(items)} texts but {len(id_list)} ids")
    if metadatas is None:
        metas: list[dict[str, Any]] = [{} for _ in items]
    else:
        metas_in = list(metadatas)
        if len(metas_in) != len(items):
            raise InvalidInputError(f"got {len(items)} texts but {len(metas_in)} metadatas")
        metas = [check_metadata(m, i, id_list[i]) for i, m in enumerate(metas_in)]
    seen: dict[str, int] = {}
    keep: list[int] = []
    for i, x in enumerate(id_list):
        if x in seen:
            if explicit:
                raise InvalidInputError(
                    f"ids[{i}] {x!r} repeats ids[{seen[x]}] in the same call", index=i, item_id=x
                )
            continue
        seen[x] = i
        keep.append(i)
    if len(keep) != len(items):
        items = [items[i] for i in keep]
        id_list = [id_list[i] for i in keep]
        metas = [metas[i] for i in keep]
    return items, id_list, metas


def secret_from_env(var: str, what: str) -> str:
    """The value of the environment variable ``var`` (a key or token a store's settings name);
    ConfigurationError naming the variable, never a value, when it is unset or empty."""
    value = os.environ.get(var, "")
    if not value:
        raise ConfigurationError(f"{what} needs a key in ${var}, which is not set (or name another variable)")
    return value


#: ``precision`` values: how a store's search index keeps vectors. "float32" is exact; "int8" (a scalar
#: quantiser, 4x smaller) and "binary" (one bit per dimension, 32x smaller) fetch ``rescore`` x top_k candidates
#: from the compact index and re-score them with the float vectors (see docs/retrieval.md, "compact vectors").
PRECISIONS = ("float32", "int8", "binary")

#: the settings every store has (``StoreSettings``' own fields)
_COMMON_FIELDS = ("space_check", "space_tolerance")


@dataclass(frozen=True)
class StoreSettings(Settings):
    """Base of a store's settings: plain, JSON-safe fields (no clients, no secrets, no embedder).

    Every store has the space card's two settings (keyword-only, so a subclass's own fields keep their
    order): ``space_check`` ("adopt", "strict" or "off") and ``space_tolerance`` (the lowest per-probe cosine
    accepted as the same vector space; see docs/space.md). They travel with ``to_config()``, a spec
    (``faiss:///data/kb?space_check=strict``) and pickling.

    And two for compact vectors: ``precision`` (None: the collection's recorded precision, "float32" for a new
    one; else one of ``PRECISIONS``) and ``rescore`` (oversampling factor of a compact search: candidates =
    rescore x top_k). A store that cannot keep a precision refuses it with ConfigurationError saying why.
    """

    space_check: str = field(default="adopt", kw_only=True)
    space_tolerance: float = field(default=DEFAULT_TOLERANCE, kw_only=True)
    precision: str | None = field(default=None, kw_only=True)
    rescore: int = field(default=4, kw_only=True)

    def __post_init__(self) -> None:
        check_choice("space_check", self.space_check, SPACE_CHECKS)
        check_number("space_tolerance", self.space_tolerance, minimum=-1.0, maximum=1.0)
        check_choice("precision", self.precision, PRECISIONS, optional=True)
        check_int("rescore", self.rescore, minimum=1, maximum=1000)
        super().__post_init__()

    def store_fields(self) -> dict[str, Any]:
        """Every field but the space card's: the keywords a store's constructor takes (``from_config`` sets
        ``space_check`` / ``space_tolerance`` on the store it built)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _COMMON_FIELDS}

    def missing_location(self) -> str | None:
        """Why these settings cannot open the store from a config alone (no URI, path or host known),
        or None. ``parse_store_spec`` refuses such a spec; ``to_config`` refuses to give one."""
        return None


_V = TypeVar("_V")


class _SpaceSetting(Generic[_V]):
    """A space card setting of a store, kept in its frozen ``settings`` (``StoreSettings.space_check`` /
    ``space_tolerance``) so it persists in ``to_config``, specs and pickling. Read on the class it is the
    default; set on a store it replaces ``settings`` with a validated copy. A store without settings keeps
    the value on itself."""

    def __init__(self, default: _V) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _V: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _V: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> _V:
        if obj is None:
            return self.default
        held = obj.__dict__
        if self.name in held:
            return held[self.name]  # type: ignore[no-any-return]
        settings = held.get("settings")
        if isinstance(settings, StoreSettings):
            return getattr(settings, self.name)  # type: ignore[no-any-return]
        return self.default

    def __set__(self, obj: object, value: _V) -> None:
        held = obj.__dict__
        settings = held.get("settings")
        if isinstance(settings, StoreSettings):
            held["settings"] = settings.replace(**{self.name: value})
            held.pop(self.name, None)
            return
        check: dict[str, Any] = {self.name: value}
        StoreSettings(**check)  # validates: ConfigurationError naming the setting
        held[self.name] = value


class VectorStore(ABC):
    """The shape every store shares: ``add_texts``, ``search``, ``count``, ``delete``,
    ``ensure_dimension`` and their async twins.

    A store registered in ``adapters/spec.py`` also has ``settings`` (its ``settings_class``), from which
    ``to_config()``, ``from_config(config, embedder)`` and ``repr`` derive.
    """

    #: how many records are embedded and written per step of ``add_texts``
    write_batch_size: int = 256
    #: the space card check (see ``ensure_space``): "adopt", "strict" or "off"; a setting (read from and
    #: written to ``settings``), ``VectorStore.space_check`` is the default
    space_check: _SpaceSetting[str] = _SpaceSetting("adopt")
    #: lowest per-probe cosine accepted as the same vector space (a setting too)
    space_tolerance: _SpaceSetting[float] = _SpaceSetting(DEFAULT_TOLERANCE)
    #: the frozen settings dataclass of this store, and its name in a spec (``{"store": kind, ...}``)
    settings_class: ClassVar[type[StoreSettings] | None] = None
    kind: ClassVar[str | None] = None
    settings: StoreSettings | None = None
    #: the ``precision`` values this store can keep (see ``PRECISIONS``), and why the others are refused
    precisions: ClassVar[tuple[str, ...]] = ("float32",)
    precision_note: ClassVar[str] = "this store keeps float32 vectors only"
    #: how ``search(mode="keyword" | "hybrid")`` runs here: "native" (the engine's own full-text/sparse
    #: search), "client" (a ``retrieval.KeywordIndex`` kept by this library) or "none" (refused)
    keyword_support: ClassVar[str] = "none"
    #: why (shown in docs and in the refusal of a "none" store)
    keyword_note: ClassVar[str] = "this store has no keyword search"

    # ---------------------------------------------------------------- settings
    def to_config(self) -> dict[str, Any]:
        """``{"store": kind, **settings}``: plain JSON that ``store_from_spec(config, embedder)`` (or
        ``type(store).from_config``) opens again on the same collection. No secret is in it, only the
        names of the variables that hold them. Raises ConfigurationError for a store opened on a client
        object whose address is unknown."""
        if self.settings is None or self.kind is None:
            raise ConfigurationError(f"{type(self).__name__} declares no settings: it has no config")
        why = self.settings.missing_location()
        if why:
            raise ConfigurationError(f"{self!r} has no config: {why}")
        return {"store": self.kind, **self.settings.to_config()}

    @classmethod
    def from_config(cls: type[_S], config: Mapping[str, Any], embedder: Embedder) -> _S:
        """The store ``config`` (as ``to_config`` gives it) describes, bound to ``embedder``."""
        if cls.settings_class is None or cls.kind is None:
            raise ConfigurationError(f"{cls.__name__} declares no settings: it cannot be built from a config")
        if not isinstance(config, Mapping):
            raise ConfigurationError(f"{cls.__name__} config must be a dict, got {type(config).__name__}")
        cfg = dict(config)
        given = cfg.pop("store", cls.kind)
        if given != cls.kind:
            raise ConfigurationError(f"{cls.__name__} config has store={given!r}, expected {cls.kind!r}")
        settings = cls.settings_class.from_config(cfg, what=cls.__name__)
        if settings.precision is not None and settings.precision not in cls.precisions:
            # a store that never handles precision (one written before it existed) must not ignore it silently
            raise ConfigurationError(f"{cls.__name__} cannot keep precision={settings.precision!r}: {cls.precision_note}")
        why = settings.missing_location()
        if why:
            raise ConfigurationError(f"{cls.__name__} config {why}")
        store = cls.from_settings(settings, embedder)
        # A store's constructor takes its own settings; the space card's common ones are applied here.
        store.space_check = settings.space_check
        store.space_tolerance = settings.space_tolerance
        return store

    @classmethod
    def from_settings(cls: type[_S], settings: Any, embedder: Embedder) -> _S:
        """Open the store ``settings`` describe; each registered store implements it."""
        raise ConfigurationError(f"{cls.__name__} cannot be built from settings")

    def _repr_state(self) -> dict[str, Any]:
        """What a repr shows besides the settings: state learnt on use (a dimension, a count)."""
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its config and its embedder (which pickles by its own settings): the other process
        opens the same collection. A store whose config is unknown (opened on a client object with no
        address) raises ConfigurationError instead of arriving as something else."""
        return (rebuild_store, (type(self), self.to_config(), self.embedder))

    def __repr__(self) -> str:
        shown = {"name": self.name} if self.settings is None else self.settings.shown()
        inner = "".join(f"{k}={v!r}, " for k, v in {**shown, **self._repr_state()}.items())
        return f"{type(self).__name__}({inner}embedder={self.embedder!r})"

    def __init__(self, embedder: Embedder) -> None:
        if not isinstance(embedder, Embedder):
            raise TypeError(f"embedder must be an qwen_embed_adapters Embedder, got {type(embedder).__name__}")
        self.embedder = embedder
        #: async clients the store opened, one per event loop (see ``LoopClients``)
        self._aclients: LoopClients[Any] = LoopClients()

    # ---------------------------------------------------------------- compact vectors
    @property
    def precision(self) -> str:
        """How the search index keeps vectors: the collection's recorded precision once known, else the
        one asked for, else "float32"."""
        return (self.settings.precision if self.settings is not None else None) or "float32"

    @property
    def rescore(self) -> int:
        """Oversampling factor of a compact (int8/binary) search: rescore x top_k candidates are re-scored."""
        return self.settings.rescore if self.settings is not None else 4

    def _check_precision(self) -> None:
        """ConfigurationError, naming the store and why, when the precision asked for is one it cannot keep.
        Stores call it from their constructor."""
        asked = self.settings.precision if self.settings is not None else None
        if asked is not None and asked not in self.precisions:
            raise ConfigurationError(
                f"{type(self).__name__} {self.name!r} cannot keep precision={asked!r}: {self.precision_note} "
                f"(it offers {', '.join(repr(p) for p in self.precisions)})"
            )

    def _settle_precision(self, recorded: str | None) -> str:
        """The precision of a collection that recorded ``recorded`` (None: nothing recorded — a new collection,
        or one written before precisions existed, which is float32 when ``exists``). A precision asked for
        that differs from the recorded one is a ConfigurationError naming both; otherwise the settings take
        the recorded one, so a reopen uses it."""
        asked = self.settings.precision if self.settings is not None else None
        if recorded is not None and asked is not None and asked != recorded:
            raise ConfigurationError(
                f"{self.name!r} was created with precision={recorded!r}; it cannot be opened with "
                f"precision={asked!r} (omit precision to use the recorded one, or write a new collection)"
            )
        settled = recorded or asked or "float32"
        # float32 left unset keeps configs as they were before precisions existed (absent means float32).
        if self.settings is not None and self.settings.precision != settled and (asked or settled != "float32"):
            self.settings = self.settings.replace(precision=settled)
        return settled

    # ---------------------------------------------------------------- the space card
    def _read_card(self) -> str | None:
        """The space card recorded with the collection (JSON text), or None. Stores override."""
        return None

    def _write_card(self, card: str) -> None:
        """Record the space card with the collection. Stores that can keep one override this and
        ``_read_card``; the default keeps it for this object's life only."""
        self._memory_card = card

    async def _aread_card(self) -> str | None:
        return await asyncio.to_thread(self._read_card)

    async def _awrite_card(self, card: str) -> None:
        await asyncio.to_thread(self._write_card, card)

    def _space_pending(self) -> bool:
        if self.space_check == "off" or getattr(self, "_space_proved", False):
            return False
        if self.space_check not in SPACE_CHECKS:
            raise ConfigurationError(f"space_check must be one of {SPACE_CHECKS}, got {self.space_check!r}")
        return True

    def _same_width(self, text: str, emb: Embedder) -> SpaceCard:
        """The card of ``text``; DimensionMismatchError (before any probe is embedded) when the embedder's
        width differs from the card's."""
        card = SpaceCard.from_json(text)
        if card.dimension != emb.dimension:
            raise DimensionMismatchError(card.dimension, emb.dimension, self.name)
        return card

    def _judge(self, text: str, vectors: np.ndarray | None, emb: Embedder) -> SpaceCard:
        """The card of ``text``, checked against the current embedder's probe ``vectors``."""
        card = SpaceCard.from_json(text)
        assert vectors is not None
        comparison = compare_cards(card, vectors, self.space_tolerance)
        if not comparison.same_space:
            raise mismatch_error(card, comparison, emb, self.name)
        return card

    def _refuse_cardless(self, count: int | None, emb: Embedder) -> None:
        """``count`` is only asked for under "strict"; "adopt" records the card and says so once."""
        if count:
            raise VectorSpaceMismatchError(
                self.name, actual_model=emb.model,
                detail="it holds vectors but no space card, and space_check='strict' refuses to adopt one; "
                "pass space_check='adopt' to record the current embedder's card",
            )
        logger.info("%s: recording the space card of %s (no card was recorded yet)", self.name, emb.model)

    def _proved(self, card: SpaceCard) -> None:
        self._space_proved = True
        self._space_card = card

    def ensure_space(self, *, writing: bool, embedder: Embedder | None = None) -> None:
        """Prove, once per process, that the embedder speaks the collection's vector space.

        With a card recorded: the embedder embeds the probes (once per process per embedder) and any probe
        below ``space_tolerance`` raises VectorSpaceMismatchError naming it, before anything is written or
        searched. Without one: the first write records the card ("adopt"; "strict" refuses a collection that
        holds data but no card); a search has nothing to compare with and goes on. ``space_check="off"``
        skips all of it. Call ``ensure_dimension()`` first. ``embedder`` (default: the store's) is the one whose
        vectors will be written: ingest_ray checks its real embedder through a store that only writes vectors.
        """
        if not self._space_pending():
            return
        emb = embedder or self.embedder
        text = self._read_card() or getattr(self, "_memory_card", None)
        if text is not None:
            card = self._same_width(text, emb)
            self._proved(self._judge(text, probes_of(emb, card.instruction), emb))
        elif writing:
            self._refuse_cardless(self.count() if self.space_check == "strict" else None, emb)
            instruction = emb.query_instruction
            card = card_from_vectors(emb, probes_of(emb, instruction), instruction)
            self._write_card(card.dumps())
            self._proved(card)

    async def aensure_space(self, *, writing: bool, embedder: Embedder | None = None) -> None:
        """Async twin of ``ensure_space``."""
        if not self._space_pending():
            return
        emb = embedder or self.embedder
        text = await self._aread_card() or getattr(self, "_memory_card", None)
        if text is not None:
            card = self._same_width(text, emb)
            self._proved(self._judge(text, await aprobes_of(emb, card.instruction), emb))
        elif writing:
            self._refuse_cardless(await self.acount() if self.space_check == "strict" else None, emb)
            instruction = emb.query_instruction
            card = card_from_vectors(emb, await aprobes_of(emb, instruction), instruction)
            await self._awrite_card(card.dumps())
            self._proved(card)

    def read_space_card(self) -> SpaceCard | None:
        """The space card recorded with the collection, read from the database (None when it holds none);
        nothing is embedded or written (Chroma opens the collection as any first use does).
        ``qwen-embed doctor --store URI`` shows it with the current embedder's agreement per probe."""
        text = self._read_card() or getattr(self, "_memory_card", None)
        return None if text is None else SpaceCard.from_json(text)

    @property
    def space_card(self) -> SpaceCard | None:
        """The card this store proved or recorded in this process (None before the first write or search)."""
        return getattr(self, "_space_card", None)

    # ---------------------------------------------------------------- database hooks
    @property
    @abstractmethod
    def name(self) -> str:
        """The collection/index name, used in errors."""

    @abstractmethod
    def ensure_dimension(self) -> int:
        """Create the collection if missing, else check its recorded dimension against the embedder's.
        Returns the dimension. Raises DimensionMismatchError before anything is written."""

    @abstractmethod
    def _write(
        self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        """Upsert one batch (vectors float32 (n, d)). Raise on failure; nothing is retried here."""

    @abstractmethod
    def _search_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        """Nearest ``top_k`` to a unit query vector, best first."""

    @abstractmethod
    def count(self) -> int:
        """How many records the collection holds."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id (missing ids are ignored)."""

    def _validate_batch(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        """Store-specific limits (text length, metadata size), checked before a batch is written."""
        return None

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the store already holds; bulk ingestion skips them on a re-run.

        The default says "none" (everything is embedded again and upserted, which is still correct when
        ``_write`` upserts). Stores that can look ids up cheaply override it.
        """
        return set()

    async def _awrite(
        self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        await asyncio.to_thread(self._write, ids, vectors, texts, metadatas)

    # ---------------------------------------------------------------- public batch hooks
    def check_batch(self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        """Check records already prepared by ``prepare_records`` (aligned lists) against this store's
        own limits: Milvus VARCHAR sizes, Pinecone's id rules and 40 KB metadata, Chroma's metadata
        types. Raises InvalidInputError whose ``index`` is the position in these lists and whose
        ``item_id`` is the id; nothing is written. Bulk ingestion calls it once per batch."""
        if not len(ids) == len(texts) == len(metadatas):
            raise InvalidInputError(f"got {len(ids)} ids, {len(texts)} texts and {len(metadatas)} metadatas")
        self._validate_batch(ids, texts, metadatas)

    def _batch_vectors(self, ids: list[str], vectors: Any) -> np.ndarray:
        matrix = as_float32_matrix(vectors, where=f"vectors for {self.name!r}")
        if matrix.shape[0] != len(ids):
            raise InvalidInputError(f"got {len(ids)} ids but {matrix.shape[0]} vectors")
        return matrix

    def write_batch(
        self, ids: list[str], vectors: Any, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        """Upsert one batch of checked records with their vectors (one float32 row per id, of the
        store's dimension; call ``ensure_dimension()`` first). Raises on failure, WriteError with the
        ids written when the store sent several requests; nothing is retried here."""
        self._write(ids, self._batch_vectors(ids, vectors), texts, metadatas)

    async def awrite_batch(
        self, ids: list[str], vectors: Any, texts: list[str], metadatas: list[dict[str, Any]]
    ) -> None:
        """Async twin of ``write_batch``."""
        await self._awrite(ids, self._batch_vectors(ids, vectors), texts, metadatas)

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release what the store opened (clients passed in are left open). The base forgets its
        per-loop async clients; ``aclose()`` also closes the running loop's one."""
        self._aclients.clear()

    async def aclose(self) -> None:
        """Close the running loop's async client, then everything ``close()`` releases."""
        client = self._aclients.pop_current()
        if client is not None:
            try:
                await self._close_async_client(client)
            except Exception as exc:  # closing is best effort
                logger.debug("%s: closing the async client failed: %s", self.name, exc)
        self.close()

    async def _close_async_client(self, client: Any) -> None:
        closer = getattr(client, "aclose", None) or getattr(client, "close", None)
        if closer is not None:
            result = closer()
            if inspect.isawaitable(result):
                await result

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _asearch_vector(self, vector: np.ndarray, top_k: int, filter: Any) -> list[Hit]:
        return await asyncio.to_thread(self._search_vector, vector, top_k, filter)

    # ---------------------------------------------------------------- keyword hooks
    def _search_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        """The ``top_k`` best keyword matches of ``query`` (best first; ``score`` and ``keyword_score`` are
        the engine's keyword score). Stores with ``keyword_support`` "native" or "client" override it."""
        raise self._no_keyword()

    async def _asearch_keyword(self, query: str, top_k: int, filter: Any) -> list[Hit]:
        return await asyncio.to_thread(self._search_keyword, query, top_k, filter)

    def build_keyword_index(self) -> KeywordIndex | None:
        """Make the keyword side ready now rather than on the first keyword search: a client-side store
        ("client") builds (or reads) its BM25 index and returns it; native stores keep theirs in the engine
        and "none" stores have none (both return None). ``qwen-embed ingest`` calls it."""
        return None

    def _no_keyword(self) -> ConfigurationError:
        return ConfigurationError(
            f"{type(self).__name__} {self.name!r} has no keyword search, so mode 'keyword' and 'hybrid' are "
            f"refused: {self.keyword_note}"
        )

    def _search_plan(self, mode: str, fusion: Fusion | None, top_k: int, rerank: Any, candidates: int | None
                     ) -> tuple[str, Fusion, int]:
        """The checked mode and fusion, and how many hits the retrieval stage returns."""
        mode = check_mode(mode)
        if fusion is None:
            fusion = DEFAULT_FUSION
        elif not isinstance(fusion, Fusion):
            raise ConfigurationError(f"fusion must be a retrieval.Fusion or None, got {type(fusion).__name__}")
        if mode != "dense" and self.keyword_support == "none":
            raise self._no_keyword()
        return mode, fusion, _candidates(top_k, candidates) if rerank is not None else top_k

    # ---------------------------------------------------------------- public API
    def _plan_add(
        self, texts: Iterable[str], ids: Sequence[str] | None, metadatas: Sequence[Mapping[str, Any] | None] | None
    ) -> _AddPlan:
        given = as_text_list(texts)
        items, id_list, metas = prepare_records(given, ids, metadatas)
        self.check_batch(id_list, items, metas)
        return _AddPlan(given, ids, items, id_list, metas, self.write_batch_size)

    def add_texts(
        self,
        texts: Iterable[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Embed and upsert texts; returns their ids (content hashes unless given), one per input in
        input order.

        Everything is validated before the first write. If a batch fails, WriteError says which
        ids were written and which were not; re-running stores only what is missing.
        """
        plan = self._plan_add(texts, ids, metadatas)
        self.ensure_dimension()
        self.ensure_space(writing=True)
        # The next batch embeds on a worker thread while the current one is written.
        ahead = ThreadPoolExecutor(1, thread_name_prefix="embed-ahead")
        failed = True
        try:
            pending = ahead.submit(self.embedder.embed_documents, plan.texts(0)) if plan.batches else None
            for n, b in enumerate(plan.batches):
                try:
                    assert pending is not None
                    vectors = pending.result()
                    pending = ahead.submit(self.embedder.embed_documents, plan.texts(n + 1)) if plan.has(n + 1) else None
                    self.write_batch(plan.ids[b], vectors, plan.items[b], plan.metas[b])
                except Exception as exc:
                    raise self._add_failed(exc, plan, b.start) from exc
                plan.written.extend(plan.ids[b])
            failed = False
        finally:
            # On a failure, raise at once: the batch embedding ahead is abandoned, not waited for.
            ahead.shutdown(wait=not failed, cancel_futures=True)
        return plan.result()

    async def aadd_texts(
        self,
        texts: Iterable[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Async twin of ``add_texts``."""
        plan = self._plan_add(texts, ids, metadatas)
        await self.aensure_dimension()
        await self.aensure_space(writing=True)
        embed = self.embedder.aembed_documents
        pending = asyncio.ensure_future(embed(plan.texts(0))) if plan.batches else None
        try:
            for n, b in enumerate(plan.batches):
                try:
                    assert pending is not None
                    vectors = await pending
                    pending = asyncio.ensure_future(embed(plan.texts(n + 1))) if plan.has(n + 1) else None
                    await self.awrite_batch(plan.ids[b], vectors, plan.items[b], plan.metas[b])
                except Exception as exc:
                    raise self._add_failed(exc, plan, b.start) from exc
                plan.written.extend(plan.ids[b])
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
        return plan.result()

    def _add_failed(self, exc: Exception, plan: _AddPlan, start: int) -> QwenEmbedError:
        """What ``add_texts`` raises when the batch at ``start`` fails: a bad item renamed after the
        caller's list, else WriteError with the ids written and not."""
        if isinstance(exc, InvalidInputError):
            return _rebased(exc, start, plan.ids, plan.positions, len(plan.written))
        return self._write_error(exc, plan.written, plan.ids[start:])

    def search(
        self,
        query: str,
        top_k: int = 5,
        filter: Any = None,
        *,
        mode: str = "dense",
        rerank: Reranker | None = None,
        candidates: int | None = None,
        instruction: str | None = None,
        fusion: Fusion | None = None,
    ) -> list[Hit]:
        """The texts best matching ``query``, best first.

        ``mode``: "dense" (nearest vectors to the query embedded with its instruction), "keyword" (the
        store's keyword search: BM25 over ``retrieval.tokenize`` terms, or the engine's own) or "hybrid"
        (both, fused by reciprocal rank with ``fusion``, default ``retrieval.DEFAULT_FUSION``). A store
        whose ``keyword_support`` is "none" refuses "keyword" and "hybrid" with ConfigurationError.
        With ``rerank``, ``candidates`` (default 4 x top_k) are retrieved and reordered by the reranker;
        each Hit keeps every stage's score.
        """
        top_k = check_top_k(top_k)
        query = _check_query(query)
        mode, fusion, k = self._search_plan(mode, fusion, top_k, rerank, candidates)
        if mode == "keyword":
            hits = self._search_keyword(query, k, filter)
        else:
            depth = fusion.side_depth(k)
            # The keyword side first: a store that can only tell by asking its engine (Milvus 2.3, a Pinecone
            # index of another metric) refuses before the query is embedded and searched by vector.
            keyword = self._search_keyword(query, depth, filter) if mode == "hybrid" else None
            self.ensure_space(writing=False)
            vector = self.embedder.embed_query(query, instruction)
            if keyword is None:
                hits = self._search_vector(vector, k, filter)
            else:
                hits = _fused(self._search_vector(vector, depth, filter), keyword, fusion, k)
        if rerank is not None:
            hits = _apply_rerank(query, hits, rerank.score(query, [h.text or "" for h in hits]), top_k, mode)
        return hits

    async def asearch(
        self,
        query: str,
        top_k: int = 5,
        filter: Any = None,
        *,
        mode: str = "dense",
        rerank: Reranker | None = None,
        candidates: int | None = None,
        instruction: str | None = None,
        fusion: Fusion | None = None,
    ) -> list[Hit]:
        """Async twin of ``search`` (in mode "hybrid" both sides run concurrently)."""
        top_k = check_top_k(top_k)
        query = _check_query(query)
        mode, fusion, k = self._search_plan(mode, fusion, top_k, rerank, candidates)
        if mode == "keyword":
            hits = await self._asearch_keyword(query, k, filter)
        else:
            if mode == "dense":
                await self.aensure_space(writing=False)
                vector = await self.embedder.aembed_query(query, instruction)
                hits = await self._asearch_vector(vector, k, filter)
            else:
                hits = await self._ahybrid(query, instruction, k, filter, fusion)
        if rerank is not None:
            scores = await rerank.ascore(query, [h.text or "" for h in hits])
            hits = _apply_rerank(query, hits, scores, top_k, mode)
        return hits

    async def _ahybrid(self, query: str, instruction: str | None, k: int, filter: Any, fusion: Fusion) -> list[Hit]:
        """Both sides at once; when the keyword side refuses (or fails), the dense side is cancelled and the
        error raised, so a store that refuses keyword search answers no half of a hybrid search."""
        depth = fusion.side_depth(k)

        async def dense() -> list[Hit]:
            await self.aensure_space(writing=False)
            return await self._asearch_vector(await self.embedder.aembed_query(query, instruction), depth, filter)

        keyword_task = asyncio.ensure_future(self._asearch_keyword(query, depth, filter))
        dense_task = asyncio.ensure_future(dense())
        try:
            keyword = await keyword_task
        except BaseException:
            dense_task.cancel()
            await asyncio.gather(dense_task, return_exceptions=True)
            raise
        return _fused(await dense_task, keyword, fusion, k)

    async def acount(self) -> int:
        """Async twin of ``count``."""
        return await asyncio.to_thread(self.count)

    async def adelete(self, ids: Sequence[str]) -> None:
        """Async twin of ``delete``."""
        await asyncio.to_thread(self.delete, ids)

    async def aensure_dimension(self) -> int:
        """Async twin of ``ensure_dimension``."""
        return await asyncio.to_thread(self.ensure_dimension)

    # ---------------------------------------------------------------- helpers
    def _write_error(self, exc: BaseException, written: list[str], not_written: list[str]) -> WriteError:
        if isinstance(exc, WriteError) and exc.written_ids:
            # The store wrote part of the batch before failing (e.g. several requests per batch).
            done = set(exc.written_ids)
            written = written + [i for i in not_written if i in done]
            not_written = [i for i in not_written if i not in done]
        logger.error(
            "%s: write failed after %d records; %d not written: %s",
            self.name, len(written), len(not_written), exc,
        )
        return WriteError(
            f"{self.name!r}: {len(not_written)} records not written "
            f"(first: {not_written[:3]}); {len(written)} written before the failure: {exc}",
            failed_ids=not_written,
            written_ids=written,
            cause=exc,
        )


class _AddPlan:
    """The records of one ``add_texts`` call, cut into write batches, and what has been written."""

    def __init__(
        self, given: list[str], ids: Sequence[str] | None, items: list[str], id_list: list[str],
        metas: list[dict[str, Any]], size: int,
    ) -> None:
        self.given, self.explicit = given, ids
        self.items, self.ids, self.metas = items, id_list, metas
        self.positions = _positions(id_list, given, ids)
        self.batches = [slice(start, start + size) for start in range(0, len(items), size)]
        self.written: list[str] = []

    def has(self, n: int) -> bool:
        return n < len(self.batches)

    def texts(self, n: int) -> list[str]:
        return self.items[self.batches[n]]

    def result(self) -> list[str]:
        # One id per input, in input order (a text repeated in the call repeats its id).
        return [content_id(t) for t in self.given] if self.explicit is None else list(self.explicit)


def _positions(id_list: list[str], given: list[str], ids: Sequence[str] | None) -> list[int]:
    """For each record kept by ``prepare_records``, its index in the caller's list (repeated texts under
    content-hash ids are stored once, at their first position)."""
    if ids is not None:
        return list(range(len(id_list)))
    first: dict[str, int] = {}
    for i, t in enumerate(given):
        first.setdefault(content_id(t), i)
    return [first[x] for x in id_list]


def _rebased(
    exc: InvalidInputError, start: int, ids: list[str], positions: list[int], written: int
) -> InvalidInputError:
    """An error about item ``exc.index`` of the batch starting at ``start``, renamed after the caller's
    list (the embedder and ``_write`` only see the batch), saying what earlier batches stored."""
    if exc.index is None or not 0 <= start + exc.index < len(ids):
        return exc
    kept = start + exc.index
    pos = positions[kept]
    message = re.sub(rf"\b(texts|ids|metadatas)\[{exc.index}\]", rf"\g<1>[{pos}]", str(exc))
    if f"[{pos}]" not in message:
        message = f"texts[{pos}]: {message}"
    message += f" (id {ids[kept]!r})"
    if written:
        message += f"; {written} records in earlier batches were written before it"
    return InvalidInputError(message, index=pos, item_id=ids[kept])


def filter_values(key: str, want: Any) -> list[Any]:
    """The values a filter entry accepts: ``v``, ``[v, ...]``, ``{"$eq": v}`` or ``{"$in": [...]}``;
    InvalidInputError naming ``key`` for anything else or an empty list (pgvector and Qdrant share it)."""
    if isinstance(want, Mapping):
        if set(want) == {"$in"}:
            want = want["$in"]
            if not isinstance(want, (list, tuple, set, frozenset)):
                raise InvalidInputError(f"filter {key!r}: $in takes a list, got {type(want).__name__}")
        elif set(want) == {"$eq"}:
            return [want["$eq"]]
        else:
            raise InvalidInputError(f"filter {key!r}: only $eq and $in are understood, got {sorted(want)}")
    if isinstance(want, (list, tuple, set, frozenset)):
        values = list(want)
        if not values:
            raise InvalidInputError(f"filter value for {key!r} is an empty list")
        return values
    return [want]


def rebuild_store(cls: type[_S], config: dict[str, Any], embedder: Embedder) -> _S:
    """Unpickling entry point of a VectorStore: ``cls.from_config(config, embedder)``."""
    return cls.from_config(config, embedder)


def check_top_k(top_k: int) -> int:
    """``top_k`` of a search: a positive int (not a bool); InvalidInputError otherwise (it is data, not a setting)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidInputError(f"top_k must be a positive int, got {top_k!r}")
    return top_k


def _check_query(query: str) -> str:
    if not isinstance(query, str) or not query:
        raise InvalidInputError(f"query must be a non-empty str, got {query!r:.60}")
    return check_unicode(query, "query")


def _candidates(top_k: int, candidates: int | None) -> int:
    if candidates is None:
        return max(top_k * 4, 20)
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < top_k:
        raise InvalidInputError(f"candidates must be an int >= top_k ({top_k}), got {candidates!r}")
    return candidates


def _fused(dense: list[Hit], keyword: list[Hit], fusion: Fusion, top_k: int) -> list[Hit]:
    """One ranking of the two sides' hits by ``fusion``: ``score`` is the fused score, ``vector_score`` and
    ``keyword_score`` each side's own (None for a side that did not return the hit)."""
    by_dense = {h.id: h for h in dense}
    by_keyword = {h.id: h for h in keyword}
    out = []
    for doc, score in fusion.fuse(list(by_dense), list(by_keyword), top_k):
        d, kw = by_dense.get(doc), by_keyword.get(doc)
        base = d if d is not None else kw
        assert base is not None
        out.append(Hit(
            id=doc, score=score, text=base.text if base.text is not None else (kw.text if kw else None),
            metadata=base.metadata or (kw.metadata if kw else {}),
            vector_score=d.score if d is not None else None,
            keyword_score=kw.score if kw is not None else None,
        ))
    return out


def _apply_rerank(query: str, hits: list[Hit], scores: Any, top_k: int, mode: str = "dense") -> list[Hit]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(hits):
        raise QwenEmbedError(f"the reranker returned {len(scores)} scores for {len(hits)} candidates")
    for h, s in zip(hits, scores, strict=True):
        if mode == "dense" and h.vector_score is None:
            h.vector_score = h.score
        elif mode == "keyword" and h.keyword_score is None:
            h.keyword_score = h.score
        h.rerank_score = float(s)
        h.score = float(s)
    order = sorted(range(len(hits)), key=lambda i: (-hits[i].score, i))
    return [hits[i] for i in order[:top_k]]


__all__ = [
    "PRECISIONS", "SPACE_CHECKS", "Hit", "StoreSettings", "VectorStore", "aprobes_of", "check_ids", "check_metadata",
    "check_top_k", "content_id", "filter_values", "prepare_records", "probes_of", "rebuild_store", "secret_from_env",
]
