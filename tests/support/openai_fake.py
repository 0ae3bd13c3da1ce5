"""A small fake OpenAI-compatible chat-completions server for tests: a real HTTP server on 127.0.0.1 (ephemeral
port) in a thread, speaking the protocol streamed (server-sent events) and not.

The first path segment picks the behaviour, so one server serves every scenario:
``{url}/ok/v1`` answers with ``reply(body)``; ``/status-401/v1`` (any code) fails with that status;
``/flaky-N/v1`` fails with 503 N times, then answers; ``/ratelimit/v1`` answers 429 with ``Retry-After: 0``
once, then answers; ``/slow/v1`` waits ``delay`` seconds before answering; ``/stall/v1`` streams one piece
and then waits ``delay`` seconds; ``/garbage/v1`` answers 200 with text that is not JSON;
``/stream-error/v1`` streams an error event.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A numbered passage runs to the next one, the end of the passages or the question (passages keep their lines).
PASSAGE = re.compile(r"^\[(\d+)\] (.*?)(?=\n\n\[\d+\] |\n</passages>|\n\nQuestion:|\Z)", re.MULTILINE | re.DOTALL)


def passages_of(body: dict[str, Any]) -> dict[int, str]:
    """The numbered passages in the user message of a chat request."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return {int(n): text for n, text in PASSAGE.findall(user)}


def copy_first_sentence(body: dict[str, Any]) -> str:
    """A well-behaved 'model': the first sentence of passage [1], cited."""
    passages = passages_of(body)
    if not passages:
        return "The answer is not in the documents."
    body = re.sub(r"^\(.*\)\n", "", passages[1].strip())  # the heading path line, when there is one
    first = re.split(r"(?<=[.!?。！？])\s*", body.strip())[0]
    return f"{first} [1]"


class FakeOpenAI:
    def __init__(self, reply: Callable[[dict[str, Any]], str] = copy_first_sentence, delay: float = 0.8) -> None:
        self.reply = reply
        self.delay = delay
        self.requests: list[dict[str, Any]] = []  # {"path", "headers", "body"} per request, in arrival order
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, scenario: str = "ok") -> str:
        return f"{self.root}/{scenario}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def count(self, scenario: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r["path"].startswith(f"/{scenario}/"))

    def _next(self, scenario: str) -> int:
        with self._lock:
            self._counts[scenario] = self._counts.get(scenario, 0) + 1
            return self._counts[scenario]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                scenario = self.path.strip("/").split("/")[0]
                if not self.path.endswith("/v1/chat/completions"):
                    return self._json(404, {"error": {"message": f"no route {self.path}"}})
                attempt = fake._next(scenario)
                if scenario.startswith("status-"):
                    code = int(scenario.split("-")[1])
                    return self._json(code, {"error": {"message": f"fake failure {code}", "type": "test"}})
                if scenario.startswith("flaky-") and attempt <= int(scenario.split("-")[1]):
                    return self._json(503, {"error": {"message": "overloaded, try again"}})
                if scenario == "ratelimit" and attempt == 1:
                    return self._json(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
                if scenario == "slow":
                    time.sleep(fake.delay)
                if scenario == "garbage":
                    return self._raw(200, b"<html>not json</html>", "text/html")
                text = fake.reply(body)
                if body.get("stream"):
                    return self._stream(text, scenario)
                return self._json(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        ],
                    },
                )

            def _json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._raw(code, json.dumps(payload).encode(), "application/json", headers)

            def _raw(self, code: int, data: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, text: str, scenario: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()  # HTTP/1.0: the body ends when the connection closes
                self.wfile.write(b": keep-alive comment\n\n")
                for i, piece in enumerate(_pieces(text)):
                    chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    if i == 0:
                        chunk["choices"][0]["delta"]["role"] = "assistant"
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                    if scenario == "stall":
                        time.sleep(fake.delay)
                    if scenario == "stream-error":
                        self.wfile.write(b'data: {"error": {"message": "model crashed"}}\n\n')
                        return
                self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n')
                self.wfile.write(b"data: [DONE]\n\n")

        return Handler


def _pieces(text: str) -> Iterator[str]:
    """Word-sized pieces, spaces kept (as a real tokenizer streams)."""
    yield from re.findall(r"\S+\s*|\s+", text)
