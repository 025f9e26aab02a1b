"""The bodies of ``qwen-embed embed``, ``ingest``, ``search`` and ``bench``, and the engine and store
options they share. ``cli.py`` only registers the parsers; ``doctor.py`` and ``demo.py`` hold the rest.

The engine is chosen by flags, then environment: ``--base-url``/``$QWEN_EMBED_BASE_URL`` means a remote
OpenAI-compatible endpoint, otherwise the in-process engine loads ``--model``/``$QWEN_EMBED_MODEL``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from .errors import ConfigurationError, IngestError, InvalidInputError, QwenEmbedError

if TYPE_CHECKING:
    from .adapters.base import Hit, VectorStore
    from .embedder import Embedder

logger = logging.getLogger(__name__)

ENGINES = ("auto", "remote", "local", "fake")
STORES = ("chroma", "milvus", "pinecone")
DEFAULT_URIS = {"milvus": "./qwen_embed.db", "chroma": "./chroma_db"}


# ---------------------------------------------------------------------------- shared options
def add_engine_args(p: argparse.ArgumentParser) -> None:
    """``--base-url``, ``--model``, ``--dimensions`` ... (defaults from ``QWEN_EMBED_*``)."""
    g = p.add_argument_group("embedding engine (--base-url means remote, else in-process)")
    g.add_argument("--base-url", default=os.environ.get("QWEN_EMBED_BASE_URL") or None,
                   help="OpenAI-compatible endpoint, e.g. http://localhost:30000/v1 [$QWEN_EMBED_BASE_URL]")
    g.add_argument("--model", default=os.environ.get("QWEN_EMBED_MODEL") or None,
                   help="model name (remote) or folder/hub id (local) [$QWEN_EMBED_MODEL; "
                        "default Qwen3-Embedding-0.6B]")
    g.add_argument("--dimensions", type=int, default=_env_int("QWEN_EMBED_DIMENSIONS"),
                   help="MRL output size, e.g. 512 [$QWEN_EMBED_DIMENSIONS; default: the model's native size]")
    g.add_argument("--engine", choices=ENGINES, default=os.environ.get("QWEN_EMBED_ENGINE") or "auto",
                   help="force an engine; 'fake' is the deterministic hashing embedder for tests "
                        "[$QWEN_EMBED_ENGINE; default auto]")
    g.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="environment variable holding the endpoint's key "
                        "[default: QWEN_EMBED_API_KEY, then OPENAI_API_KEY]")
    g.add_argument("--device", default="auto", help="local engine: cuda, mps, cpu or auto [auto]")
    g.add_argument("--embed-batch-size", type=int, default=None, metavar="N",
                   help="texts per embedding request/forward pass [remote 64, local 256]")
    g.add_argument("--max-retries", type=int, default=5, help="remote: retries per request [5]")
    g.add_argument("--timeout", type=float, default=60.0, help="remote: seconds per request [60]")


def add_store_args(p: argparse.ArgumentParser) -> None:
    """``--store``, ``--uri``, ``--collection`` and Pinecone's settings."""
    g = p.add_argument_group("vector store")
    g.add_argument("--store", choices=STORES, default=os.environ.get("QWEN_EMBED_STORE") or "milvus",
                   help="which database [$QWEN_EMBED_STORE; default milvus]")
    g.add_argument("--uri", default=None,
                   help="milvus: a Milvus Lite .db path or http://host:19530 [./qwen_embed.db]; "
                        "chroma: a directory or http://host:8000 [./chroma_db]; "
                        "pinecone: optional control-plane host")
    g.add_argument("--collection", default="documents",
                   help="collection (Milvus, Chroma) or index (Pinecone) name [documents]")
    g.add_argument("--namespace", default="", help="pinecone namespace [\"\"]")
    g.add_argument("--pinecone-api-key-env", default="PINECONE_API_KEY", metavar="VAR",
                   help="environment variable with the Pinecone key [PINECONE_API_KEY]")
    g.add_argument("--cloud", default="aws", help="pinecone: cloud of a new serverless index [aws]")
    g.add_argument("--region", default="us-east-1", help="pinecone: region of a new index [us-east-1]")


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"qwen-embed: ${name} must be an integer, got {raw!r}") from None


def build_embedder(args: argparse.Namespace) -> Embedder:
    """The embedder the flags (then environment) ask for."""
    engine = args.engine
    if engine == "auto":
        engine = "remote" if args.base_url else "local"
    batch = args.embed_batch_size
    if engine == "remote":
        if not args.base_url:
            raise ConfigurationError(
                "--engine remote needs --base-url (or $QWEN_EMBED_BASE_URL), e.g. http://localhost:30000/v1"
            )
        from .remote import RemoteEmbedder

        return RemoteEmbedder(
            args.base_url, args.model or "Qwen3-Embedding-0.6B", dimensions=args.dimensions,
            api_key_env=args.api_key_env, batch_size=batch or 64, max_retries=args.max_retries,
            timeout=args.timeout,
        )
    if engine == "fake":
        from .testing import FakeEmbedder

        return FakeEmbedder(args.model or "fake-embedding", dimensions=args.dimensions or 64,
                            batch_size=batch or 64)
    from .local import LocalEmbedder

    return LocalEmbedder(args.model, dimensions=args.dimensions, device=args.device,  # type: ignore[no-any-return]
                         batch_size=batch or 256)


def open_store(args: argparse.Namespace, embedder: Embedder) -> VectorStore:
    """The store the flags name, bound to ``embedder`` (created with its dimension if missing)."""
    uri = args.uri or DEFAULT_URIS.get(args.store)
    if args.store == "milvus":
        from .adapters.milvus import MilvusStore

        return MilvusStore(uri, args.collection, embedder)
    if args.store == "chroma":
        from .adapters.chroma import ChromaStore

        return ChromaStore(_chroma_client(str(uri)), args.collection, embedder)
    from .adapters.pinecone import PineconeStore

    try:
        from pinecone import Pinecone
    except ImportError:
        from .errors import MissingDependencyError

        raise MissingDependencyError("pinecone", "pinecone", "--store pinecone") from None
    key = os.environ.get(args.pinecone_api_key_env, "")
    if not key:
        raise ConfigurationError(
            f"--store pinecone needs an API key in ${args.pinecone_api_key_env} "
            "(or name another variable with --pinecone-api-key-env)"
        )
    pc = Pinecone(api_key=key, host=args.uri) if args.uri else Pinecone(api_key=key)
    return PineconeStore.create(pc, args.collection, embedder, cloud=args.cloud, region=args.region,
                                namespace=args.namespace)


def _chroma_client(uri: str) -> Any:
    try:
        import chromadb
    except ImportError:
        from .errors import MissingDependencyError

        raise MissingDependencyError("chromadb", "chroma", "--store chroma") from None
    if uri.startswith(("http://", "https://")):
        from urllib.parse import urlsplit

        parts = urlsplit(uri)
        return chromadb.HttpClient(host=parts.hostname or "localhost", port=parts.port or 8000,
                                   ssl=parts.scheme == "https")
    return chromadb.PersistentClient(path=uri)


def close_quietly(*things: Any) -> None:
    """Close stores and embedders that have a ``close``; never raise while exiting."""
    for t in things:
        close = getattr(t, "close", None)
        if close is None:
            continue
        try:
            close()
        except Exception as exc:  # closing must not hide the command's own outcome
            logger.debug("closing %r failed: %s", t, exc)


def friendly(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the library's errors into one ``error: ...`` line and exit code 1 (130 on Ctrl-C)."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except QwenEmbedError as exc:  # IngestError included: its message counts what was not written
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except (OSError, ImportError) as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1

    return wrapper


# ---------------------------------------------------------------------------- embed
def _read_lines(src: TextIO) -> Iterator[tuple[str | None, str]]:
    for line in src:
        text = line.rstrip("\r\n")
        if text.strip():
            yield None, text


def _read_jsonl(src: TextIO, name: str) -> Iterator[tuple[str | None, str]]:
    from .ingest import _json_lines

    for lineno, obj in _json_lines(src, name):
        if isinstance(obj, str):
            yield None, obj
        elif isinstance(obj, dict) and isinstance(obj.get("text"), str):
            rid = obj.get("id")
            yield (None if rid is None else str(rid)), obj["text"]
        else:
            raise InvalidInputError(f"{name}:{lineno}: expected a JSON string or an object with 'text'")


def cmd_embed(args: argparse.Namespace) -> int:
    """Embed texts (one per line, or JSONL with "text") from a file or stdin into .npy or JSONL."""
    out_path: Path | None = Path(args.output) if args.output and args.output != "-" else None
    fmt = args.format or ("npy" if out_path is not None and out_path.suffix == ".npy" else "jsonl")
    if fmt == "npy" and out_path is None:
        raise ConfigurationError("--format npy writes a binary file: pass -o FILE.npy")
    src_name = args.input or "-"
    src: TextIO = sys.stdin if src_name == "-" else open(src_name, encoding="utf-8")
    jsonl_in = args.jsonl or src_name.endswith(".jsonl")
    embedder = build_embedder(args)
    try:
        items = _read_jsonl(src, src_name) if jsonl_in else _read_lines(src)
        embed = (
            (lambda t: embedder.embed_queries(t, args.instruction)) if args.query
            else embedder.embed_documents
        )
        n = 0
        if fmt == "npy":
            assert out_path is not None
            parts = [embed([t for _, t in chunk]) for chunk in _chunks(items, 1024)]
            matrix = np.concatenate(parts) if parts else np.empty((0, embedder.dimension), np.float32)
            np.save(out_path, matrix.astype(np.float32, copy=False))
            n = matrix.shape[0]
        else:
            sink: TextIO = sys.stdout if out_path is None else open(out_path, "w", encoding="utf-8")
            try:
                for chunk in _chunks(items, 1024):
                    vectors = embed([t for _, t in chunk])
                    for (rid, _), vec in zip(chunk, vectors, strict=True):
                        row: dict[str, Any] = {"index": n}
                        if rid is not None:
                            row["id"] = rid
                        row["embedding"] = [round(float(x), 7) for x in vec]
                        sink.write(json.dumps(row) + "\n")
                        n += 1
            finally:
                if sink is not sys.stdout:
                    sink.close()
                else:
                    sink.flush()
        if out_path is not None:
            dim = embedder.dimension_if_known
            print(f"wrote {n} embeddings ({dim}-d, float32) to {out_path}", file=sys.stderr)
        return 0
    finally:
        if src is not sys.stdin:
            src.close()
        close_quietly(embedder)


def _chunks(items: Iterator[tuple[str | None, str]], size: int) -> Iterator[list[tuple[str | None, str]]]:
    chunk: list[tuple[str | None, str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---------------------------------------------------------------------------- ingest
def cmd_ingest(args: argparse.Namespace) -> int:
    """Chunk .txt/.md/.jsonl files by paragraphs and ingest them into a store."""
    from .ingest import expand_paths, ingest, iter_file_records

    files = expand_paths(args.paths)
    if not files:
        raise InvalidInputError(f"no .txt/.md/.jsonl files under {', '.join(args.paths)}")
    embedder = build_embedder(args)
    store = None
    try:
        store = open_store(args, embedder)
        records = iter_file_records(files, max_tokens=args.max_tokens)
        try:
            report = ingest(store, records, batch_size=args.batch_size, progress=not args.no_progress)
        except IngestError as exc:
            if args.json and exc.report is not None:
                print(json.dumps({**exc.report.as_dict(), "error": str(exc)}, ensure_ascii=False))
            raise
        if args.json:
            out = report.as_dict()
            out.pop("failed_ids", None)
            print(json.dumps({**out, "count": store.count()}, ensure_ascii=False))
        else:
            print(f"{len(files)} files -> {store.name!r} ({args.store}): {report}; the store now holds "
                  f"{store.count()} records")
        return 0
    finally:
        close_quietly(store, embedder)


# ---------------------------------------------------------------------------- search
def cmd_search(args: argparse.Namespace) -> int:
    """Embed a query and print the store's nearest records."""
    filt = None
    if args.filter:
        try:
            filt = json.loads(args.filter)
        except ValueError as exc:
            raise InvalidInputError(f"--filter must be JSON, e.g. '{{\"lang\": \"zh\"}}': {exc}") from None
    embedder = build_embedder(args)
    store = None
    try:
        store = open_store(args, embedder)
        hits = store.search(args.query, top_k=args.top_k, filter=filt, instruction=args.instruction)
        if args.json:
            for h in hits:
                print(json.dumps({"id": h.id, "score": round(h.score, 6), "text": h.text,
                                  "metadata": h.metadata}, ensure_ascii=False))
        else:
            print(format_hits(hits, width=args.width))
        return 0
    finally:
        close_quietly(store, embedder)


def format_hits(hits: list[Hit], width: int = 100) -> str:
    """A ranked table: rank, score, id, one line of text."""
    if not hits:
        return "(no hits)"
    id_w = min(max(len(h.id) for h in hits), 24)
    lines = [f"{'#':>2}  {'score':>6}  {'id':<{id_w}}  text"]
    for rank, h in enumerate(hits, 1):
        text = " ".join((h.text or "").split())
        if len(text) > width:
            text = text[: width - 1] + "…"
        hid = h.id if len(h.id) <= id_w else h.id[: id_w - 1] + "…"
        lines.append(f"{rank:>2}  {h.score:6.3f}  {hid:<{id_w}}  {text}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    """Embed N texts from the bundled corpus (cycled) and print throughput."""
    from .demo import load_corpus

    corpus = [r["text"] for r in load_corpus()]
    texts = [f"{corpus[i % len(corpus)]} ({i})" for i in range(args.n)]
    embedder = build_embedder(args)
    try:
        embedder.embed_documents(texts[: min(8, len(texts))])  # load / connect / learn the dimension
        rows = []
        for rnd in range(args.rounds):
            t0 = time.perf_counter()
            out = embedder.embed_documents(texts)
            dt = time.perf_counter() - t0
            rows.append((rnd + 1, len(texts), dt, len(texts) / dt if dt > 0 else float("inf")))
        print(f"engine: {embedder!r}")
        print(f"{'round':>5}  {'texts':>6}  {'seconds':>8}  {'texts/s':>9}")
        for r, n, dt, tps in rows:
            print(f"{r:>5}  {n:>6}  {dt:8.2f}  {tps:9.1f}")
        print(f"output: {out.shape[0]} x {out.shape[1]} float32")
        return 0
    finally:
        close_quietly(embedder)
