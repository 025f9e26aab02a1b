"""A local stand-in for Pinecone's cloud: real HTTP on 127.0.0.1 speaking the routes that the
``pinecone`` 10.x SDK sends, enforcing Pinecone's documented limits and recording every request.

No real Pinecone can run on the CI machines (the service is remote, Pinecone Local is Docker-only),
so the CI tier of the Pinecone tests points the real SDK here. It is not Pinecone: it implements the
REST surface the SDK 10.2 uses for dense vector indexes (API version ``2026-07``) and the rules a
client must respect, so tests can assert exactly what went over the wire.

    with PineconeServer() as srv:
        pc = Pinecone(api_key=srv.api_key, host=srv.host)   # control plane
        pc.create_index(name="docs", dimension=64, metric="cosine", spec=ServerlessSpec("aws", "us-east-1"))
        index = pc.Index(host=pc.describe_index("docs").host)  # data plane: its own port, as in the cloud
        ...
        srv.requests_to("/vectors/upsert")  # every upsert body, parsed, in order

Control plane (``srv.host``): ``POST /indexes`` (create, 2026-07 ``schema``/``deployment`` body),
``GET /indexes``, ``GET /indexes/{name}``, ``DELETE /indexes/{name}``.
Data plane (one port per index, returned as the index ``host``): ``POST /vectors/upsert``,
``POST /query``, ``GET /vectors/fetch``, ``POST /vectors/delete``, ``POST /describe_index_stats``.

Sources: the routes, bodies and the ``X-Pinecone-Api-Version: 2026-07`` header are what the pinecone
10.2.0 SDK sends (pinecone/_internal/constants.py ``CONTROL_PLANE_API_VERSION`` /
``DATA_PLANE_API_VERSION``; tests/integration/test_pinecone_standin.py drives the real SDK against it).
The limits are Pinecone's documented ones: "Pinecone Database limits", operation limits
(https://docs.pinecone.io/reference/api/database-limits/operation-limits: upsert batches of 1,000 records
up to 2 MB, top_k up to 10,000, 1,000 ids per fetch or delete) and the limits page
(https://docs.pinecone.io/docs/limits: dense dimension up to 20,000, at least one non-zero value,
40 KB of metadata per vector, no null metadata values). Index names, id length and the exact error
wording follow the same pages where they give them, and the SDK's own validation otherwise. Not run here:
the real service needs a key (tests/integration/test_pinecone_live.py runs with one), and Pinecone
Local is a Docker image that cannot be pulled here.

Rules enforced (each answers the status and message Pinecone uses, as far as they are documented):
``Api-Key`` header (401), ``X-Pinecone-Api-Version`` (400 when not one of ``api_versions``), strict
JSON (no NaN/Infinity), index names (1-45 of ``[a-z0-9-]``), dimension 1..20,000, metric, duplicate
names (409), at most 1,000 vectors per upsert, at most 2 MB per request (413), vector width equal
to the index dimension ("Vector dimension X does not match the dimension of the index Y"), finite
values, a non-zero vector on cosine indexes, ids of 1-512 ASCII characters, metadata values that
are strings, numbers, booleans or lists of strings, at most 40 KB of metadata per vector, top_k
1..10,000, at most 1,000 ids per fetch/delete.

Sparse-dense records (issue 32's keyword side), as the same pages document them: ``sparseValues`` on an
upsert (``indices`` uint32 without repeats, ``values`` finite float32, equally long, at most 1,000 non-zero
values: https://docs.pinecone.io/docs/limits) are stored with the record and replaced or deleted with it;
``sparseVector`` on a query is accepted only on a ``dotproduct`` index ("Only indexes using the dotproduct
distance metric support querying sparse-dense vectors. Upserting [...] with a different distance metric will
succeed, but querying will return an error", https://docs.pinecone.io/reference/known-limitations), and a
record then scores ``dense . query + sparse . sparse_query`` (https://docs.pinecone.io/guides/search/hybrid-search:
the sparse-dense vector is one vector). A query's dense vector may be all zeros on a dotproduct index (the
hybrid-search page's convex combination at alpha = 0).

Faults: ``srv.fail(route, status=..., message=..., times=1, when=None)`` makes the next matching
requests to ``route`` ("upsert", "query", "fetch", "delete", "describe_index_stats", "create_index",
"describe_index") answer an error; ``when(body)`` narrows which requests match.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

API_VERSION = "2026-07"
MAX_UPSERT_VECTORS = 1000
MAX_REQUEST_BYTES = 2_000_000
MAX_METADATA_BYTES = 40 * 1024
MAX_DIMENSION = 20_000
MAX_TOP_K = 10_000
MAX_IDS_PER_REQUEST = 1000
MAX_SPARSE_VALUES = 1000
DEFAULT_NAMESPACE_KEY = "__default__"
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$")
_METRICS = ("cosine", "euclidean", "dotproduct")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ApiError(Exception):
    """An error answer: HTTP status, Pinecone's error code and message."""

    def __init__(self, status: int, message: str, code: str = "INVALID_ARGUMENT") -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass
class RecordedRequest:
    """One request as it arrived: which plane (``"control"`` or the index name), method, path,
    query parameters, headers (lower-case names), the raw body size and the parsed JSON body."""

    plane: str
    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    size: int
    body: Any
    status: int = 0


@dataclass
class _Fault:
    route: str
    status: int
    message: str
    times: int
    when: Callable[[Any], bool] | None


@dataclass
class StoredIndex:
    """One index: its settings and, per namespace, ``id -> (values, metadata)``."""

    name: str
    dimension: int
    metric: str
    cloud: str
    region: str
    tags: dict[str, str] | None
    deletion_protection: str
    namespaces: dict[str, dict[str, tuple[list[float], dict[str, Any] | None]]] = field(default_factory=dict)
    #: per namespace, id -> sparse values {index: value} of the records that have them
    sparse: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    described: bool = False
    server: _HTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, namespace: str = "") -> int:
        return len(self.namespaces.get(namespace, {}))


class PineconeServer:
    """The local stand-in for Pinecone's control and data planes (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str = "local-test-key",
        api_versions: tuple[str, ...] = (API_VERSION,),
        max_upsert_vectors: int = MAX_UPSERT_VECTORS,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_metadata_bytes: int = MAX_METADATA_BYTES,
    ) -> None:
        self.api_key = api_key
        self.api_versions = api_versions
        self.max_upsert_vectors = max_upsert_vectors
        self.max_request_bytes = max_request_bytes
        self.max_metadata_bytes = max_metadata_bytes
        self.requests: list[RecordedRequest] = []
        self.indexes: dict[str, StoredIndex] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()
        self._control: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def host(self) -> str:
        """The control-plane URL (``http://127.0.0.1:PORT``), for ``Pinecone(host=...)``."""
        assert self._control is not None, "server not started"
        return f"http://127.0.0.1:{self._control.server_address[1]}"

    def start(self) -> PineconeServer:
        self._control = _HTTPServer(("127.0.0.1", 0), self._handler("control"))
        self._thread = threading.Thread(target=self._control.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            servers = [ix.server for ix in self.indexes.values() if ix.server is not None]
        for srv in [self._control, *servers]:
            if srv is not None:
                srv.shutdown()
                srv.server_close()

    def __enter__(self) -> PineconeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test helpers
    def add_index(self, name: str, dimension: int, metric: str = "cosine") -> StoredIndex:
        """Create an index directly (as if made earlier by someone else); returns it."""
        with self._lock:
            ix = StoredIndex(name, dimension, metric, "aws", "us-east-1", None, "disabled", described=True)
            self.indexes[name] = ix
            self._serve_index(ix)
            return ix

    def fail(
        self,
        route: str,
        *,
        status: int = 500,
        message: str = "Internal error",
        times: int = 1,
        when: Callable[[Any], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` (for which ``when(body)`` holds) with an error."""
        with self._lock:
            self._faults.append(_Fault(route, status, message, times, when))

    def requests_to(self, path: str, plane: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path is ``path`` (optionally on one plane), in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path == path and (plane is None or r.plane == plane)]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------------ plumbing
    def _serve_index(self, ix: StoredIndex) -> None:
        ix.server = _HTTPServer(("127.0.0.1", 0), self._handler(ix.name))
        ix.thread = threading.Thread(target=ix.server.serve_forever, args=(0.05,), daemon=True)
        ix.thread.start()

    def _take_fault(self, route: str, body: Any) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.route == route and f.times > 0 and (f.when is None or f.when(body)):
                    f.times -= 1
                    return f
        return None

    def _handler(self, plane: str) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                rec = RecordedRequest(
                    plane=plane,
                    method=method,
                    path=unquote(parts.path),
                    params=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    size=len(raw),
                    body=None,
                )
                with server._lock:
                    server.requests.append(rec)
                try:
                    rec.body = _strict_json(raw) if raw else None
                    status, payload = server._dispatch(plane, method, rec, raw)
                except ApiError as exc:
                    status = exc.status
                    payload = {"error": {"code": exc.code, "message": exc.message}, "status": exc.status}
                rec.status = status
                data = b"" if payload is None else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _dispatch(self, plane: str, method: str, rec: RecordedRequest, raw: bytes) -> tuple[int, Any]:
        if rec.headers.get("api-key") != self.api_key:
            raise ApiError(401, "Invalid API Key", "UNAUTHENTICATED")
        version = rec.headers.get("x-pinecone-api-version")
        if version not in self.api_versions:
            raise ApiError(400, f"Unsupported API version {version!r}; this server speaks {self.api_versions}")
        if len(raw) > self.max_request_bytes:
            raise ApiError(
                413,
                f"Request size {len(raw) / 1e6:.2f}MB exceeds the maximum supported size of "
                f"{self.max_request_bytes / 1e6:g}MB",
                "OUT_OF_RANGE",
            )
        if plane == "control":
            return self._control_plane(method, rec)
        with self._lock:
            ix = self.indexes.get(plane)
        if ix is None:
            raise ApiError(404, f"Index {plane!r} was deleted", "NOT_FOUND")
        return self._data_plane(ix, method, rec)

    def _check_fault(self, route: str, body: Any) -> None:
        fault = self._take_fault(route, body)
        if fault is not None:
            raise ApiError(fault.status, fault.message, "INJECTED")

    # ------------------------------------------------------------------ control plane
    def _control_plane(self, method: str, rec: RecordedRequest) -> tuple[int, Any]:
        path = rec.path.rstrip("/")
        if path == "/indexes" and method == "POST":
            self._check_fault("create_index", rec.body)
            return 201, self._create(rec.body)
        if path == "/indexes" and method == "GET":
            with self._lock:
                return 200, {"indexes": [self._model(ix) for ix in self.indexes.values()]}
        m = re.fullmatch(r"/indexes/([^/]+)", path)
        if m:
            name = m.group(1)
            with self._lock:
                ix = self.indexes.get(name)
                if ix is None:
                    raise ApiError(404, f"Resource {name} not found", "NOT_FOUND")
                if method == "GET":
                    self._check_fault("describe_index", None)
                    ix.described = True
                    return 200, self._model(ix)
                if method == "DELETE":
                    if ix.deletion_protection == "enabled":
                        raise ApiError(403, f"Deletion protection is enabled for index {name!r}", "FORBIDDEN")
                    del self.indexes[name]
                    if ix.server is not None:
                        srv = ix.server
                        threading.Thread(target=lambda: (srv.shutdown(), srv.server_close()), daemon=True).start()
                    return 202, None
        raise ApiError(404, f"No route {method} {rec.path} in the Pinecone stand-in", "NOT_FOUND")

    def _create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        name = body.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ApiError(
                400,
                f"Name {name!r} is invalid: use 1-45 lowercase alphanumeric characters or '-', "
                "starting and ending with an alphanumeric character",
            )
        schema = body.get("schema")
        fields = schema.get("fields") if isinstance(schema, dict) else None
        if not isinstance(fields, dict) or not fields:
            raise ApiError(400, "schema.fields is required and must declare at least one field")
        dense = {k: v for k, v in fields.items() if isinstance(v, dict) and v.get("type") == "dense_vector"}
        if list(dense) != ["_values"] or len(fields) != 1:
            raise ApiError(
                400,
                "this stand-in serves vector indexes only: schema.fields must be exactly "
                "{'_values': {'type': 'dense_vector', ...}}",
            )
        field_spec = dense["_values"]
        dim = field_spec.get("dimension")
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIMENSION:
            raise ApiError(400, f"Dimension must be an integer between 1 and {MAX_DIMENSION}, got {dim!r}")
        metric = field_spec.get("metric", "cosine")
        if metric not in _METRICS:
            raise ApiError(400, f"Metric must be one of {list(_METRICS)}, got {metric!r}")
        deployment = body.get("deployment")
        if not isinstance(deployment, dict) or deployment.get("deployment_type") != "managed":
            raise ApiError(400, "deployment must be {'deployment_type': 'managed', 'cloud': ..., 'region': ...}")
        cloud, region = deployment.get("cloud"), deployment.get("region")
        if cloud not in ("aws", "gcp", "azure") or not isinstance(region, str) or not region:
            raise ApiError(400, f"Invalid cloud/region: {cloud!r}/{region!r}")
        tags = body.get("tags")
        if tags is not None and (
            not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
        ):
            raise ApiError(400, "tags must be an object of string values")
        with self._lock:
            if name in self.indexes:
                raise ApiError(409, f"Resource {name} already exists", "ALREADY_EXISTS")
            ix = StoredIndex(
                name, dim, metric, cloud, region, tags, body.get("deletion_protection") or "disabled"
            )
            self.indexes[name] = ix
            self._serve_index(ix)
            return self._model(ix)

    def _model(self, ix: StoredIndex) -> dict[str, Any]:
        # A new index answers "Initializing" until it has been described once, so clients that wait
        # for readiness are exercised without the test sleeping.
        ready = ix.described
        return {
            "name": ix.name,
            "host": ix.host,
            "status": {"ready": ready, "state": "Ready" if ready else "Initializing"},
            "schema": {
                "fields": {"_values": {"type": "dense_vector", "dimension": ix.dimension, "metric": ix.metric}}
            },
            "deployment": {"deployment_type": "managed", "cloud": ix.cloud, "region": ix.region},
            "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}},
            "deletion_protection": ix.deletion_protection,
            "tags": ix.tags,
        }

    # ------------------------------------------------------------------ data plane
    def _data_plane(self, ix: StoredIndex, method: str, rec: RecordedRequest) -> tuple[int, Any]:
        body = rec.body if rec.body is not None else {}
        if method == "POST" and rec.path == "/vectors/upsert":
            self._check_fault("upsert", body)
            return 200, self._upsert(ix, body)
        if method == "POST" and rec.path == "/query":
            self._check_fault("query", body)
            return 200, self._query(ix, body)
        if method == "GET" and rec.path == "/vectors/fetch":
            self._check_fault("fetch", rec.params)
            return 200, self._fetch(ix, rec.params)
        if method == "POST" and rec.path == "/vectors/delete":
            self._check_fault("delete", body)
            return 200, self._delete(ix, body)
        if method == "POST" and rec.path == "/describe_index_stats":
            self._check_fault("describe_index_stats", body)
            return 200, self._stats(ix, body)
        raise ApiError(404, f"No route {method} {rec.path} in the Pinecone stand-in", "NOT_FOUND")

    def _namespace(self, body: dict[str, Any]) -> str:
        ns = body.get("namespace", "")
        if not isinstance(ns, str):
            raise ApiError(400, f"namespace must be a string, got {type(ns).__name__}")
        return ns

    def _check_values(self, ix: StoredIndex, values: Any, where: str) -> list[float]:
        if not isinstance(values, list):
            raise ApiError(400, f"{where}: values must be a list of numbers")
        if len(values) != ix.dimension:
            raise ApiError(
                400, f"Vector dimension {len(values)} does not match the dimension of the index {ix.dimension}"
            )
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ApiError(400, f"{where}: values must be numbers, got {type(v).__name__}")
        if ix.metric == "cosine" and not any(values):
            raise ApiError(400, f"{where}: dense vectors must contain at least one non-zero value")
        return [float(v) for v in values]

    def _check_sparse(self, sv: Any, where: str) -> dict[int, float] | None:
        if sv is None:
            return None
        if not isinstance(sv, dict) or set(sv) != {"indices", "values"}:
            raise ApiError(400, f"{where}: sparse values must be an object with indices and values")
        indices, values = sv["indices"], sv["values"]
        if not isinstance(indices, list) or not isinstance(values, list) or len(indices) != len(values):
            raise ApiError(400, f"{where}: sparse indices and values must be lists of the same length")
        if len(indices) > MAX_SPARSE_VALUES:
            raise ApiError(400, f"{where}: sparse vectors can contain no more than {MAX_SPARSE_VALUES} non-zero values")
        if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 2**32 for i in indices):
            raise ApiError(400, f"{where}: sparse indices must be unsigned 32-bit integers")
        if len(set(indices)) != len(indices):
            raise ApiError(400, f"{where}: sparse indices must be unique")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
            raise ApiError(400, f"{where}: sparse values must be finite numbers")
        return {int(i): float(v) for i, v in zip(indices, values, strict=True)}

    def _check_metadata(self, metadata: Any, vid: str) -> dict[str, Any] | None:
        if metadata is None:
            return None
        if not isinstance(metadata, dict):
            raise ApiError(400, f"Metadata of vector {vid!r} must be an object")
        for key, value in metadata.items():
            ok = (
                isinstance(value, (str, bool, int, float))
                or (isinstance(value, list) and all(isinstance(x, str) for x in value))
            )
            if not ok:
                raise ApiError(
                    400,
                    f"Metadata value for field {key!r} of vector {vid!r} must be a string, number, "
                    f"boolean or list of strings, got {json.dumps(value)[:60]}",
                )
        size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if size > self.max_metadata_bytes:
            raise ApiError(
                400,
                f"Metadata size is {size} bytes, which exceeds the limit of {self.max_metadata_bytes} "
                f"bytes per vector (vector {vid!r})",
            )
        return metadata

    def _upsert(self, ix: StoredIndex, body: dict[str, Any]) -> dict[str, Any]:
        vectors = body.get("vectors")
        if not isinstance(vectors, list) or not vectors:
            raise ApiError(400, "vectors must be a non-empty list")
        if len(vectors) > self.max_upsert_vectors:
            raise ApiError(
                400,
                f"Batch size {len(vectors)} exceeds the maximum of {self.max_upsert_vectors} vectors per "
                "upsert request",
                "OUT_OF_RANGE",
            )
        ns = self._namespace(body)
        staged: list[tuple[str, list[float], dict[str, Any] | None]] = []
        staged_sparse: dict[str, dict[int, float] | None] = {}
        for i, v in enumerate(vectors):
            if not isinstance(v, dict):
                raise ApiError(400, f"vectors[{i}] must be an object")
            vid = v.get("id")
            if not isinstance(vid, str) or not 1 <= len(vid) <= 512 or not vid.isascii() or "\x00" in vid:
                raise ApiError(400, f"vectors[{i}].id must be 1-512 ASCII characters, got {vid!r:.80}")
            values = self._check_values(ix, v.get("values"), f"vector {vid!r}")
            staged.append((vid, values, self._check_metadata(v.get("metadata"), vid)))
            staged_sparse[vid] = self._check_sparse(v.get("sparseValues"), f"vector {vid!r}")
        with self._lock:  # all or nothing, as one request is one write
            space = ix.namespaces.setdefault(ns, {})
            sparse_space = ix.sparse.setdefault(ns, {})
            for vid, values, meta in staged:
                space[vid] = (values, meta)
                found = staged_sparse[vid]
                if found is None:  # an upsert replaces the whole record
                    sparse_space.pop(vid, None)
                else:
                    sparse_space[vid] = found
        return {"upsertedCount": len(staged)}

    def _query(self, ix: StoredIndex, body: dict[str, Any]) -> dict[str, Any]:
        top_k = body.get("topK")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise ApiError(400, f"topK must be an integer between 1 and {MAX_TOP_K}, got {top_k!r}")
        ns = self._namespace(body)
        with self._lock:
            space = dict(ix.namespaces.get(ns, {}))
            sparse_space = dict(ix.sparse.get(ns, {}))
        sparse_query = self._check_sparse(body.get("sparseVector"), "query sparse vector")
        if sparse_query is not None and ix.metric != "dotproduct":
            raise ApiError(
                400, f"Cannot query index {ix.name!r} with sparse values: only indexes using the dotproduct "
                f"metric support querying sparse-dense vectors, this one uses {ix.metric!r}"
            )
        if ("vector" in body) == ("id" in body):
            raise ApiError(400, "Exactly one of vector or id must be provided")
        if "id" in body:
            if body["id"] not in space:
                return {"matches": [], "namespace": ns, "usage": {"readUnits": 1}}
            query = space[body["id"]][0]
        else:
            query = self._check_values(ix, body["vector"], "query vector")
        flt = body.get("filter")
        if flt is not None and not isinstance(flt, dict):
            raise ApiError(400, "filter must be an object")
        items = [(vid, vals, meta) for vid, (vals, meta) in space.items() if _matches(meta or {}, flt or {})]
        matches: list[dict[str, Any]] = []
        if items:
            mat = np.asarray([vals for _, vals, _ in items], dtype=np.float64)
            q = np.asarray(query, dtype=np.float64)
            if ix.metric == "cosine":
                scores = mat @ q / (np.linalg.norm(mat, axis=1) * np.linalg.norm(q))
                order = np.argsort(-scores, kind="stable")
            elif ix.metric == "dotproduct":
                scores = mat @ q
                if sparse_query is not None:
                    scores = scores + np.asarray([
                        sum(w * sparse_space.get(vid, {}).get(t, 0.0) for t, w in sparse_query.items())
                        for vid, _, _ in items
                    ])
                order = np.argsort(-scores, kind="stable")
            else:  # euclidean: squared distance, smaller is closer
                scores = ((mat - q) ** 2).sum(axis=1)
                order = np.argsort(scores, kind="stable")
            for i in order[:top_k]:
                vid, vals, meta = items[int(i)]
                match: dict[str, Any] = {"id": vid, "score": float(scores[int(i)])}
                match["values"] = vals if body.get("includeValues") else []
                if body.get("includeMetadata") and meta is not None:
                    match["metadata"] = meta
                matches.append(match)
        return {"matches": matches, "namespace": ns, "usage": {"readUnits": 5}}

    def _fetch(self, ix: StoredIndex, params: dict[str, list[str]]) -> dict[str, Any]:
        ids = params.get("ids", [])
        if not ids:
            raise ApiError(400, "ids is required")
        if len(ids) > MAX_IDS_PER_REQUEST:
            raise ApiError(400, f"At most {MAX_IDS_PER_REQUEST} ids per fetch, got {len(ids)}")
        ns = params.get("namespace", [""])[0]
        with self._lock:
            space = ix.namespaces.get(ns, {})
            sparse_space = ix.sparse.get(ns, {})
            found = {
                vid: {"id": vid, "values": space[vid][0], **({"metadata": space[vid][1]} if space[vid][1] else {}),
                      **({"sparseValues": {"indices": list(sparse_space[vid]), "values": list(sparse_space[vid].values())}}
                         if vid in sparse_space else {})}
                for vid in ids
                if vid in space
            }
        return {"vectors": found, "namespace": ns, "usage": {"readUnits": 1}}

    def _delete(self, ix: StoredIndex, body: dict[str, Any]) -> dict[str, Any]:
        ns = self._namespace(body)
        ids, delete_all, flt = body.get("ids"), body.get("deleteAll", False), body.get("filter")
        if sum(x is not None and x is not False for x in (ids, flt)) + bool(delete_all) != 1:
            raise ApiError(400, "Exactly one of ids, deleteAll or filter must be provided")
        with self._lock:
            space = ix.namespaces.get(ns, {})
            if ids is not None:
                if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
                    raise ApiError(400, "ids must be a list of strings")
                if len(ids) > MAX_IDS_PER_REQUEST:
                    raise ApiError(400, f"At most {MAX_IDS_PER_REQUEST} ids per delete, got {len(ids)}")
                for vid in ids:
                    space.pop(vid, None)
            elif delete_all:
                space.clear()
            else:
                for vid in [k for k, (_, meta) in space.items() if _matches(meta or {}, flt)]:
                    del space[vid]
            sparse_space = ix.sparse.get(ns, {})
            for vid in [k for k in sparse_space if k not in space]:
                del sparse_space[vid]
            if ns in ix.namespaces and not ix.namespaces[ns]:
                del ix.namespaces[ns]
        return {}

    def _stats(self, ix: StoredIndex, body: dict[str, Any]) -> dict[str, Any]:
        flt = body.get("filter")
        with self._lock:
            counts = {
                (ns or DEFAULT_NAMESPACE_KEY): sum(1 for _, meta in space.values() if _matches(meta or {}, flt or {}))
                for ns, space in ix.namespaces.items()
            }
        return {
            "namespaces": {ns: {"vectorCount": n} for ns, n in counts.items()},
            "dimension": ix.dimension,
            "indexFullness": 0.0,
            "totalVectorCount": sum(counts.values()),
            "metric": ix.metric,
            "vectorType": "dense",
        }


def _strict_json(raw: bytes) -> Any:
    def refuse(token: str) -> Any:
        raise ApiError(400, f"Invalid JSON: {token} is not a JSON value")

    try:
        return json.loads(raw, parse_constant=refuse)
    except ValueError as exc:
        raise ApiError(400, f"Invalid JSON body: {exc}") from None


def _matches(meta: dict[str, Any], flt: dict[str, Any]) -> bool:
    """Pinecone's metadata filter language: $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or."""
    for key, cond in flt.items():
        if key == "$and":
            if not all(_matches(meta, c) for c in cond):
                return False
        elif key == "$or":
            if not any(_matches(meta, c) for c in cond):
                return False
        elif key.startswith("$"):
            raise ApiError(400, f"Unsupported filter operator at the top level: {key}")
        else:
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            for op, arg in ops.items():
                if not _compare(meta.get(key), key in meta, op, arg):
                    return False
    return True


def _compare(value: Any, present: bool, op: str, arg: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    if op == "$exists":
        return present == bool(arg)
    if not present:
        return op in ("$ne", "$nin")
    if op == "$eq":
        return arg in values
    if op == "$ne":
        return arg not in values
    if op == "$in":
        return any(v in arg for v in values)
    if op == "$nin":
        return not any(v in arg for v in values)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            return False
        return {"$gt": value > arg, "$gte": value >= arg, "$lt": value < arg, "$lte": value <= arg}[op]
    raise ApiError(400, f"Unsupported filter operator {op}")
