"""The space card of a LightRAG working directory: a file beside LightRAG's own storage files.

LightRAG records nothing of the vector space it indexes (NanoVectorDB keeps the width only; Milvus, Qdrant
and PostgreSQL name collections by model name and width, LightRAG #1946). The card (``space.py``: the vectors
of nine probe texts plus model, engine and instruction) goes to ``<working_dir>/[<workspace>/]``
:data:`CARD_FILE`, written by the first process whose embedder meets a directory without one, and checked by
every later process before its first embedding call: another vector space of the same width raises
``VectorSpaceMismatchError`` naming the worst probe.

Two ways in:

- ``ensure_lightrag_space(working_dir, embedder)`` before ``LightRAG(...)``: nothing of LightRAG runs before
  the check, so a mismatch leaves the directory exactly as it was (LightRAG writes its document and status
  stores before it embeds the chunks).
- ``lightrag_embedding_func(embedder, working_dir=...)``: the function itself runs the same check before its
  first call of the process (and before writing anything of its own); LightRAG then fails the insert with
  the error, without storing any vector.
"""

from __future__ import annotations

import logging
import os
import tempfile
import weakref
from pathlib import Path

import numpy as np

from ...embedder import Embedder
from ...errors import ConfigurationError, DimensionMismatchError, VectorSpaceMismatchError
from ...settings import check_choice, check_number
from ...space import DEFAULT_TOLERANCE, SpaceCard, card_from_vectors, compare_cards, mismatch_error
from ..base import SPACE_CHECKS, aprobes_of, probes_of

logger = logging.getLogger(__name__)

#: the card's file name in a working directory (or its workspace folder)
CARD_FILE = "qwen_embed_space_card.json"
# LightRAG's file-based vector storages (NanoVectorDB, Faiss): a folder holding one of these holds vectors.
_VECTOR_FILES = ("vdb_*.json", "faiss_index_*.index")


def lightrag_card_path(working_dir: str | os.PathLike[str], workspace: str = "") -> Path:
    """Where the card of ``working_dir`` (and ``workspace``, as LightRAG's file storages nest it) lives."""
    folder = Path(working_dir) / workspace if workspace else Path(working_dir)
    return folder / CARD_FILE


def _holds_vectors(folder: Path) -> bool:
    return any(any(folder.glob(pattern)) for pattern in _VECTOR_FILES)


class WorkingDirCard:
    """The check of one working directory, for one embedder: once proved, later calls return at once."""

    def __init__(self, working_dir: str | os.PathLike[str], *, workspace: str = "", space_check: str = "adopt",
                 tolerance: float = DEFAULT_TOLERANCE) -> None:
        check_choice("space_check", space_check, SPACE_CHECKS)
        check_number("space_tolerance", tolerance, minimum=-1.0, maximum=1.0)
        self.path = lightrag_card_path(working_dir, workspace)
        self.space_check = space_check
        self.tolerance = tolerance
        self.card: SpaceCard | None = None
        self._proved: weakref.WeakSet[Embedder] = weakref.WeakSet()

    def _read(self) -> SpaceCard | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return SpaceCard.from_json(text)

    def _pending(self, emb: Embedder) -> SpaceCard | None | bool:
        """False when nothing is left to do; else the recorded card (None: none yet)."""
        if self.space_check == "off" or emb in self._proved:
            return False
        card = self._read()
        if card is not None and card.dimension != emb.dimension:
            raise DimensionMismatchError(card.dimension, emb.dimension, os.fspath(self.path.parent),
                                         f"the space card in {CARD_FILE} was made at {card.dimension} dimensions")
        if card is None and self.space_check == "strict" and _holds_vectors(self.path.parent):
            raise VectorSpaceMismatchError(
                os.fspath(self.path.parent), actual_model=emb.model,
                detail=f"the working directory holds LightRAG vectors but no {CARD_FILE}, and space_check='strict' "
                "refuses to adopt one; pass space_check='adopt' to record the current embedder's card",
            )
        return card

    def _judge(self, card: SpaceCard, vectors: np.ndarray, emb: Embedder) -> None:
        comparison = compare_cards(card, vectors, self.tolerance)
        if not comparison.same_space:
            raise mismatch_error(card, comparison, emb, os.fspath(self.path.parent))
        self.card = card
        self._proved.add(emb)

    def _record(self, emb: Embedder, vectors: np.ndarray) -> None:
        card = card_from_vectors(emb, vectors, emb.query_instruction)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # written whole or not at all: a reader never sees half a card
        fd, tmp = tempfile.mkstemp(prefix=".card-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(card.dumps())
        os.replace(tmp, self.path)
        logger.info("%s: recorded the space card of %s (no card was recorded yet)", self.path.parent, emb.model)
        self.card = card
        self._proved.add(emb)

    def prove(self, emb: Embedder) -> None:
        """Check ``emb`` against the recorded card, or record its card when there is none (sync)."""
        state = self._pending(emb)
        if state is False:
            return
        if isinstance(state, SpaceCard):
            self._judge(state, probes_of(emb, state.instruction), emb)
        else:
            self._record(emb, probes_of(emb, emb.query_instruction))

    async def aprove(self, emb: Embedder) -> None:
        """Async twin of :meth:`prove` (the probes go through the embedder's async path)."""
        state = self._pending(emb)
        if state is False:
            return
        if isinstance(state, SpaceCard):
            self._judge(state, await aprobes_of(emb, state.instruction), emb)
        else:
            self._record(emb, await aprobes_of(emb, emb.query_instruction))


def ensure_lightrag_space(
    working_dir: str | os.PathLike[str],
    embedder: Embedder,
    *,
    workspace: str = "",
    space_check: str = "adopt",
    tolerance: float = DEFAULT_TOLERANCE,
) -> SpaceCard | None:
    """Prove that ``embedder`` speaks the vector space of a LightRAG working directory; call it before
    ``LightRAG(...)`` opens the directory.

    With a card recorded (:data:`CARD_FILE`): the probes are embedded (once per process per embedder) and any
    below ``tolerance`` raises ``VectorSpaceMismatchError`` naming the worst probe; another width raises
    ``DimensionMismatchError``. Without one: the card of ``embedder`` is recorded ("adopt"; "strict" refuses a
    directory that already holds NanoVectorDB/Faiss vectors). ``space_check="off"`` does nothing. Returns the
    card checked or recorded (None when off).
    """
    if not isinstance(embedder, Embedder):
        raise ConfigurationError(f"ensure_lightrag_space needs an Embedder, got {type(embedder).__name__}")
    guard = WorkingDirCard(working_dir, workspace=workspace, space_check=space_check, tolerance=tolerance)
    guard.prove(embedder)
    return guard.card


__all__ = ["CARD_FILE", "WorkingDirCard", "ensure_lightrag_space", "lightrag_card_path"]
