"""One ingest from start to end: find the files, plan what changed, load (here or on Ray), write and commit, and
report. ``RagPipeline`` owns the models; it hands them over as an ``EmbedderSource``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from rag.config import RagConfig
from rag.embed.base import Embedder
from rag.errors import RagError
from rag.index.folder import IndexDir, Writer
from rag.index.policy import Chunking, chunking, index_policy
from rag.index.store import StoredDocument
from rag.ingest.discovery import FoundFile, find_changed, find_files
from rag.ingest.loaders import LoadOptions
from rag.ingest.plan import Changes, DocumentCounts, FilePlan, Item, document_items, is_under, load_items, plan_files
from rag.ingest.writer import AUTO_SAMPLE, WriteOptions, apply, remove_documents
from rag.types import Document, IngestReport, SkippedFile

T = TypeVar("T")


class EmbedderSource(Protocol):
    def for_index(self, manifest: dict[str, Any]) -> Embedder:
        """The embedder an existing index was built with (a different one asked for is refused)."""
        ...

    def for_new_index(self, sample: list[Document]) -> Embedder:
        """The embedder for a new index (``auto`` decides from a sample of its documents)."""
        ...

    def needs_sample(self) -> bool:
        """Whether ``for_new_index`` decides from the documents (``auto``)."""
        ...


class Ingester:
    """Ingests into one index folder with one config."""

    def __init__(self, folder: IndexDir, config: RagConfig, embedders: EmbedderSource) -> None:
        self.folder = folder
        self.config = config
        self.embedders = embedders

    def files(
        self, paths: Iterable[str | Path], *, sync: bool, metadata: dict[str, Any], ray: str | None, ray_workers: int
    ) -> IngestReport:
        t0 = time.perf_counter()
        roots = [Path(p).expanduser() for p in paths]
        files, skipped = find_files(list(roots), follow_symlinks=self.config.ingest.follow_symlinks)
        return self._files(files, skipped, roots, sync=sync, metadata=metadata, ray=ray, ray_workers=ray_workers, t0=t0)

    def changes(
        self, changed: Iterable[str | Path], roots: Iterable[str | Path], *, metadata: dict[str, Any]
    ) -> IngestReport:
        """Ingest what changed at ``changed`` paths under the watched ``roots`` (see ``find_changed``); documents
        at or under a changed path whose file is gone are removed (``sync`` limited to the changed paths)."""
        t0 = time.perf_counter()
        resolved = [Path(r).expanduser().resolve() for r in roots]
        prefixes = [str(r) for r in resolved]
        paths = [Path(os.path.abspath(Path(c).expanduser())) for c in changed]
        in_scope = [p for p in paths if is_under(str(p), prefixes)]
        files, skipped = find_changed(
            in_scope,
            resolved,
            follow_symlinks=self.config.ingest.follow_symlinks,
            exclude=self.folder.path.expanduser().resolve(),
        )
        return self._files(files, skipped, in_scope, sync=True, metadata=metadata, ray=None, ray_workers=0, t0=t0)

    def _files(
        self,
        files: list[FoundFile],
        skipped: list[SkippedFile],
        roots: list[Path],
        *,
        sync: bool,
        metadata: dict[str, Any],
        ray: str | None,
        ray_workers: int,
        t0: float,
    ) -> IngestReport:
        with self.folder.write() as writer:
            base = writer.base_store()
            existing = {d.path: d for d in base.documents()} if base is not None else {}
            todo = plan_files(files, existing, roots, sync=sync, skipped=skipped)
            if todo.empty:
                return self._report(len(files), Changes(), todo.unchanged, skipped, t0, writer.base)
            if writer.base is None and self.embedders.needs_sample():
                todo.todo = spread_first(todo.todo, AUTO_SAMPLE)
            items = self._items(writer, todo, ray, ray_workers)
            changes = self._apply(writer, items, len(todo.todo), todo.gone, skipped, metadata)
        return self._report(len(files), changes, todo.unchanged, skipped, t0)

    def documents(self, documents: Iterable[Document], *, total: int | None, metadata: dict[str, Any]) -> IngestReport:
        t0 = time.perf_counter()
        skipped: list[SkippedFile] = []
        counts = DocumentCounts()
        with self.folder.write() as writer:
            base = writer.base_store()
            existing = {d.path: d for d in base.documents()} if base is not None else {}
            changes = self._apply(writer, document_items(documents, existing, counts), total, [], skipped, metadata)
        return self._report(counts.seen, changes, counts.unchanged, skipped, t0)

    def remove(self, paths: Iterable[str | Path]) -> int:
        targets = [str(Path(p).expanduser().resolve()) for p in paths]
        with self.folder.write() as writer:
            base = writer.base_store()
            if base is None:
                raise RagError(f"no index at {self.folder.path}: nothing to remove")
            doomed = [d for d in base.documents() if is_under(d.path, targets)]
            if doomed:
                remove_documents(writer, doomed, index_policy(self.config.ingest.index_type, writer.base))
        return len(doomed)

    def _load_options(self) -> LoadOptions:
        settings = self.config.ingest
        return LoadOptions(
            ocr=settings.ocr,
            ocr_max_pages=settings.ocr_max_pages,
            ocr_max_seconds=settings.ocr_max_seconds,
            max_rows=settings.max_rows,
        )

    def _items(self, writer: Writer, todo: FilePlan, ray: str | None, workers: int) -> Iterator[Item]:
        max_bytes = int(self.config.ingest.max_file_mb * 1024 * 1024)
        options = self._load_options()
        if ray is None:
            return load_items(todo.todo, max_bytes, todo.skipped, options, todo.attached)
        from rag.ingest.ray import ray_items

        if writer.base is not None:
            embedder = self.embedders.for_index(writer.base)
        elif self.embedders.needs_sample():
            sample = load_items(todo.todo[:AUTO_SAMPLE], max_bytes, [], options)
            embedder = self.embedders.for_new_index([item.doc for item in sample])
        else:
            embedder = self.embedders.for_new_index([])
        return ray_items(
            todo.todo,
            embedder,
            self._chunking(writer, embedder),
            self.config.models,
            max_bytes=max_bytes,
            load_options=options,
            attached=todo.attached,
            quiet=self.config.quiet,
            skipped=todo.skipped,
            address=ray,
            workers=workers,
        )

    def _chunking(self, writer: Writer, embedder: Embedder) -> Chunking:
        settings = self.config.ingest
        return chunking(writer.base, settings.chunk_size, settings.chunk_overlap, embedder.max_tokens, self.folder.path)

    def _apply(
        self,
        writer: Writer,
        items: Iterator[Item],
        total: int | None,
        gone: list[StoredDocument],
        skipped: list[SkippedFile],
        user_meta: dict[str, Any],
    ) -> Changes:
        def embedder_for(sample: list[Document]) -> Embedder:
            if writer.base is not None:
                return self.embedders.for_index(writer.base)
            return self.embedders.for_new_index(sample)

        return apply(
            writer,
            items,
            total=total,
            gone=gone,
            skipped=skipped,
            user_meta=user_meta,
            embedder_for=embedder_for,
            chunking_for=lambda embedder: self._chunking(writer, embedder),
            options=WriteOptions(
                batch_size=self.config.models.batch_size,
                index_policy=index_policy(self.config.ingest.index_type, writer.base),
                quiet=self.config.quiet,
            ),
        )

    def _report(
        self,
        seen: int,
        changes: Changes,
        unchanged: int,
        skipped: list[SkippedFile],
        t0: float,
        manifest: dict[str, Any] | None = None,
    ) -> IngestReport:
        if manifest is None and self.folder.exists():
            manifest = self.folder.read_manifest()
        return IngestReport(
            index=str(self.folder.path),
            files_seen=seen,
            files_added=changes.added,
            files_updated=changes.updated,
            files_unchanged=unchanged,
            files_removed=changes.removed,
            skipped=skipped,
            chunks_added=changes.chunks_added,
            chunks_removed=changes.chunks_removed,
            chunks_embedded=changes.chunks_embedded,
            seconds=time.perf_counter() - t0,
            model=str(manifest.get("embedder", "")) if manifest is not None else "",
            ocr_pages=changes.ocr_pages,
            truncated=list(changes.truncated),
        )


def spread_first(items: list[T], n: int) -> list[T]:
    """``items`` with ``n`` of them, evenly spaced over the list, moved to the front (the rest in order): the
    documents the automatic embedder choice reads (``AUTO_SAMPLE``) then stand for the whole folder, not for its
    first subfolder (a folder of ``en/`` and ``zh/`` docs sampled in path order looked all English)."""
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    picked = sorted({int(i * step) for i in range(n)})
    chosen = set(picked)
    return [items[i] for i in picked] + [item for i, item in enumerate(items) if i not in chosen]
