"""Helpers for the web page's browser tests: a live server on 127.0.0.1 and Debian's Chromium driven by
Playwright. The browser is the system one (``/usr/bin/chromium``, ``apt-get install chromium``); nothing is
downloaded (never ``playwright install``). ``chromium_or_skip`` gives the reason when either is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from live_server import running

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


live_server = running  # one live-server helper for every test (tests/support/live_server.py)

