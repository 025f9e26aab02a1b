"""A stand-in for an OpenAI-compatible chat endpoint (``POST /v1/chat/completions``), for lightrag-server's LLM.

No chat model can run here, and the test around it is about embeddings. It copies the response shape of
OpenAI's Chat Completions API as the openai SDK parses it (``openai/types/chat/chat_completion.py`` and,
with ``"stream": true``, ``chat_completion_chunk.py`` as ``data:`` server-sent events ending in
``data: [DONE]``), and always answers ``reply``: by default LightRAG's end-of-extraction marker, so that
entity extraction finds nothing and indexing stores the text chunks only. Every request body is kept in
``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ChatStub:
    def __init__(self, reply: str = "<|COMPLETE|>") -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                body = {"object": "list", "data": [{"id": "stub-chat", "object": "model", "owned_by": "test"}]}
                self._send(200, json.dumps(body).encode(), "application/json")

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                req = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append(req)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}', "application/json")
                    return
                base = {"id": "chatcmpl-stub", "created": int(time.time()), "model": req.get("model", "stub-chat")}
                usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
                if req.get("stream"):
                    chunks = [
                        {**base, "object": "chat.completion.chunk", "choices": [
                            {"index": 0, "delta": {"role": "assistant", "content": stub.reply}, "finish_reason": None}]},
                        {**base, "object": "chat.completion.chunk", "choices": [
                            {"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage},
                    ]
                    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
                    self._send(200, body.encode(), "text/event-stream")
                    return
                answer = {**base, "object": "chat.completion", "usage": usage, "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": stub.reply}}]}
                self._send(200, json.dumps(answer).encode(), "application/json")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ChatStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
