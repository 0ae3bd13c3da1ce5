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
from rag.ingest.loaders import LoadOptions, container_of, load
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
    # Stored documents removed with this one: the attachments an earlier version of this e-mail had.
    drop: tuple[StoredDocument, ...] = ()


@dataclass(frozen=True)
class Changes:
    """What one ingest changed (all zero when nothing was committed)."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0
    ocr_pages: int = 0
    truncated: tuple[SkippedFile, ...] = ()


Todo = tuple[FoundFile, str, StoredDocument | None]


@dataclass
class FilePlan:
    """Files that are new or changed (with their content hash and the stored version they replace), documents
    whose files are gone (``sync``), how many are unchanged, and the files that could not be read."""

    todo: list[Todo] = field(default_factory=list)
    gone: list[StoredDocument] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    # The stored attachments of each file in ``todo`` (keyed by the file's path): replaced or dropped with it.
    attached: dict[str, list[StoredDocument]] = field(default_factory=dict)

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
    children = attachments_by_container(existing)
    for found, _, _ in plan.todo:
        if str(found.path) in children:
            plan.attached[str(found.path)] = children[str(found.path)]
    if sync:
        prefixes = [str(r.resolve()) for r in roots]
        plan.gone = [d for p, d in existing.items() if is_under(p, prefixes) and not Path(file_of(p)).exists()]
    return plan


def file_of(key: str) -> str:
    """The file a stored key comes from: the e-mail for an attachment's key, else the key itself."""
    return container_of(key) or key


def attachments_by_container(existing: dict[str, StoredDocument]) -> dict[str, list[StoredDocument]]:
    """The stored attachment documents, grouped by the path of the file they came in."""
    out: dict[str, list[StoredDocument]] = {}
    for key, doc in existing.items():
        container = container_of(key)
        if container is not None:
            out.setdefault(container, []).append(doc)
    return out


def is_under(path: str, prefixes: list[str]) -> bool:
    """``path`` (or, for an attachment, the file it came in) equals one of ``prefixes`` or lies inside one of those
    folders."""
    path = file_of(path)
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def load_items(
    todo: list[Todo],
    max_bytes: int,
    skipped: list[SkippedFile],
    options: LoadOptions | None = None,
    attached: dict[str, list[StoredDocument]] | None = None,
) -> Iterator[Item]:
    """The changed files, loaded one at a time; a file that cannot be read is skipped with its reason. An e-mail's
    attachments follow it as items of their own; its earlier attachments are replaced (same name) or dropped."""
    attached = attached or {}
    for found, digest, old in todo:
        try:
            doc = load(found.path, max_bytes=max_bytes, options=options)
        except LoaderError as exc:
            skipped.append(SkippedFile(display_path(found.path), str(exc)))
            continue
        before = {d.path: d for d in attached.get(str(found.path), [])}
        now = {child.path for child in doc.attachments}
        drop = tuple(d for key, d in before.items() if key not in now)
        yield Item(str(found.path), digest, found.mtime, found.size, old, doc, drop=drop)
        skipped.extend(SkippedFile(display_path(s.path), s.reason) for s in doc.skipped)
        for child in doc.attachments:
            data = child.text.encode("utf-8")
            digest = hashlib.sha256(data).hexdigest()
            yield Item(child.path, digest, found.mtime, len(data), before.get(child.path), child)


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
