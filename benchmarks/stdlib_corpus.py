"""A code-search set built from the Python standard library installed on this machine (data no one here wrote).

As in CodeSearchNet (Husain et al., 2019): for each function or method of the stdlib that has a docstring,
the *query* is the first sentence of its docstring and the *document* is the function's source with the
docstring removed; each query has exactly one relevant document (its own function). Test packages, idlelib,
lib2to3, site-packages and generated files are left out; repeated queries or documents (overrides sharing a
docstring, copied helpers) are dropped so that every query has one answer.

A second, identifier-heavy query set comes from the same functions, for the searches dense embeddings are
weak at (names, error codes, flags):

- ``name``: the function's qualified name (``json.decoder.JSONDecoder.raw_decode``), for functions whose
  bare name is unique in the corpus;
- ``usage``: the two rarest distinctive identifiers the function's body uses (non-builtin exception classes,
  UPPER_CASE constants, ``--flag`` strings, error codes such as ``E501``), e.g. ``ENOTDIR FileExistsError``.

Everything is deterministic for one Python version: files are read in sorted order and the sample is drawn
with a fixed seed. ``python benchmarks/stdlib_corpus.py [--quick]`` prints what it built.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import random
import re
import sys
import sysconfig
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Corpus", "Function", "Query", "build_corpus", "stdlib_functions"]

SKIP_DIRS = {"test", "tests", "idle_test", "idlelib", "lib2to3", "site-packages", "dist-packages",
             "__pycache__", "turtledemo", "ensurepip", "pydoc_data", "__phello__"}
SKIP_FILES = {"__main__.py", "this.py", "antigravity.py"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_FLAG = re.compile(r"^--?[a-z][a-z0-9-]{1,30}$")
_CODE = re.compile(r"^[A-Z]{1,5}\d{2,5}$")
_CONST = re.compile(r"^[A-Z][A-Z0-9]*_?[A-Z0-9_]{2,}$")
_BUILTINS = set(dir(builtins))  # ValueError, OSError, ...: too common to single a function out
_EXC = re.compile(r"^[A-Z]\w*(Error|Exception|Warning|Exit|Interrupt)$")


@dataclass(frozen=True)
class Function:
    """One stdlib function: ``qualname`` (module.Class.func), its bare ``name``, the first docstring
    sentence, the source without docstring, and the distinctive identifiers its body uses."""

    qualname: str
    name: str
    sentence: str
    code: str
    identifiers: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    text: str
    relevant: str  # the doc id (the function's qualname) that answers it
    kind: str  # "docstring", "name" or "usage"


@dataclass(frozen=True)
class Corpus:
    """Documents (id -> function source) and two query sets: ``docstring`` and ``identifier``."""

    docs: dict[str, str]
    docstring: list[Query]
    identifier: list[Query]
    python: str


def _first_sentence(doc: str) -> str | None:
    para = doc.strip().split("\n\n")[0]
    text = " ".join(para.split())
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    words = sentence.split()
    if len(words) < 4 or len(sentence) > 300 or sentence.startswith((">>>", "..", ":")):
        return None
    return sentence


def _without_docstring(source_lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    doc_node = node.body[0]
    end = node.end_lineno or node.lineno
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    drop = set(range(doc_node.lineno, (doc_node.end_lineno or doc_node.lineno) + 1))
    lines = [source_lines[i - 1] for i in range(start, end + 1) if i not in drop]
    if len(node.body) < 2 or len(lines) < 3:
        return None  # a docstring and nothing else (or a one-liner): nothing to search for
    indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
    return "\n".join(x[indent:] for x in lines).strip("\n")


def _identifiers(node: ast.AST, name: str) -> set[str]:
    found: set[str] = set()
    for sub in ast.walk(node):
        word = None
        if isinstance(sub, ast.Name):
            word = sub.id
        elif isinstance(sub, ast.Attribute):
            word = sub.attr
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            if _FLAG.match(sub.value) or _CODE.match(sub.value):
                found.add(sub.value)
            continue
        if word and word != name and word not in _BUILTINS and (_EXC.match(word) or _CONST.match(word) or _CODE.match(word)):
            found.add(word)
    return found


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(p in SKIP_DIRS for p in rel[:-1]) or path.name in SKIP_FILES or path.name.startswith("_pydev"):
            continue
        if path.name.startswith("test_") or rel[0].startswith("plat-"):
            continue
        out.append(path)
    return out


def stdlib_functions(root: Path | None = None) -> list[Function]:
    """Every usable function of the stdlib at ``root`` (default: this interpreter's), in file order."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    out: list[Function] = []
    for path in _files(root):
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        _visit(tree, _module_name(path, root), source.splitlines(), out)
    return out


def _visit(node: ast.AST, prefix: str, lines: list[str], out: list[Function]) -> None:
    """Collect the documented functions and methods under ``node`` (not functions nested in functions)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            _visit(child, f"{prefix}.{child.name}", lines, out)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(child, clean=True)
            sentence = _first_sentence(doc) if doc else None
            code = _without_docstring(lines, child) if sentence else None
            if sentence and code:
                idents = tuple(sorted(_identifiers(child, child.name)))
                out.append(Function(f"{prefix}.{child.name}", child.name, sentence, code, idents))


def build_corpus(n: int = 3000, *, n_identifier: int | None = None, seed: int = 13,
                 root: Path | None = None) -> Corpus:
    """``n`` functions sampled with ``seed`` (fewer if the stdlib has fewer): their sources are the
    documents; the docstring set has one query per document, the identifier set ``n_identifier``
    (default n // 3) queries, half ``name`` and half ``usage`` where there are enough of each."""
    funcs = stdlib_functions(root)
    # one answer per query: drop repeated sentences and repeated sources (first occurrence wins)
    seen_q: Counter[str] = Counter(f.sentence.lower() for f in funcs)
    seen_d: Counter[str] = Counter(f.code for f in funcs)
    funcs = [f for f in funcs if seen_q[f.sentence.lower()] == 1 and seen_d[f.code] == 1]
    rng = random.Random(seed)
    sample = rng.sample(funcs, min(n, len(funcs)))
    docs = {f.qualname: f.code for f in sample}
    docstring = [Query(f.sentence, f.qualname, "docstring") for f in sample]

    n_ident = n // 3 if n_identifier is None else n_identifier
    names = Counter(f.name for f in sample)
    doc_freq: Counter[str] = Counter(i for f in sample for i in f.identifiers)
    by_name = [Query(f.qualname, f.qualname, "name") for f in sample
               if names[f.name] == 1 and not f.name.startswith("__")]
    by_usage = []
    usage_seen: Counter[str] = Counter()
    for f in sample:
        if len(f.identifiers) >= 2:
            rare = sorted(f.identifiers, key=lambda i: (doc_freq[i], i))[:2]
            usage_seen[" ".join(rare)] += 1
            by_usage.append((f, " ".join(rare)))
    usage = [Query(text, f.qualname, "usage") for f, text in by_usage if usage_seen[text] == 1]
    half = n_ident // 2
    take_usage = min(len(usage), n_ident - min(half, len(by_name)))
    identifier = by_name[: n_ident - take_usage] + usage[:take_usage]
    version = ".".join(map(str, sys.version_info[:3]))
    return Corpus(docs, docstring, identifier, version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--quick", action="store_true", help="300 functions")
    parser.add_argument("--show", type=int, default=3, help="example queries of each kind to print")
    args = parser.parse_args()
    corpus = build_corpus(300 if args.quick else args.n, seed=args.seed)
    kinds = Counter(q.kind for q in corpus.identifier)
    print(f"Python {corpus.python} stdlib, seed {args.seed}\n")
    print("| set | queries | documents | example |")
    print("|---|---:|---:|---|")
    for label, queries in (("docstring", corpus.docstring), ("identifier: name", [q for q in corpus.identifier if q.kind == "name"]),
                           ("identifier: usage", [q for q in corpus.identifier if q.kind == "usage"])):
        example = queries[0].text.replace("|", "\\|") if queries else ""
        print(f"| {label} | {len(queries)} | {len(corpus.docs)} | `{example[:80]}` |")
    assert sum(kinds.values()) == len(corpus.identifier)
    for q in corpus.identifier[: args.show]:
        print(f"\n{q.kind}: {q.text!r} -> {q.relevant}")


if __name__ == "__main__":
    main()
