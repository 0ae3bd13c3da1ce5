"""Loading models by local folder (offline) or hub id (needs a network)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def model_location(spec: str, *, local: bool | None = None) -> Iterator[str]:
    """Yield where to load ``spec`` from. A local folder is loaded with HF_HUB_OFFLINE=1 (restored after),
    so nothing tries the network; anything else is passed on as a hub id."""
    expanded = os.path.expanduser(spec)
    is_local = Path(expanded).is_dir() if local is None else local
    previous = os.environ.get("HF_HUB_OFFLINE")
    if is_local:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield expanded if is_local else spec
    finally:
        if is_local:
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = previous


def cache_dir() -> Path:
    """Where converted models are kept: $RAG_CACHE_DIR, else $XDG_CACHE_HOME/rag, else ~/.cache/rag."""
    env = os.environ.get("RAG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rag"
