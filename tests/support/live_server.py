"""A live uvicorn server for tests: the app on 127.0.0.1 (a port the OS picks) in a thread, stopped on exit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

WAIT_S = 10.0


@contextmanager
def serving(app: Any) -> Iterator[tuple[str, uvicorn.Server, threading.Thread]]:
    """Serve ``app`` (lifespan included) until the block ends; yields its base URL, the server and its thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", server, thread
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` (lifespan included) until the block ends; yields its base URL."""
    with serving(app) as (url, _, _):
        yield url
