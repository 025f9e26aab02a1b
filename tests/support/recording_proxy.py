"""An HTTP proxy on 127.0.0.1 that forwards every request to a real server and records it.

For claims about what went over the wire between a client and a real engine (how many requests, which
fields a body held) when neither side can be asked:

    with RecordingProxy("http://127.0.0.1:7997") as proxy:
        RemoteEmbedder(f"{proxy.url}/v1", ...).embed_documents(texts)
        proxy.exchanges   # [Exchange(method, path, body, status)], in arrival order
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Exchange:
    method: str
    path: str
    body: Any  # the parsed JSON body, or None
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class RecordingProxy:
    def __init__(self, upstream: str, *, timeout: float = 120.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=timeout)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                r = proxy._client.request(self.command, proxy.upstream + self.path, content=raw, headers=headers)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with proxy._lock:
                    proxy.exchanges.append(Exchange(self.command, self.path, body, r.status_code))
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in _HOP and k.lower() != "content-encoding":
                        self.send_header(k, v)
                self.send_header("content-length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def posts(self, suffix: str = "") -> list[Exchange]:
        """The POSTs whose path ends with ``suffix``."""
        with self._lock:
            return [e for e in self.exchanges if e.method == "POST" and e.path.endswith(suffix)]

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
