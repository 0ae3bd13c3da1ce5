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


SKIPPED_FOLDERS = ("__pycache__", "node_modules")


def is_skipped_name(name: str, *, folder: bool) -> bool:
    """Whether a folder walk leaves an entry of this name out: hidden entries, and ``SKIPPED_FOLDERS``."""
    return name.startswith(".") or (folder and name in SKIPPED_FOLDERS)


def find_files(
    paths: list[str | Path],
    *,
    follow_symlinks: bool = False,
    exclude: Path | None = None,
    scope: Path | None = None,
) -> tuple[list[FoundFile], list[SkippedFile]]:
    """Supported files under ``paths`` (folders walked recursively, hidden entries skipped), sorted, unique.

    A symlink found in a folder is followed only when its target lies inside that folder (the one given), unless
    ``follow_symlinks``; a file given by name is read wherever its link points. Symlinked folders are not entered
    (their target, when inside, is walked anyway) unless ``follow_symlinks``, and then each real folder once (no
    loops). Paths that do not exist, unsupported suffixes found in folders, links that point outside and unreadable
    folders are reported as skipped.

    ``scope`` (absolute, resolved; for a watcher): every path given lies in this folder and is treated as found
    by a walk of it: files must be of a supported type, and links must point inside ``scope``. A folder walk does
    not enter ``exclude`` (absolute, resolved: the index folder).
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
            real_root = scope or root.resolve()
            visited = {root.resolve()}
            for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=follow_symlinks):
                base = Path(dirpath)
                for name in list(dirnames):
                    if is_skipped_name(name, folder=True) or (exclude is not None and base / name == exclude):
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
                    if not is_skipped_name(name, folder=False):
                        add(base / name, explicit=False, root=real_root)
        elif root.exists() or root.is_symlink():
            add(root, explicit=scope is None, root=scope)
        else:
            skipped.append(SkippedFile(str(raw), "no such file or folder"))
    return sorted(found.values(), key=lambda f: str(f.path)), skipped


def followed_links(folders: list[Path], exclude: Path | None = None) -> tuple[list[Path], list[Path]]:
    """The targets (resolved) of the symlinks a ``follow_symlinks`` walk of ``folders`` follows out of them: the
    linked folders and the linked files that lie outside every one of ``folders``, nested links included, each
    once. A watcher watches these too, since events under a link's target are reported at the target's path."""
    roots = [f.resolve() for f in folders]
    linked_folders: dict[Path, None] = {}
    linked_files: dict[Path, None] = {}
    visited = set(roots)
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            base = Path(dirpath)
            for name in list(dirnames):
                path = base / name
                real = path.resolve()
                if is_skipped_name(name, folder=True) or real in visited or (exclude is not None and real == exclude):
                    dirnames.remove(name)
                    continue
                visited.add(real)
                if path.is_symlink() and not any(_inside(real, r) for r in roots):
                    linked_folders[real] = None
            for name in filenames:
                path = base / name
                if path.is_symlink() and not is_skipped_name(name, folder=False):
                    real = path.resolve()
                    if real.is_file() and not any(_inside(real, r) for r in [*roots, *linked_folders]):
                        linked_files[real] = None
    return list(linked_folders), list(linked_files)


def find_changed(
    changed: list[Path], roots: list[Path], *, follow_symlinks: bool = False, exclude: Path | None = None
) -> tuple[list[FoundFile], list[SkippedFile]]:
    """The files a walk of ``roots`` would find at or under the ``changed`` paths (what a file watcher reports).

    All paths absolute, ``roots`` resolved. A changed path outside every root, inside ``exclude`` (the index
    folder), or with a hidden or skipped component below its root is left out; so is a file of an unsupported
    type. Changed folders are walked; links follow the rules of a walk of their root (``find_files``); a root that
    is a file is read as a file given by name. Paths that no longer exist are left out (an ingest with ``sync``
    limited to the changed paths removes their documents).
    """
    wanted: dict[Path, list[Path]] = {}
    for path in dict.fromkeys(changed):
        if exclude is not None and _inside(path, exclude):
            continue
        root = next((r for r in roots if _inside(path, r)), None)
        if root is None:
            continue
        parts = path.relative_to(root).parts
        if any(is_skipped_name(part, folder=True) for part in parts[:-1]):
            continue
        if not parts:  # a root itself
            wanted.setdefault(root, []).append(path)
        elif path.is_dir() and not path.is_symlink():
            if not is_skipped_name(parts[-1], folder=True):
                wanted.setdefault(root, []).append(path)
        elif (
            (path.exists() or path.is_symlink()) and not is_skipped_name(parts[-1], folder=False) and is_supported(path)
        ):
            wanted.setdefault(root, []).append(path)
    found: dict[Path, FoundFile] = {}
    skipped: list[SkippedFile] = []
    for root, paths in wanted.items():
        scope = root if root.is_dir() else None
        files, missed = find_files(list(paths), follow_symlinks=follow_symlinks, exclude=exclude, scope=scope)
        for f in files:
            found.setdefault(f.path, f)
        skipped += missed
    return sorted(found.values(), key=lambda f: str(f.path)), skipped
