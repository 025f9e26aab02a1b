"""The space card check over any place that can keep one string: what the framework wrappers and the plain
Chroma helper use where no ``VectorStore`` stands in between (a langchain-chroma ``Chroma``, a
langchain-milvus ``Milvus``, a LlamaIndex ``ChromaVectorStore``, a collection from
``chroma.get_or_create_collection``).

``prove_card(read, write, embedder, where)`` reads the card (``read()`` gives its JSON text or None); with one,
the embedder's probe vectors (embedded once per process per embedder, shared with the stores) must agree with
it at ``tolerance``, else ``VectorSpaceMismatchError`` naming the worst probe; without one, the embedder's card
is written (``space_check="adopt"``; "strict" refuses when ``holds_data()`` says vectors are there already;
"off" does nothing). The semantics are ``VectorStore.ensure_space``'s (docs/space.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..embedder import Embedder
from ..errors import DimensionMismatchError, VectorSpaceMismatchError
from ..settings import check_choice, check_number
from ..space import DEFAULT_TOLERANCE, SpaceCard, card_from_vectors, compare_cards, mismatch_error
from .base import SPACE_CHECKS, probes_of

logger = logging.getLogger(__name__)


def prove_card(
    read: Callable[[], str | None],
    write: Callable[[str], None],
    embedder: Embedder,
    where: str,
    *,
    space_check: str = "adopt",
    tolerance: float = DEFAULT_TOLERANCE,
    holds_data: Callable[[], bool] | None = None,
) -> SpaceCard | None:
    """Check ``embedder`` against the card ``read()`` gives, or record its card with ``write``; returns the
    card checked or recorded (None when ``space_check="off"``). Raises before anything else is written."""
    check_choice("space_check", space_check, SPACE_CHECKS)
    check_number("space_tolerance", tolerance, minimum=-1.0, maximum=1.0)
    if space_check == "off":
        return None
    text = read()
    if text:
        card = SpaceCard.from_json(text)
        if card.dimension != embedder.dimension:
            raise DimensionMismatchError(card.dimension, embedder.dimension, where,
                                         f"its space card was made at {card.dimension} dimensions")
        comparison = compare_cards(card, probes_of(embedder, card.instruction), tolerance)
        if not comparison.same_space:
            raise mismatch_error(card, comparison, embedder, where)
        return card
    if space_check == "strict" and holds_data is not None and holds_data():
        raise VectorSpaceMismatchError(
            where, actual_model=embedder.model,
            detail="it holds vectors but no space card, and space_check='strict' refuses to adopt one; "
            "pass space_check='adopt' to record the current embedder's card",
        )
    instruction = embedder.query_instruction
    card = card_from_vectors(embedder, probes_of(embedder, instruction), instruction)
    write(card.dumps())
    logger.info("%s: recording the space card of %s (no card was recorded yet)", where, embedder.model)
    return card


__all__ = ["prove_card"]
