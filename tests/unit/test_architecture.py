"""The package's layers, checked: no module imports a higher layer, and no modules import each other in a
circle. Imports inside functions count (a lazy import that dodges a cycle is still one); imports under
``if TYPE_CHECKING:`` count for layering but not for cycles, since they never run. docs/architecture.md
draws the same table."""

from __future__ import annotations

import ast
import functools
import pickle
import subprocess
import sys
from pathlib import Path

import qwen_embed_adapters

PACKAGE = "qwen_embed_adapters"
ROOT = Path(qwen_embed_adapters.__file__).parent

#: lowest first; a module may import its own layer's modules and any lower layer's, never a higher one's.
LAYERS: list[set[str]] = [
    {"errors", "models", "vectors", "_urls", "_http", "http", "settings", "retrieval"},
    {"embedder"},
    {"remote", "local", "rerank", "testing", "space", "cache"},
    {"config"},
    {"adapters", "integrations"},
    {"ingest", "ray"},
    {"diagnostics"},
    {"server", "cli", "testing.contract"},
]
LAYER_OF = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def part_of(module: str) -> str:
    """The part a module belongs to: the longest dotted prefix listed in LAYERS
    (``qwen_embed_adapters.adapters.milvus`` -> ``adapters``; ``...testing.contract`` -> ``testing.contract``,
    the store contract suite, which imports the stores although the rest of ``testing`` sits below them)."""
    if module == PACKAGE:
        return ""
    parts = module.split(".")[1:]
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in LAYER_OF:
            return ".".join(parts[:n])
    return parts[0]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


@functools.cache
def _trees() -> dict[str, ast.Module]:
    """Every module's AST, parsed in a child interpreter and sent back pickled.

    CPython 3.11.7's AST constructor checks a recursion-depth counter that a long pytest process can leave
    skewed (the server's 5,000-deep JSON cases raise RecursionError earlier; other tests leave threads
    behind): "SystemError: AST constructor recursion depth mismatch" (cpython gh-106905). Parsing on a
    fresh thread was not enough (a fresh-ci run still failed); a fresh interpreter has none of that state,
    and unpickling builds the nodes without that constructor.
    """
    code = (
        "import ast, pickle, sys; "
        "pickle.dump({p: ast.parse(open(p, encoding='utf-8').read()) for p in sys.argv[1:]}, sys.stdout.buffer)"
    )
    paths = [str(p) for p in MODULES.values()]
    out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, check=True).stdout
    by_path: dict[str, ast.Module] = pickle.loads(out)  # our own child's output
    return {m: by_path[str(p)] for m, p in MODULES.items()}


def imports_of(module: str) -> list[tuple[str, int, bool]]:
    """(imported package module, line, only under TYPE_CHECKING) for every import anywhere in ``module``."""
    path = MODULES[module]
    tree = _trees()[module]
    typing_only = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for t in targets:
            if t == PACKAGE or t.startswith(PACKAGE + "."):
                while t not in MODULES:  # `import qwen_embed_adapters.adapters.milvus.x` -> the module
                    t = t.rpartition(".")[0]
                found.append((t, node.lineno, node.lineno in typing_only))
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in MODULES if m != PACKAGE and part_of(m) not in LAYER_OF)
    assert not unplaced, f"add these to LAYERS here and to docs/architecture.md: {unplaced}"


def test_no_module_imports_a_higher_layer() -> None:
    upward = []
    for module in MODULES:
        if module == PACKAGE:  # the root re-exports the public API from every layer
            continue
        for target, line, _ in imports_of(module):
            if target == PACKAGE:
                upward.append(f"{module}:{line} imports the package root; import the defining module instead")
            elif LAYER_OF.get(part_of(target), -1) > LAYER_OF.get(part_of(module), 99):
                upward.append(f"{module}:{line} imports {target} (layer {part_of(target)} is above {part_of(module)})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _, typing_only in imports_of(m) if not typing_only and t != m} for m in MODULES}
    cycles = _cycles(graph)
    assert not cycles, "modules importing each other in a circle: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_relative_and_type_checking_imports() -> None:
    """The checks above would pass vacuously if the parser missed imports; pin a few known edges."""
    edges = {(t, typing_only) for t, _, typing_only in imports_of(f"{PACKAGE}.adapters.chroma")}
    assert (f"{PACKAGE}.config", False) in edges and (f"{PACKAGE}.embedder", False) in edges
    spec = {t for t, _, _ in imports_of(f"{PACKAGE}.adapters.spec")}
    assert f"{PACKAGE}.adapters.milvus" in spec  # imported inside a function
    ingest = {(t, typing_only) for t, _, typing_only in imports_of(f"{PACKAGE}.ingest.pipeline")}
    assert (f"{PACKAGE}.adapters.base", True) in ingest
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
