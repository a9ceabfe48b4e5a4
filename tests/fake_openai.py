"""A scripted fake OpenAI-compatible HTTP endpoint for unit tests of the LLM client (not a model)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    """Answers POST /v1/chat/completions with queued (status, body) pairs; records the requests."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, str]] = []
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                fake.requests.append(json.loads(self.rfile.read(length) or b"{}"))
                status, body = fake.replies.pop(0) if fake.replies else (500, "no scripted reply")
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply_message(self, content: str | None, tool_calls: list | None = None) -> None:
        message = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        body = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "fake",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }
        self.replies.append((200, json.dumps(body)))

    def reply_raw(self, status: int, body: str) -> None:
        self.replies.append((status, body))

    def close(self) -> None:
        self.server.shutdown()
