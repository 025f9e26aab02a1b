"""``qwen-embed doctor``: parse the arguments, run ``qwen_embed_adapters.diagnostics``, render the table.

The checks themselves (what is sent, what is judged, the fixes) live in ``diagnostics.py`` so scripts can
run them without the CLI; this module only picks the target (an endpoint or an in-process model), prints
the PASS/WARN/FAIL/SKIP table or ``--json``, and exits 1 when any check FAILs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..diagnostics import FAIL, FIXES, WARN, Check, Diagnosis, diagnose_embedder, diagnose_endpoint


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


def run(args: argparse.Namespace) -> int:
    """Run the checks, print the table; exit 1 when any check FAILs."""
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


__all__ = ["format_table", "run"]
