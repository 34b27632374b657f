"""A local OpenAI-compatible Chat Completions server (POST /v1/chat/completions) for tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    """What the fake answers next: a status, a message content, or a delay before answering."""

    status: int = 200
    content: str = ""
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def completion(content: str, model: str) -> dict[str, Any]:
    """The Chat Completions response shape (as the OpenAI API reference documents it)."""
    return {
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": 1741183200,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            script.requests.append(body)
            script.headers.append({k.lower(): v for k, v in self.headers.items()})
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found", "type": "invalid_request"}})
                return
            if script.delay_s:
                time.sleep(script.delay_s)
            if script.status == 429:
                error = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}
                self._send(429, {"error": error}, {"retry-after": "20"})
                return
            if script.status != 200:
                self._send(script.status, {"error": {"message": "boom", "type": "server_error"}})
                return
            self._send(200, completion(script.content, str(body.get("model"))))

        def _send(
            self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

    return Handler


@contextmanager
def fake_openai(script: Script) -> Iterator[str]:
    """Serve on 127.0.0.1 on a free port; yields the base URL (".../v1")."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
