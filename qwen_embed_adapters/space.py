"""The space card: proof that an embedder speaks the vector space a collection was built in.

A dimension check stops a 512-d vector from entering a 1024-d collection. It does not stop the failure
users of Qwen3-Embedding report most: vectors of the right width from another space, with no error.
Reported causes: mean instead of last-token pooling in GGUF servers (llama.cpp #14028, #14029), the
``<|endoftext|>`` token not appended (llama.cpp #14084, #14252; QwenLM/Qwen3-Embedding #54, #122), a
serving engine disagreeing with the reference (text-embeddings-inference #642, #649, #704, #658), token ids
sent instead of text (langchain #12854), the query instruction on documents (xinference #3751), another
model at the same width (LightRAG #1946), fp16 NaNs (QwenLM/Qwen3-Embedding #164).

A card records, with the collection, the vectors of a fixed set of probe texts (Chinese, English,
Japanese, code, a long passage, each as a document, and one query wrapped in the store's instruction)
plus what made them (model, dimensions, engine, instruction, library version). Before the first write and
the first search of a process, the current embedder embeds the same probes and every row is compared by
cosine; below ``tolerance`` the store raises :class:`VectorSpaceMismatchError` naming the worst probe,
before anything is written or searched.

Compact: each probe keeps its first :data:`CARD_WIDTH` values (a prefix of an MRL vector is itself
meaningful, and a different space differs in every prefix), stored as float16 in base64: about 6 KB of
JSON for 9 probes, whatever the model's width.

Example::

    card = make_card(embedder)                    # once, with the first write
    stored = card.to_json()                       # a JSON-safe dict (the store keeps it)
    check_space(SpaceCard.from_json(stored), embedder, where="kb")   # raises VectorSpaceMismatchError
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .embedder import Embedder
from .errors import ConfigurationError, InvalidInputError, VectorSpaceMismatchError

logger = logging.getLogger(__name__)

__all__ = [
    "CARD_WIDTH",
    "CARD_VERSION",
    "DEFAULT_TOLERANCE",
    "PROBES",
    "Probe",
    "SpaceCard",
    "SpaceComparison",
    "aembed_probes",
    "card_from_vectors",
    "check_space",
    "compare_cards",
    "embed_probes",
    "embedder_identity",
    "make_card",
    "LIKELY_CAUSES",
    "mismatch_error",
]

#: Values kept of each probe vector (a prefix; the whole vector when narrower).
CARD_WIDTH = 256
#: Format version of the JSON form, bumped when the probes or the layout change.
CARD_VERSION = 1
#: Cosine below which a probe is said to come from another space. Set from the drift table in
#: docs/space.md: same-space engines agree above 0.999 on every probe (fp32/bf16, serve, Infinity,
#: llama.cpp f32), the failures fall below 0.95 (mean pooling, no end-of-text token, another model).
DEFAULT_TOLERANCE = 0.99

_PASSAGE = [
    "Retrieval-augmented generation keeps a language model honest by handing it passages from a corpus",
    "that an embedding model has indexed. Each passage is split into chunks, each chunk becomes a vector,",
    "and a query is embedded the same way so that the nearest vectors name the passages to read.",
    "When the vectors of the corpus and of the query come from different spaces, nothing fails loudly:",
    "the database still returns the nearest rows, only they are no longer related to the question.",
]
# About 170 tokens with Qwen3's tokenizer: long enough to show position and pooling bugs, and short enough for
# every server's input limit, including a tiny test tokenizer's (about 450 of its tokens) behind a 512 limit.
_LONG_PASSAGE = " ".join(_PASSAGE + _PASSAGE[:3])


@dataclasses.dataclass(frozen=True)
class Probe:
    """One probe text: ``name`` (reported on a mismatch), the text, and whether it is embedded as a query."""

    name: str
    text: str
    query: bool = False


#: The fixed probe set. Changing it changes CARD_VERSION.
PROBES: tuple[Probe, ...] = (
    Probe("zh", "北京是中华人民共和国的首都,也是全国的政治和文化中心。"),
    Probe("en", "The mitochondria is the powerhouse of the cell, producing ATP through respiration."),
    Probe("ja", "東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。"),
    Probe("code", "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a"),
    Probe("mixed", "Qwen3-Embedding 支持 100 多种语言, including code search and cross-lingual retrieval."),
    Probe("numbers", "Order #4471: 3 x 2.5 kg at 12.99 EUR, shipped 2025-06-30 to 10115 Berlin."),
    Probe("long", _LONG_PASSAGE),
    Probe("short", "hello"),
    Probe("query", "what is the capital of China?", query=True),
)


def _encode(matrix: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(matrix, dtype="<f2").tobytes()).decode("ascii")


def _decode(text: str, rows: int) -> np.ndarray:
    try:
        raw = np.frombuffer(base64.b64decode(text, validate=True), dtype="<f2")
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"space card: vectors are not valid base64 float16 ({exc})") from None
    if rows <= 0 or raw.size % rows:
        raise ConfigurationError(f"space card: {raw.size} values do not split into {rows} probe vectors")
    return raw.reshape(rows, -1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SpaceCard:
    """What made a collection's vectors, and the probe vectors themselves (float32 (n, w) in memory)."""

    model: str
    dimension: int
    engine: str
    instruction: str | None
    probes: tuple[str, ...]
    vectors: np.ndarray = dataclasses.field(compare=False, repr=False)
    family: str | None = None
    normalised: bool = True
    library_version: str = ""
    version: int = CARD_VERSION
    #: when the card was made (ISO 8601, UTC, seconds); "" on a card written before the field existed
    created: str = dataclasses.field(default="", compare=False)

    @property
    def fingerprint(self) -> str:
        """A short stable hash of the probe vectors rounded to 2 decimals: the space's name for cache keys.

        Two embedders of the same space can still differ in the last digits (bf16 vs fp32); this is an id
        of the card, not a test of agreement (use :func:`check_space` for that)."""
        rounded = np.round(self.vectors.astype(np.float32), 2).astype("<f4").tobytes()
        head = f"{self.dimension}|{self.instruction or ''}|".encode()
        return hashlib.sha256(head + rounded).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (about 6 KB)."""
        return {
            "version": self.version,
            "model": self.model,
            "dimension": self.dimension,
            "engine": self.engine,
            "family": self.family,
            "instruction": self.instruction,
            "normalised": self.normalised,
            "library_version": self.library_version,
            "probes": list(self.probes),
            "vectors": _encode(self.vectors),
            "created": self.created,
        }

    def dumps(self) -> str:
        """The card as one JSON string (for stores whose metadata takes strings only)."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> SpaceCard:
        """The card of ``to_json()`` / ``dumps()`` output; ConfigurationError when it is not one."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise ConfigurationError(f"space card: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"space card: expected a JSON object, got {type(data).__name__}")
        try:
            probes = tuple(str(p) for p in data["probes"])
            return cls(
                model=str(data["model"]),
                dimension=int(data["dimension"]),
                engine=str(data["engine"]),
                instruction=data.get("instruction"),
                probes=probes,
                vectors=_decode(str(data["vectors"]), len(probes)),
                family=data.get("family"),
                normalised=bool(data.get("normalised", True)),
                library_version=str(data.get("library_version", "")),
                version=int(data.get("version", CARD_VERSION)),
                created=str(data.get("created") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"space card: missing or bad field ({exc!r})") from None


def _library_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qwen-embed-adapters")
    except PackageNotFoundError:
        return ""


def _speaker(embedder: Embedder) -> Embedder:
    """The embedder whose vectors ``embedder`` gives: a wrapper that holds another Embedder as ``inner``
    (``CachedEmbedder``) is reported by it, so a card says "local" or "remote", never "cached"."""
    seen = {id(embedder)}
    inner = getattr(embedder, "inner", None)
    while isinstance(inner, Embedder) and id(inner) not in seen:
        seen.add(id(inner))
        embedder = inner
        inner = getattr(embedder, "inner", None)
    return embedder


def _engine_of(embedder: Embedder) -> tuple[str, str | None]:
    embedder = _speaker(embedder)
    family = getattr(embedder, "engine_family", None)
    return embedder.engine, family if isinstance(family, str) else None


def embedder_identity(embedder: Embedder) -> tuple[str, str, str | None]:
    """``(model, engine, family)`` as a card records them: a wrapper (``CachedEmbedder``) is named by the
    embedder it wraps."""
    engine, family = _engine_of(embedder)
    return _speaker(embedder).model, engine, family


def _stack(docs: np.ndarray, queries: np.ndarray, probes: Sequence[Probe]) -> np.ndarray:
    rows, d, q = [], iter(docs), iter(queries)
    for p in probes:
        rows.append(next(q) if p.query else next(d))
    return np.stack(rows)[:, :CARD_WIDTH].astype(np.float32)


def _split(probes: Sequence[Probe]) -> tuple[list[str], list[str]]:
    return [p.text for p in probes if not p.query], [p.text for p in probes if p.query]


def _refused(exc: InvalidInputError, probes: Sequence[Probe], query: bool) -> ConfigurationError:
    kind = [p for p in probes if p.query == query]
    name = kind[exc.index].name if exc.index is not None and 0 <= exc.index < len(kind) else "?"
    return ConfigurationError(
        f"the embedder refused the space card's probe {name!r} ({exc}); the card needs every probe embedded "
        "(raise the server's input limit, or pass space_check='off' to a store to skip the card)"
    )


def embed_probes(embedder: Embedder, instruction: str | None = None,
                 probes: Sequence[Probe] = PROBES) -> np.ndarray:
    """The probe vectors of ``embedder`` (documents plain, the query with ``instruction`` or the
    embedder's own), cut to CARD_WIDTH values, float32."""
    docs, queries = _split(probes)
    try:
        d = embedder.embed_documents(docs)
    except InvalidInputError as exc:
        raise _refused(exc, probes, False) from exc
    try:
        q = embedder.embed_queries(queries, instruction)
    except InvalidInputError as exc:
        raise _refused(exc, probes, True) from exc
    return _stack(d, q, probes)


async def aembed_probes(embedder: Embedder, instruction: str | None = None,
                        probes: Sequence[Probe] = PROBES) -> np.ndarray:
    """Async twin of :func:`embed_probes`."""
    docs, queries = _split(probes)
    try:
        d = await embedder.aembed_documents(docs)
    except InvalidInputError as exc:
        raise _refused(exc, probes, False) from exc
    try:
        q = await embedder.aembed_queries(queries, instruction)
    except InvalidInputError as exc:
        raise _refused(exc, probes, True) from exc
    return _stack(d, q, probes)


def card_from_vectors(embedder: Embedder, vectors: np.ndarray, instruction: str | None = None) -> SpaceCard:
    """A card for ``embedder`` holding probe ``vectors`` already embedded."""
    engine, family = _engine_of(embedder)
    return SpaceCard(
        model=_speaker(embedder).model,
        dimension=embedder.dimension,
        engine=engine,
        family=family,
        instruction=embedder.query_instruction if instruction is None else instruction,
        probes=tuple(p.name for p in PROBES),
        vectors=np.asarray(vectors, dtype=np.float16).astype(np.float32),
        library_version=_library_version(),
        created=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def make_card(embedder: Embedder, instruction: str | None = None) -> SpaceCard:
    """Embed the probes with ``embedder`` and return its card."""
    return card_from_vectors(embedder, embed_probes(embedder, instruction), instruction)


@dataclasses.dataclass(frozen=True)
class SpaceComparison:
    """Per-probe cosines between a card and an embedder (or another card); ``worst`` is the lowest."""

    cosines: dict[str, float]
    tolerance: float

    @property
    def worst(self) -> tuple[str, float]:
        name = min(self.cosines, key=lambda k: self.cosines[k])
        return name, self.cosines[name]

    @property
    def same_space(self) -> bool:
        return self.worst[1] >= self.tolerance


def _cosines(a: np.ndarray, b: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    k = min(a.shape[1], b.shape[1])
    a, b = a[:, :k].astype(np.float64), b[:, :k].astype(np.float64)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-12)
    cos = np.where(np.isfinite(cos), cos, -1.0)  # a NaN vector (fp16 overflow) is as far as it gets
    return {n: float(c) for n, c in zip(names, cos, strict=True)}


def compare_cards(card: SpaceCard, vectors: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> SpaceComparison:
    """Compare ``card``'s probe vectors with ``vectors`` (the same probes from another embedder)."""
    if vectors.shape[0] != len(card.probes):
        raise ConfigurationError(
            f"space card holds {len(card.probes)} probes, got {vectors.shape[0]} vectors to compare"
        )
    return SpaceComparison(_cosines(card.vectors, vectors, card.probes), tolerance)


LIKELY_CAUSES = (
    "mean pooling where Qwen3 needs the last token (llama.cpp/Ollama GGUF without the pooling key, "
    "`--pooling mean`); the <|endoftext|> token not appended; another model at the same width (0.6B vs 4B "
    "cut to the same dimensions); the query instruction applied to documents; a server build that disagrees "
    "with the reference. Run `qwen-embed doctor --reference MODEL_DIR` against the server to find which"
)


def mismatch_error(card: SpaceCard, comparison: SpaceComparison, embedder: Embedder,
                   where: str) -> VectorSpaceMismatchError:
    """The error a store raises when ``comparison`` fails."""
    probe, cosine = comparison.worst
    engine, family = _engine_of(embedder)
    made = f"{card.model} via {card.engine}" + (f" ({card.family})" if card.family else "")
    now = f"{_speaker(embedder).model} via {engine}" + (f" ({family})" if family else "")
    detail = (
        f"the collection's vectors came from {made}, the current embedder is {now}; tolerance "
        f"{comparison.tolerance}. Likely causes: {LIKELY_CAUSES}"
    )
    return VectorSpaceMismatchError(
        where, worst_probe=probe, cosine=cosine, expected_model=card.model, actual_model=_speaker(embedder).model,
        detail=detail,
    )


def check_space(card: SpaceCard, embedder: Embedder, *, where: str, tolerance: float = DEFAULT_TOLERANCE,
                instruction: str | None = None) -> SpaceComparison:
    """Embed the probes with ``embedder`` and raise VectorSpaceMismatchError when any probe is below
    ``tolerance``; returns the comparison when all agree."""
    if embedder.dimension != card.dimension:
        from .errors import DimensionMismatchError

        raise DimensionMismatchError(card.dimension, embedder.dimension, where)
    vectors = embed_probes(embedder, card.instruction if instruction is None else instruction)
    comparison = compare_cards(card, vectors, tolerance)
    if not comparison.same_space:
        raise mismatch_error(card, comparison, embedder, where)
    return comparison
