"""Uploads for the HTTP server: safe file names, the uploads folder, and the background ingest jobs that
``POST /documents`` starts (one at a time, through ``RagPipeline.ingest``, the same incremental ingest as the CLI).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from rag.errors import RagError
from rag.text.paths import document_id as document_id  # shared with the MCP tools
from rag.types import IngestReport  # at run time: the API's JobModel is derived from Job (rag.serve.schemas)

if TYPE_CHECKING:
    from rag.pipeline import RagPipeline
    from rag.watch import FolderWatcher

log = logging.getLogger(__name__)

STAGING = ".staging"  # hidden: never walked by an ingest of the uploads folder
MAX_NAME_BYTES = 200


class UploadError(RagError):
    """An uploaded file cannot be accepted (bad name, unsupported type); the client's mistake (HTTP 400)."""


class ShuttingDownError(RagError):
    """The server is stopping and takes no more uploads (HTTP 503)."""


def safe_filename(name: str) -> str:
    """The last component of ``name`` (``/`` and ``\\`` both separate), every character other than a letter, a
    digit, ``.``, ``-``, ``_`` or a space replaced by ``_``, leading and trailing dots and spaces removed (no
    hidden files, no ``..``), at most 200 bytes with the suffix kept. Raises UploadError when nothing is left.
    The result never contains a separator, so ``folder / safe_filename(x)`` is always inside ``folder``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch if ch.isalnum() or ch in "._- " else "_" for ch in base).strip(" .")
    if len(base.encode("utf-8")) > MAX_NAME_BYTES:
        stem, suffix = os.path.splitext(base)
        suffix = suffix[:16]
        while stem and len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
            stem = stem[:-1]
        base = (stem.rstrip(" .") + suffix).strip(" .")
    if not base or set(base) <= {"_"}:
        raise UploadError(f"file name {name!r} has no usable characters; name the file like report.pdf")
    return base


@dataclass(frozen=True)
class Job:
    """An upload being ingested. ``status``: queued, running, done or failed."""

    id: str
    files: list[str]
    created: float
    status: str = "queued"
    started: float | None = None
    finished: float | None = None
    report: IngestReport | None = None
    error: str | None = None
    staged: list[Path] = field(default_factory=list, repr=False)
    metadata: dict[str, str] = field(default_factory=dict, repr=False)


class Uploads:
    """The uploads folder and the one worker thread that ingests uploads, one job at a time.

    ``write_lock`` serialises this server's writes to the index (ingest jobs and deletes), so they never
    meet the index's own writer lock; another process writing at the same time still gets IndexLockedError.
    """

    def __init__(self, pipeline: RagPipeline, folder: Path, *, max_jobs: int = 1000) -> None:
        self.pipeline = pipeline
        self.folder = folder
        self.write_lock = threading.Lock()
        self._max_jobs = max_jobs
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._jobs_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._watchers: list[FolderWatcher] = []

    # -- files ------------------------------------------------------------------------------------------
    def contains(self, path: str | Path) -> bool:
        """Whether ``path`` lies in the uploads folder."""
        try:
            Path(path).resolve().relative_to(self.folder.resolve())
        except ValueError:
            return False
        return True

    def stage(self, files: list[tuple[str, BinaryIO]]) -> tuple[str, list[Path]]:
        """Copy uploaded files (already sanitized names) into a private staging folder; returns the job id
        the folder is named after and the staged paths."""
        job_id = uuid.uuid4().hex
        staging = self.folder / STAGING / job_id
        staging.mkdir(parents=True, exist_ok=False)
        paths: list[Path] = []
        try:
            for name, stream in files:
                target = staging / name
                if target.parent != staging:  # safe_filename guarantees this; checked again all the same
                    raise UploadError(f"file name {name!r} is not allowed")
                with open(target, "xb") as out:
                    shutil.copyfileobj(stream, out, 1 << 20)
                paths.append(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return job_id, paths

    # -- jobs -------------------------------------------------------------------------------------------
    def submit(self, job_id: str, names: list[str], staged: list[Path], metadata: dict[str, str]) -> Job:
        job = Job(id=job_id, files=names, created=time.time(), staged=staged, metadata=metadata)
        with self._jobs_lock:
            if self._closed:
                shutil.rmtree(self.folder / STAGING / job_id, ignore_errors=True)
                raise ShuttingDownError("the server is shutting down; upload again later")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-ingest")
            self._jobs[job.id] = job
            self._evict()
            self._executor.submit(self._run, job.id)
        log.info("upload job %s queued: %s", job.id, ", ".join(names))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._jobs_lock:
            return self._jobs.get(job_id)

    def _update(self, job_id: str, **changes: Any) -> Job:
        with self._jobs_lock:
            job = replace(self._jobs[job_id], **changes)
            self._jobs[job_id] = job
            return job

    def _evict(self) -> None:
        """Forget the oldest finished jobs beyond ``max_jobs`` (queued and running ones are kept)."""
        excess = len(self._jobs) - self._max_jobs
        for job_id in [j.id for j in self._jobs.values() if j.status in ("done", "failed")][: max(excess, 0)]:
            del self._jobs[job_id]

    def _run(self, job_id: str) -> None:
        job = self._update(job_id, status="running", started=time.time())
        staging = self.folder / STAGING / job.id
        try:
            with self.write_lock:
                finals: list[Path] = []
                for staged in job.staged:
                    final = self.folder / staged.name
                    os.replace(staged, final)
                    finals.append(final)
                report = self.pipeline.ingest(finals, metadata=job.metadata)
        except RagError as exc:
            log.warning("upload job %s failed: %s", job.id, exc)
            self._update(job.id, status="failed", error=str(exc), finished=time.time())
        except Exception:
            log.exception("upload job %s failed", job.id)
            self._update(job.id, status="failed", error="internal error (logged on the server)", finished=time.time())
        else:
            log.info("upload job %s done: %d added, %d updated", job.id, report.files_added, report.files_updated)
            self._update(job.id, status="done", report=report, finished=time.time())
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def remove(self, doc_id: str, wait_s: float) -> str | None:
        """Delete the document whose id is ``doc_id`` (and its file when it was uploaded); returns its path,
        or None when no document has that id. Waits up to ``wait_s`` for a running ingest job."""
        from rag.errors import IndexLockedError, IndexNotFoundError

        if not self.write_lock.acquire(timeout=wait_s):
            raise IndexLockedError("an upload is being ingested; try the delete again in a moment")
        try:
            try:
                docs = self.pipeline.documents()
            except IndexNotFoundError:
                return None
            doc = next((d for d in docs if document_id(d.path) == doc_id), None)
            if doc is None:
                return None
            if self.pipeline.remove([doc.path]) == 0:  # a key that is not a file path (ingest_documents)
                raise RagError(f"document {doc.path!r} is not a file; it cannot be removed through the API")
            if self.contains(doc.path):
                with contextlib.suppress(FileNotFoundError):
                    Path(doc.path).unlink()
            return doc.path
        finally:
            self.write_lock.release()

    def watch(self, paths: Sequence[Path]) -> FolderWatcher:
        """Keep ``paths`` in step with the index (``rag serve --watch``) from a background thread: an initial sync,
        then each burst of changes as one ingest, under ``write_lock`` like the upload jobs. Stopped by
        ``close`` after the commit in flight."""
        from rag.watch import FolderWatcher

        watcher = FolderWatcher(self.pipeline, paths, write_lock=self.write_lock)
        self._watchers.append(watcher)
        watcher.start()
        return watcher

    def close(self) -> None:
        """Stop taking jobs; finish the running one, drop the queued ones (marked failed)."""
        for watcher in self._watchers:
            watcher.close()
        with self._jobs_lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        with self._jobs_lock:
            for job_id, job in list(self._jobs.items()):
                if job.status == "queued":
                    self._jobs[job_id] = replace(
                        job, status="failed", error="the server shut down before this upload was ingested"
                    )
                    shutil.rmtree(self.folder / STAGING / job_id, ignore_errors=True)
