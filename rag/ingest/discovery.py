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


SKIPPED_FOLDERS = ("__pycache__", "node_modules")


def is_skipped_name(name: str, *, folder: bool) -> bool:
    """Whether a folder walk leaves an entry of this name out: hidden entries, and ``SKIPPED_FOLDERS``."""
    return name.startswith(".") or (folder and name in SKIPPED_FOLDERS)


def find_files(paths: list[str | Path], *, exclude: Path | None = None) -> tuple[list[FoundFile], list[SkippedFile]]:
    """Supported files under ``paths`` (folders walked recursively, hidden entries skipped), sorted, unique.

    Symlinks to files are followed; symlinked folders are not (no loops). Paths that do not exist,
    unsupported suffixes found in folders and unreadable folders are reported as skipped. A folder walk does not
    enter ``exclude`` (absolute, resolved: the index folder, for a watcher).
    """
    found: dict[Path, FoundFile] = {}
    skipped: list[SkippedFile] = []

    def add(path: Path, explicit: bool) -> None:
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
        found.setdefault(resolved, FoundFile(resolved, st.st_size, st.st_mtime))

    def on_error(exc: OSError) -> None:
        skipped.append(SkippedFile(display_path(exc.filename or "?"), "folder cannot be read"))

    for raw in paths:
        root = Path(raw).expanduser()
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, onerror=on_error):
                base = Path(dirpath)
                for name in list(dirnames):
                    if is_skipped_name(name, folder=True) or (exclude is not None and base / name == exclude):
                        dirnames.remove(name)
                    elif (base / name).is_symlink():
                        skipped.append(SkippedFile(display_path(base / name), "symlinked folder (not followed)"))
                dirnames.sort()
                for name in sorted(filenames):
                    if not is_skipped_name(name, folder=False):
                        add(base / name, explicit=False)
        elif root.exists() or root.is_symlink():
            add(root, explicit=True)
        else:
            skipped.append(SkippedFile(str(raw), "no such file or folder"))
    return sorted(found.values(), key=lambda f: str(f.path)), skipped


def find_changed(
    changed: list[Path], roots: list[Path], *, exclude: Path | None = None
) -> tuple[list[FoundFile], list[SkippedFile]]:
    """The files a walk of ``roots`` would find at or under the ``changed`` paths (what a file watcher reports).

    All paths absolute, ``roots`` resolved. A changed path outside every root, inside ``exclude`` (the index
    folder), or with a hidden or skipped component below its root is left out; so is a file of an unsupported
    type. Changed folders are walked; paths that no longer exist are left out (an ingest with ``sync`` limited
    to the changed paths removes their documents).
    """
    wanted: list[Path] = []
    for path in dict.fromkeys(changed):
        if exclude is not None and _within(path, exclude):
            continue
        root = next((r for r in roots if _within(path, r)), None)
        if root is None:
            continue
        parts = path.relative_to(root).parts
        if any(is_skipped_name(part, folder=True) for part in parts[:-1]):
            continue
        if path.is_dir() and not path.is_symlink():
            if not parts or not is_skipped_name(parts[-1], folder=True):
                wanted.append(path)
        elif path.exists() and (not parts or (not is_skipped_name(parts[-1], folder=False) and is_supported(path))):
            wanted.append(path)
    if not wanted:
        return [], []
    return find_files(list(wanted), exclude=exclude)


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents
