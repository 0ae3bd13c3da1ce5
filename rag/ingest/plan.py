"""What an ingest changes: from the files found (or documents given) and the stored documents, the items to add or
replace, the documents gone, and how many are unchanged. Nothing is read beyond stat and content hashes until
``load_items`` loads the files that did change."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.errors import LoaderError
from rag.index.store import StoredDocument
from rag.ingest.discovery import FoundFile, file_hash
from rag.ingest.loaders import load
from rag.text.paths import display_path
from rag.types import Chunk, Document, SkippedFile


@dataclass(frozen=True)
class Item:
    """A document to add or replace: its key (absolute path for files), content hash, stat, old version."""

    key: str
    digest: str
    mtime: float
    size: int
    old: StoredDocument | None
    doc: Document
    # Set when the document was chunked and embedded elsewhere (Ray workers): used as they are.
    chunks: list[Chunk] | None = None
    vectors: np.ndarray | None = None
    language: str | None = None


@dataclass(frozen=True)
class Changes:
    """What one ingest changed (all zero when nothing was committed)."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0


Todo = tuple[FoundFile, str, StoredDocument | None]


@dataclass
class FilePlan:
    """Files that are new or changed (with their content hash and the stored version they replace), documents
    whose files are gone (``sync``), how many are unchanged, and the files that could not be read."""

    todo: list[Todo] = field(default_factory=list)
    gone: list[StoredDocument] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.todo and not self.gone


def plan_files(
    files: list[FoundFile],
    existing: dict[str, StoredDocument],
    roots: list[Path],
    *,
    sync: bool,
    skipped: list[SkippedFile],
) -> FilePlan:
    """Compare ``files`` with the stored documents: size+mtime first, then the content hash."""
    plan = FilePlan(skipped=skipped)
    for found in files:
        old = existing.get(str(found.path))
        if old is not None and old.size == found.size and old.mtime == found.mtime:
            plan.unchanged += 1
            continue
        try:
            digest = file_hash(found.path)
        except OSError as exc:
            skipped.append(SkippedFile(display_path(found.path), (exc.strerror or str(exc)).lower()))
            continue
        if old is not None and old.content_hash == digest:
            plan.unchanged += 1
            continue
        plan.todo.append((found, digest, old))
    if sync:
        prefixes = [str(r.resolve()) for r in roots]
        plan.gone = [d for p, d in existing.items() if is_under(p, prefixes) and not Path(p).exists()]
    return plan


def is_under(path: str, prefixes: list[str]) -> bool:
    """``path`` equals one of ``prefixes`` or lies inside one of those folders."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def load_items(todo: list[Todo], max_bytes: int, skipped: list[SkippedFile]) -> Iterator[Item]:
    """The changed files, loaded one at a time; a file that cannot be read is skipped with its reason."""
    for found, digest, old in todo:
        try:
            doc = load(found.path, max_bytes=max_bytes)
        except LoaderError as exc:
            skipped.append(SkippedFile(display_path(found.path), str(exc)))
            continue
        yield Item(str(found.path), digest, found.mtime, found.size, old, doc)


@dataclass
class DocumentCounts:
    seen: int = 0
    unchanged: int = 0


def document_items(
    documents: Iterable[Document], existing: dict[str, StoredDocument], counts: DocumentCounts
) -> Iterator[Item]:
    """Documents that are not files (``Document.path`` is their key): a key stored with the same text is skipped."""
    for doc in documents:
        counts.seen += 1
        data = doc.text.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        old = existing.get(doc.path)
        if old is not None and old.content_hash == digest:
            counts.unchanged += 1
            continue
        yield Item(doc.path, digest, 0.0, len(data), old, doc)
