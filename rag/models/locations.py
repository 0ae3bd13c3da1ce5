"""Where models load from: a local folder (offline, ``local_files_only``) or a hub id (needs a network), and the
cache folder for converted models. Nothing here changes process-wide state such as ``HF_HUB_OFFLINE``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """``path``: what to pass to ``from_pretrained``; ``local``: a folder on disk, loaded with
    ``local_files_only=True`` so nothing tries the network."""

    path: str
    local: bool

    def kwargs(self) -> dict[str, bool]:
        """Keyword arguments for transformers / sentence-transformers loaders."""
        return {"local_files_only": True} if self.local else {}


def model_location(spec: str) -> Location:
    """A local folder when ``spec`` names one (``~`` expanded), else a hub id."""
    expanded = os.path.expanduser(spec)
    if Path(expanded).is_dir():
        return Location(expanded, True)
    return Location(spec, False)


def cache_dir() -> Path:
    """Where converted models are kept: $RAG_CACHE_DIR, else $XDG_CACHE_HOME/rag, else ~/.cache/rag."""
    env = os.environ.get("RAG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rag"
