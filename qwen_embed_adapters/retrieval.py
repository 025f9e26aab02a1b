"""Keyword and hybrid retrieval shared by every store: the tokenizer, reciprocal rank fusion, and the
client-side BM25 index.

- :func:`tokenize` turns text into keyword terms: lowercase words; identifiers kept whole *and* split
  (``snake_case``, ``camelCase``, ``dotted.names``, ``kebab-flags``); numbers and error codes kept;
  Chinese/Japanese runs cut into words with ``jieba`` (a whole sentence is never one term); a tiny stop
  list. The client-side BM25 uses it, and so do native stores that need client-computed terms.
- :class:`Fusion` is reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009):
  ``score(d) = dense_weight / (k + rank_dense(d)) + keyword_weight / (k + rank_keyword(d))`` over the
  ``depth`` best of each side. ``DEFAULT_FUSION`` is what ``search(mode="hybrid")`` uses when given none;
  its values come from ``benchmarks/retrieval_quality.py`` (see docs/retrieval.md).
- :class:`KeywordIndex` is a BM25 index (the ``bm25s`` library) over the tokens of each stored text: a
  write tokenises only the texts it adds, a delete drops ids, and the index is rebuilt from the kept tokens
  (never by re-tokenising the corpus) on the first query after a change. It persists as one JSON-lines file
  beside a store's own files: ``save`` writes it whole, and an index opened with ``journal=`` appends each
  change to it as it happens (``KeywordIndex.load`` replays either).

``jieba`` and ``bm25s`` are the ``hybrid`` extra: ``pip install "qwen-embed-adapters[hybrid]"``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, InvalidInputError, MissingDependencyError
from .settings import Settings, check_int, check_number

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FUSION",
    "MODES",
    "STOP_WORDS",
    "Fusion",
    "KeywordIndex",
    "check_mode",
    "tokenize",
]

#: the retrieval modes of ``VectorStore.search``
MODES = ("dense", "keyword", "hybrid")

#: Words too common to say anything (English function words and the commonest Chinese particles).
#: Deliberately tiny: code words such as ``not``, ``in``, ``is`` or ``none`` stay searchable.
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "of", "on", "or", "the", "this",
    "that", "to", "was", "were", "with", "it", "its",
    "的", "了", "和", "是", "在", "与", "及", "或", "也", "就", "都", "而", "之",
})

# A run of CJK ideographs, kana or Hangul (cut by jieba), or a run of "word" characters possibly joined by
# '.', '_' or '-' (identifiers, dotted names, flags, error codes, version numbers).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_RUN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+(?:[._\-][^\W{_CJK}]+)*")
_CJK_RUN = re.compile(rf"[{_CJK}]")
# camelCase / PascalCase / ACRONYMWord boundaries inside one separator-free ASCII part (digits stay with
# their letters: "E501", "utf8", "sha256" are one term each)
_CAMEL = re.compile(r"[A-Z0-9]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z0-9]+")

_jieba_lock = threading.Lock()
_jieba: Any = None


def _jieba_module() -> Any:
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            try:
                import jieba
            except ImportError:
                raise MissingDependencyError("jieba", "hybrid", "keyword search over Chinese text") from None
            jieba.setLogLevel(logging.WARNING)  # its dictionary load logs at INFO to stderr
            _jieba = jieba
    return _jieba


def _split_identifier(run: str) -> list[str]:
    """The parts of one identifier-like run, lowercase: each piece between '.', '_' and '-', and a
    camelCase piece's words after it."""
    parts: list[str] = []
    for piece in re.split(r"[._\-]+", run):
        if not piece:
            continue
        parts.append(piece.lower())
        words = _CAMEL.findall(piece) if piece.isascii() else []
        if len(words) > 1:
            parts.extend(w.lower() for w in words)
    return parts


def tokenize(text: str) -> list[str]:
    """Keyword terms of ``text``, in order (repeats kept: BM25 counts them).

    >>> tokenize("os.path.joinPath raises ERR_NO_FILE (E501)")
    ['os.path.joinpath', 'os', 'path', 'joinpath', 'join', 'path', 'raises', 'err_no_file', 'err', 'no', 'file', 'e501']

    An identifier gives itself whole, then each dotted/underscored piece, then a camelCase piece's words.
    Chinese is cut into words (``tokenize("向量数据库的混合检索")`` gives ``['向量', '数据库', '混合', '检索']``);
    jieba's dictionary is Chinese, so Japanese kana come out one character per term.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"tokenize needs a str, got {type(text).__name__}")
    out: list[str] = []
    for match in _RUN.finditer(text):
        run = match.group()
        if _CJK_RUN.match(run):
            for word in _jieba_module().lcut(run):
                word = word.strip()
                if word and word not in STOP_WORDS:
                    out.append(word)
            continue
        whole = run.lower()
        if whole not in STOP_WORDS:
            out.append(whole)
        out.extend(p for p in _split_identifier(run) if p != whole and p not in STOP_WORDS)
    return out


def check_mode(mode: Any) -> str:
    """``mode`` of a search: one of :data:`MODES`; ConfigurationError naming the value otherwise."""
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {MODES}, got {mode!r}")
    return str(mode)


# ---------------------------------------------------------------------------------------------- fusion
@dataclass(frozen=True)
class Fusion(Settings):
    """Reciprocal rank fusion of a dense and a keyword ranking.

    ``depth`` candidates are taken from each side; a document scores
    ``dense_weight / (k + dense_rank) + keyword_weight / (k + keyword_rank)`` (ranks from 1, a side that
    did not return it adds nothing). Ties keep the dense order.

    >>> Fusion(dense_weight=1.0, keyword_weight=1.0, k=60).fuse(["a", "b"], ["b", "c"], 3)
    [('b', 0.032522...), ('a', 0.016393...), ('c', 0.016129...)]
    """

    # Defaults measured by benchmarks/retrieval_quality.py (docs/retrieval.md): equal weights with the usual
    # k=60 fell below dense search on docstring queries; a smaller k trusts each side's first places more,
    # and a lighter keyword side keeps dense search's lead where the query is prose.
    dense_weight: float = 1.0
    keyword_weight: float = 0.7
    k: int = 5
    depth: int = 50

    def validate(self) -> None:
        check_number("dense_weight", self.dense_weight, minimum=0.0)
        check_number("keyword_weight", self.keyword_weight, minimum=0.0)
        if self.dense_weight == 0 and self.keyword_weight == 0:
            raise ConfigurationError("Fusion needs dense_weight or keyword_weight above 0, got both 0")
        check_int("k", self.k, minimum=0)
        check_int("depth", self.depth, minimum=1)

    def side_depth(self, top_k: int) -> int:
        """How many candidates to fetch from each side for ``top_k`` results."""
        return max(self.depth, top_k)

    def fuse(self, dense: Sequence[str], keyword: Sequence[str], top_k: int) -> list[tuple[str, float]]:
        """The ``top_k`` best ids of the two rankings (ids best first), with their fused scores."""
        scores: dict[str, float] = {}
        order: dict[str, tuple[int, int]] = {}
        n = len(dense) + len(keyword) + 1
        for rank, doc in enumerate(dense, start=1):
            if doc not in scores:
                scores[doc] = self.dense_weight / (self.k + rank)
                order[doc] = (rank, n)
        for rank, doc in enumerate(keyword, start=1):
            if doc in order and order[doc][1] != n:
                continue  # repeated in the keyword list
            scores[doc] = scores.get(doc, 0.0) + self.keyword_weight / (self.k + rank)
            order[doc] = (order.get(doc, (n, n))[0], rank)
        ranked = sorted(scores, key=lambda d: (-scores[d], order[d]))
        return [(d, scores[d]) for d in ranked[:top_k]]


#: The fusion ``search(mode="hybrid")`` uses when given none: measured by benchmarks/retrieval_quality.py.
DEFAULT_FUSION = Fusion()


# ---------------------------------------------------------------------------------------------- BM25
def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError:
        raise MissingDependencyError("bm25s", "hybrid", "client-side keyword search") from None
    return bm25s


class KeywordIndex:
    """A BM25 index over stored texts, keyed by id (``bm25s``, Lucene's BM25 variant).

    ``add`` tokenises only the texts it is given (re-adding an id replaces it), ``delete`` forgets ids;
    the bm25s index is rebuilt from the kept tokens on the first ``search`` after a change. Thread-safe.

    On disk (``save``, ``journal``): JSON lines, a header ``{"format": 1, "k1": .., "b": ..}`` then
    ``{"add": id, "tokens": [...]}`` and ``{"delete": [ids]}`` records, replayed in order by ``load``.
    Tokens are stored, never texts.
    """

    FORMAT = 1

    def __init__(self, *, k1: float = 1.5, b: float = 0.75, journal: str | os.PathLike[str] | None = None) -> None:
        check_number("k1", k1, minimum=0.0)
        check_number("b", b, minimum=0.0, maximum=1.0)
        self.k1, self.b = float(k1), float(b)
        self._lock = threading.RLock()
        self._tokens: dict[str, list[str]] = {}
        self._index: Any = None
        self._index_ids: list[str] = []
        self._dirty = True
        self.changed = False  # writes since the last save (a store with a directory persists on save)
        #: the file each change is appended to (None: in memory until ``save``)
        self.journal: Path | None = Path(journal) if journal is not None else None
        self._logged = 0  # records in the journal file, to know when compacting it pays

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._tokens

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index ``texts`` under ``ids`` (an id already indexed is replaced)."""
        if len(ids) != len(texts):
            raise InvalidInputError(f"got {len(ids)} ids but {len(texts)} texts")
        self.add_tokens(ids, [tokenize(t) for t in texts])  # tokenised outside the lock: jieba is slow

    def add_tokens(self, ids: Sequence[str], tokens: Iterable[Sequence[str]]) -> None:
        """Index already tokenised texts."""
        with self._lock:
            rows = [(doc_id, list(toks)) for doc_id, toks in zip(ids, tokens, strict=True)]
            for doc_id, toks in rows:
                self._tokens[doc_id] = toks
            self._dirty = self.changed = True
            self._append([{"add": doc_id, "tokens": toks} for doc_id, toks in rows])

    def delete(self, ids: Iterable[str]) -> None:
        """Forget ``ids`` (unknown ids are ignored)."""
        with self._lock:
            gone = [doc_id for doc_id in ids if self._tokens.pop(doc_id, None) is not None]
            if gone:
                self._dirty = self.changed = True
                self._append([{"delete": gone}])

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._dirty = self.changed = True
            if self.journal is not None:
                self.save(self.journal)

    def _append(self, records: list[dict[str, Any]]) -> None:
        if self.journal is None or not records:
            return
        if self._logged > 2 * len(self._tokens) + 1000:
            self.save(self.journal)  # the log has grown well past what it holds: rewrite it whole
            return
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records))
        self._logged += len(records)

    def _build(self) -> None:
        if not self._dirty:
            return
        self._index_ids = list(self._tokens)
        if self._index_ids:
            index = _bm25s().BM25(k1=self.k1, b=self.b)
            index.index([self._tokens[i] for i in self._index_ids], show_progress=False)
            self._index = index
        else:
            self._index = None
        self._dirty = False

    def search(
        self, query: str, top_k: int, allowed: Callable[[str], bool] | None = None
    ) -> list[tuple[str, float]]:
        """The ``top_k`` ids whose texts best match ``query`` by BM25, best first, with their scores; ids
        scoring 0 (no query term) are left out, so fewer than ``top_k`` may come back. ``allowed`` (a
        filter) keeps only the ids it accepts."""
        import numpy as np

        terms = tokenize(query)
        with self._lock:
            self._build()
            index, ids = self._index, self._index_ids
            if index is None or not terms:
                return []
            known = [t for t in terms if t in index.vocab_dict]
            if not known:
                return []
            scores = np.asarray(index.get_scores(known), dtype=np.float64)
        candidates = np.flatnonzero(scores > 0)
        if allowed is not None:
            candidates = np.asarray([i for i in candidates if allowed(ids[i])], dtype=np.int64)
        if len(candidates) > top_k:
            part = np.argpartition(-scores[candidates], top_k - 1)[:top_k]
            candidates = candidates[part]
        ranked = sorted(candidates.tolist(), key=lambda i: (-scores[i], i))
        return [(ids[i], float(scores[i])) for i in ranked]

    # ------------------------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole index (ids and their tokens, not texts) to ``path``, atomically."""
        target = Path(path)
        with self._lock:
            header = {"format": self.FORMAT, "tokenizer": "qwen_embed_adapters.retrieval.tokenize",
                      "k1": self.k1, "b": self.b}
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    for row in [header, *({"add": i, "tokens": t} for i, t in self._tokens.items())]:
                        fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self.changed = False
            if self.journal is not None and target.resolve() == self.journal.resolve():
                self._logged = len(self._tokens)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, journal: bool = False) -> KeywordIndex:
        """The index ``save`` (or a journal) wrote to ``path``; ConfigurationError when the file is not one.
        With ``journal=True`` later changes are appended to the same file."""
        where = str(path)
        try:
            with open(path, encoding="utf-8") as fh:
                lines = [json.loads(line) for line in fh if line.strip()]
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the keyword index {where!r}: {exc}") from None
        header = lines[0] if lines else None
        if not isinstance(header, dict) or header.get("format") != cls.FORMAT:
            raise ConfigurationError(f"{where!r} is not a keyword index of format {cls.FORMAT}")
        index = cls(k1=header["k1"], b=header["b"])
        for row in lines[1:]:
            if "add" in row:
                index._tokens[row["add"]] = list(row["tokens"])
            else:
                for doc_id in row.get("delete", ()):
                    index._tokens.pop(doc_id, None)
        if journal:
            index.journal = Path(path)
            index._logged = len(lines) - 1
        return index
