"""Helpers for the web page's browser tests: a live server on 127.0.0.1 and Debian's Chromium driven by
Playwright. The browser is the system one (``/usr/bin/chromium``, ``apt-get install chromium``); nothing is
downloaded (never ``playwright install``). ``chromium_or_skip`` gives the reason when either is missing."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

START_S = 10.0
# Headless, and nothing that reaches beyond this machine (no updates, sync, QUIC or background requests).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The system Chromium: ``$RAG_TEST_CHROMIUM``, else ``chromium`` on PATH, else None."""
    explicit = os.environ.get("RAG_TEST_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_or_skip() -> str:
    """The Chromium to drive, or skip the test saying what to install."""
    path = chromium_path()
    if path is None:
        pytest.skip("the browser tests need the system Chromium: apt-get install -y chromium (or RAG_TEST_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the browser tests need Playwright for Python: pip install -e '.[dev]' (no browser download)")
    return path


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a port the OS picks) in a thread; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_S)
        sock.close()
