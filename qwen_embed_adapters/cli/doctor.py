"""``qwen-embed doctor``: parse the arguments, run ``qwen_embed_adapters.diagnostics``, render the table.

The checks themselves (what is sent, what is judged, the fixes) live in ``diagnostics.py`` so scripts can
run them without the CLI; this module only picks the target (an endpoint or an in-process model), prints
the PASS/WARN/FAIL/SKIP table or ``--json``, and exits 1 when any check FAILs. With ``--store URI`` it
prints the store's space card and each probe's cosine against the current embedder instead (exit 3 when the
embedder gives another vector space).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..diagnostics import (
    FAIL,
    FIXES,
    WARN,
    Check,
    Diagnosis,
    SpaceDiagnosis,
    diagnose_embedder,
    diagnose_endpoint,
    diagnose_store,
)
from ..errors import DimensionMismatchError
from ..space import LIKELY_CAUSES


# ---------------------------------------------------------------------------- the command
def format_table(checks: list[Check]) -> str:
    """The pass/fail table, then one fix line per check that did not pass."""
    w = max(len(c.name) for c in checks)
    lines = [f"{'check':<{w}}  result  detail", f"{'-' * w}  ------  {'-' * 40}"]
    for c in checks:
        lines.append(f"{c.name:<{w}}  {c.status:<6}  {c.detail}")
    fixes = [c for c in checks if c.fix and c.status in (FAIL, WARN)]
    if fixes:
        lines.append("")
        lines.append("how to fix:")
        for c in fixes:
            lines.append(f"  [{c.status}] {c.name}: {c.fix}")
    return "\n".join(lines)


def _check_remote(args: argparse.Namespace) -> Diagnosis:
    key_env = args.api_key_env
    key = os.environ.get(key_env) if key_env else (
        os.environ.get("QWEN_EMBED_API_KEY") or os.environ.get("OPENAI_API_KEY")
    )
    return diagnose_endpoint(args.base_url, args.model or "Qwen3-Embedding-0.6B", api_key=key or None,
                             dimensions=args.dimensions, timeout=args.timeout, norm_samples=args.samples,
                             reference=getattr(args, "reference", None))


def _check_in_process(args: argparse.Namespace) -> Diagnosis:
    from .options import build_embedder

    target = f"in-process model {args.model or 'Qwen/Qwen3-Embedding-0.6B'}"
    try:
        embedder = build_embedder(args)
    except MemoryError:
        return Diagnosis(target, [Check("model loads", FAIL, "out of memory while loading", FIXES["oom"])])
    except Exception as exc:
        return Diagnosis(target, [Check("model loads", FAIL, " ".join(str(exc).split())[:400], FIXES["load"])])
    try:
        return diagnose_embedder(embedder, norm_samples=args.samples, target=target)
    finally:
        embedder.close()


def format_space(found: SpaceDiagnosis) -> str:
    """The store's card, then one line per probe (cosine, PASS/FAIL against the tolerance), then the verdict."""
    lines = [f"qwen-embed doctor: store {found.target}", ""]
    card = found.card
    if card is None:
        lines.append("no space card recorded: the collection is missing or empty, or was written before cards "
                     "(or by other code); the first write through a store records one (docs/space.md)")
        return "\n".join(lines)
    rows = [("model", card.model), ("engine", card.engine + (f" ({card.family})" if card.family else "")),
            ("dimensions", str(card.dimension)), ("instruction", repr(card.instruction)),
            ("normalised", "yes" if card.normalised else "no"), ("created", card.created or "(not recorded)"),
            ("library", card.library_version or "?"), ("fingerprint", card.fingerprint)]
    lines.append("space card")
    lines.extend(f"  {k:<12} {v}" for k, v in rows)
    lines.append("")
    lines.append(f"current embedder: {found.embedder_model} via {found.embedder_engine} "
                 f"({found.embedder_dimension}-d), tolerance {found.tolerance}")
    if found.error:
        lines += ["", f"MISMATCH: {found.error}"]
        return "\n".join(lines)
    w = max(len(n) for n in found.cosines)
    lines += ["", f"{'probe':<{w}}  cosine    result", f"{'-' * w}  --------  ------"]
    for name, cos in found.cosines.items():
        lines.append(f"{name:<{w}}  {cos:8.5f}  {'PASS' if cos >= found.tolerance else 'FAIL'}")
    worst = found.worst
    assert worst is not None
    lines.append("")
    if found.same_space:
        lines.append(f"same space: every probe at or above {found.tolerance} (worst {worst[0]!r}, {worst[1]:.5f})")
    else:
        lines.append(f"MISMATCH: probe {worst[0]!r} at {worst[1]:.5f} < {found.tolerance}: the embedder gives other "
                     f"vectors than the collection holds. Likely causes: {LIKELY_CAUSES}")
    return "\n".join(lines)


def _check_store(args: argparse.Namespace) -> int:
    from ..adapters.spec import parse_store_spec, redact_spec, store_from_spec
    from .options import build_embedder
    from .output import EXIT_MISMATCH, close_quietly

    spec = parse_store_spec(args.store)
    if spec.get("strict_model"):
        # The doctor compares vectors, not names: Chroma's own model-name check would stop it before the card.
        spec["strict_model"] = False
    embedder = build_embedder(args)
    store = None
    try:
        store = store_from_spec(spec, embedder)
        found = diagnose_store(store, tolerance=args.tolerance, target=f"{redact_spec(args.store)} ({store.name})")
    except DimensionMismatchError as exc:
        if not args.json:
            raise  # one `error:` line and exit 3 (cli/output.py)
        print(json.dumps({"target": redact_spec(args.store), "card": None, "same_space": False, "error": str(exc)},
                         ensure_ascii=False))
        return EXIT_MISMATCH
    finally:
        close_quietly(store, embedder)
    if args.json:
        print(json.dumps(found.to_dict(), ensure_ascii=False))
    else:
        print(format_space(found))
    if found.card is None:
        return 1
    return EXIT_MISMATCH if found.mismatch else 0


def run(args: argparse.Namespace) -> int:
    """Run the checks, print the table; exit 1 when any check FAILs. With ``--store``: the store's space
    card and each probe's agreement; exit 3 (``EXIT_MISMATCH``) on another space, 1 without a card."""
    if getattr(args, "store", None):
        return _check_store(args)
    engine = args.engine if args.engine != "auto" else ("remote" if args.base_url else "local")
    if engine == "remote":
        if not args.base_url:
            print("error: --engine remote needs --base-url", file=sys.stderr)
            return 2
        diagnosis = _check_remote(args)
    else:
        diagnosis = _check_in_process(args)
    if args.json:
        print(json.dumps(diagnosis.to_dict(), ensure_ascii=False))
    else:
        family = f" ({diagnosis.engine_family})" if diagnosis.engine_family else ""
        print(f"qwen-embed doctor: {diagnosis.target}{family}\n")
        print(format_table(diagnosis.checks))
    return 1 if diagnosis.failed else 0


__all__ = ["format_space", "format_table", "run"]
