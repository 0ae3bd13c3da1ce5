"""Finding the files to ingest under the paths a user gives."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from rag.ingest.loaders import is_supported
from rag.text.paths import display_path
from rag.types import SkippedFile


@dataclass(frozen=True)
class FoundFile:
    path: Path  # absolute, symlinks resolved
    size: int
    mtime: float


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


OUTSIDE_REASON = "symlink to a target outside the ingested folder (not followed; --follow-symlinks follows it)"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def find_files(
    paths: list[str | Path], *, follow_symlinks: bool = False
) -> tuple[list[FoundFile], list[SkippedFile]]:
    """Supported files under ``paths`` (folders walked recursively, hidden entries skipped), sorted, unique.

    A symlink found in a folder is followed only when its target lies inside that folder (the one given), unless
    ``follow_symlinks``; a file given by name is read wherever its link points. Symlinked folders are not entered
    (their target, when inside, is walked anyway) unless ``follow_symlinks``, and then each real folder once (no
    loops). Paths that do not exist, unsupported suffixes found in folders, links that point outside and unreadable
    folders are reported as skipped.
    """
    found: dict[Path, FoundFile] = {}
    skipped: list[SkippedFile] = []

    def add(path: Path, explicit: bool, root: Path | None) -> None:
        if not explicit and not is_supported(path):
            skipped.append(SkippedFile(display_path(path), f"unsupported file type '{path.suffix or path.name}'"))
            return
        try:
            resolved = path.resolve(strict=True)
            st = resolved.stat()
        except (OSError, RuntimeError) as exc:  # broken link, loop, permission
            reason = "symlink loop" if isinstance(exc, RuntimeError) else (exc.strerror or str(exc)).lower()
            skipped.append(SkippedFile(display_path(path), reason))
            return
        if root is not None and not follow_symlinks and not _inside(resolved, root):
            skipped.append(SkippedFile(display_path(path), OUTSIDE_REASON))
            return
        found.setdefault(resolved, FoundFile(resolved, st.st_size, st.st_mtime))

    def on_error(exc: OSError) -> None:
        skipped.append(SkippedFile(display_path(exc.filename or "?"), "folder cannot be read"))

    for raw in paths:
        root = Path(raw).expanduser()
        if root.is_dir():
            real_root = root.resolve()
            visited = {real_root}
            for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=follow_symlinks):
                base = Path(dirpath)
                for name in list(dirnames):
                    if name.startswith(".") or name in ("__pycache__", "node_modules"):
                        dirnames.remove(name)
                    elif (base / name).is_symlink() and not follow_symlinks:
                        dirnames.remove(name)
                        skipped.append(SkippedFile(display_path(base / name), "symlinked folder (not followed)"))
                    elif follow_symlinks:
                        real = (base / name).resolve()
                        if real in visited:  # a loop, or a folder already walked
                            dirnames.remove(name)
                        visited.add(real)
                dirnames.sort()
                for name in sorted(filenames):
                    if not name.startswith("."):
                        add(base / name, explicit=False, root=real_root)
        elif root.exists() or root.is_symlink():
            add(root, explicit=True, root=None)
        else:
            skipped.append(SkippedFile(str(raw), "no such file or folder"))
    return sorted(found.values(), key=lambda f: str(f.path)), skipped
