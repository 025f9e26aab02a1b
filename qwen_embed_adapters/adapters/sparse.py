"""BM25 term weights as sparse vectors, for engines that score keyword matches by a sparse dot product
(Qdrant's sparse vectors, Pinecone's sparse-dense records).

Terms come from ``retrieval.tokenize`` (identifiers split and kept whole, Chinese cut into words by
jieba), so every store's keyword side reads a text the same way. A term's dimension is a stable 32-bit
hash of its UTF-8 bytes (CRC-32: the same in every process and on every machine; both engines take uint32
indices), so no vocabulary has to be stored anywhere. A document's value for a term is BM25's saturated
term frequency

    tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / AVG_LEN))

with k1 = 1.2, b = 0.75 and a fixed average length of 256 terms: the document half of BM25 that needs
no corpus statistics, as fastembed's ``Qdrant/bm25`` (fastembed/sparse/bm25.py: ``k=1.2, b=0.75,
avg_len=256.0``) and Chroma's ``ChromaBm25EmbeddingFunction`` compute it. A query gives 1.0 per distinct
term. The IDF half comes from the engine where it has one (Qdrant's ``Modifier.IDF``); where it has none
(Pinecone) the score is the sum of the matched terms' saturated frequencies.

>>> indices, values = document_vector("parse_args parses args")
>>> len(indices), sorted(values)[-1] > sorted(values)[0]
(4, True)
"""

from __future__ import annotations

import zlib
from collections import Counter

#: BM25's term-frequency saturation and length normalisation, and the assumed average length (terms)
BM25_K1 = 1.2
BM25_B = 0.75
AVG_LEN = 256.0
#: what a collection records about its keyword side, so a later change of tokenizer or weights is seen
SCHEME = "tokenize-v1/crc32/bm25-tf(k1=1.2,b=0.75,avg_len=256)"


def term_index(term: str) -> int:
    """The sparse dimension of ``term``: CRC-32 of its UTF-8 bytes (a uint32, stable everywhere).

    >>> term_index("parse_args")
    3087733535
    """
    return zlib.crc32(term.encode("utf-8"))


def _terms(text: str) -> list[str]:
    from ..retrieval import tokenize

    return tokenize(text)


def document_vector(text: str, max_terms: int | None = None) -> tuple[list[int], list[float]]:
    """The sparse vector of a stored text: sorted indices and their BM25 term-frequency weights. Terms whose
    hashes collide are counted together. With ``max_terms``, only that many of the heaviest terms are kept
    (ties by index), for engines that cap non-zero values (Pinecone: 1,000)."""
    terms = _terms(text)
    if not terms:
        return [], []
    counts = Counter(term_index(t) for t in terms)
    norm = BM25_K1 * (1.0 - BM25_B + BM25_B * len(terms) / AVG_LEN)
    weights = {i: tf * (BM25_K1 + 1.0) / (tf + norm) for i, tf in counts.items()}
    keep = sorted(weights)
    if max_terms is not None and len(keep) > max_terms:
        keep = sorted(sorted(weights, key=lambda i: (-weights[i], i))[:max_terms])
    return keep, [float(weights[i]) for i in keep]


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """The sparse vector of a query: each distinct term's index, weight 1.0 (empty when the query has no
    keyword terms, e.g. only punctuation or stop words)."""
    indices = sorted({term_index(t) for t in _terms(text)})
    return indices, [1.0] * len(indices)


__all__ = ["AVG_LEN", "BM25_B", "BM25_K1", "SCHEME", "document_vector", "query_vector", "term_index"]
