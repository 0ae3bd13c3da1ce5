"""How stored paths are shown to people (citations, reports, the HTTP API)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies under it, else as is."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def document_id(path: str) -> str:
    """A document's id in the HTTP API and the MCP tools: derived from its stored path, so it stays the same when
    the file is updated."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:16]
