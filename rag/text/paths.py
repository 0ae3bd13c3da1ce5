"""How stored paths are shown to people (citations, reports, the HTTP API)."""

from __future__ import annotations

from pathlib import Path


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies under it, else as is."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)
