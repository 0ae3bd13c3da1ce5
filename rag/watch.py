"""Keep an index in step with folders as files change: ``rag watch`` and ``rag serve --watch``.

``FolderWatcher`` runs one loop: an initial sync of the watched paths (``RagPipeline.ingest_changes(roots,
roots)``: new and changed files ingested, documents whose files are gone removed), then, for each batch of file
system events, one ``ingest_changes`` of the paths that changed, so a burst of saves becomes one commit.
Events come from ``watchfiles`` (inotify, FSEvents, ...; polling with ``force_polling``), grouped until nothing
has changed for ``quiet_ms`` (at most ``max_wait_ms``). Editors' temporary and swap files, hidden entries (``.git``)
and the index folder never start an ingest; the pipeline decides what a changed path means (the same rules as a
folder walk of ``rag ingest``).

Readers are never blocked: each commit is a new generation of the index, switched in with one rename, and a
``RagPipeline`` reopens its snapshot when the manifest changes. A stop (``stop()``, the ``stop`` event, Ctrl-C or
SIGTERM in the CLI) takes effect between commits: the commit in flight completes; changes not yet applied are
picked up by the next start's initial sync. A file that cannot be read is reported once per version (size and
modification time), not at every batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import IndexLockedError, RagError
from rag.text.paths import display_path
from rag.types import IngestReport

if TYPE_CHECKING:
    from rag.pipeline import RagPipeline

log = logging.getLogger(__name__)

# Names (the last path component) of editors' and downloaders' temporary files: never a reason to ingest.
EDITOR_TEMP_NAMES = re.compile(
    r"""(
        \.sw[a-p]$ | \.sw[px]x?$ | \.kate-swp$       # vim swap files (.swp, .swo, ...), kate
      | ~$ | ^\.\# | ^\#.*\#$                         # backups (vim, emacs, gedit), emacs locks and auto-saves
      | ^4913$                                        # vim's test write before a save
      | \.(tmp|temp|part|partial|crdownload|download)$ # temp files and unfinished downloads
      | ___jb_(tmp|old|bak)___$                       # JetBrains safe write
      | ^~\$ | ^\.~lock\.                              # MS Office owner files, LibreOffice locks
      | ^\.goutputstream- | ^\.DS_Store$              # GNOME safe write, macOS folder metadata
    )""",
    re.VERBOSE | re.IGNORECASE,
)
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules"})  # as the folder walk of rag.ingest.discovery


def is_temporary(name: str) -> bool:
    """Whether a file named ``name`` is an editor's temporary, swap, lock or backup file."""
    return bool(EDITOR_TEMP_NAMES.search(name))


class WatchError(RagError):
    """A path cannot be watched (missing, inside the index folder) or the file system watcher failed."""


class WatchFilter:
    """Which file system events can change the index: those at a watched file, or under a watched folder with no
    hidden (``.git``) or skipped component below it and not an editor's temporary file; never in the index folder.
    Absolute, resolved paths throughout. Called from the watcher threads (pure)."""

    def __init__(self, folders: Sequence[Path], files: Sequence[Path], exclude: Path) -> None:
        self.folders = tuple(folders)
        self.files = frozenset(str(f) for f in files)
        self.exclude = exclude

    def __call__(self, change: object, path: str) -> bool:
        if path in self.files:
            return True
        p = Path(path)
        if p == self.exclude or self.exclude in p.parents:
            return False
        for folder in self.folders:
            if p == folder:
                return True
            if folder in p.parents:
                parts = p.relative_to(folder).parts
                if any(part.startswith(".") or part in SKIPPED_FOLDERS for part in parts):
                    return False
                return not is_temporary(parts[-1])
        return False


def resolve_roots(paths: Iterable[str | Path], index: Path) -> list[Path]:
    """The watched paths, absolute and resolved; a WatchError names a path that does not exist or lies in the
    index folder."""
    roots: list[Path] = []
    index = index.expanduser().resolve()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise WatchError(f"cannot watch {raw}: no such file or folder; create it or fix the path")
        root = path.resolve()
        if root == index or index in root.parents:
            raise WatchError(f"cannot watch {raw}: it is inside the index folder {index}; watch your documents")
        if root not in roots:
            roots.append(root)
    if not roots:
        raise WatchError("nothing to watch: name one or more files or folders")
    return roots


class FolderWatcher:
    """Watches files and folders and applies their changes to ``pipeline``'s index until stopped.

    ``run()`` blocks (the CLI calls it in the main thread); ``start()`` runs it in a background thread (the HTTP
    server) and ``close()`` stops it after the commit in flight. ``stop``: an event that ends the loop when set
    (default: a new one, ``self.stop_event``). ``write_lock``: held around every ingest, so other writers in this
    process (the server's upload jobs) take turns with the watcher instead of meeting the index's writer lock.
    ``on_report``: called with every ingest's report (the initial sync's too, also when nothing changed).
    ``ready`` is set once the initial sync is done and changes are being watched.
    """

    def __init__(
        self,
        pipeline: RagPipeline,
        paths: Iterable[str | Path],
        *,
        stop: threading.Event | None = None,
        write_lock: AbstractContextManager[Any] | None = None,
        metadata: dict[str, Any] | None = None,
        quiet_ms: int = 200,
        max_wait_ms: int = 2000,
        retry_s: float = 1.0,
        force_polling: bool | None = None,
        on_report: Callable[[IngestReport], None] | None = None,
    ) -> None:
        if quiet_ms < 1 or max_wait_ms < quiet_ms:
            raise WatchError(f"quiet_ms={quiet_ms} must be at least 1 and max_wait_ms={max_wait_ms} at least that")
        self.pipeline = pipeline
        self.index = pipeline.index_path.expanduser().resolve()
        self.roots = resolve_roots(paths, self.index)
        self.stop_event = stop or threading.Event()
        self.ready = threading.Event()
        self.write_lock = write_lock
        self.metadata = dict(metadata or {})
        self.quiet_ms = quiet_ms
        self.max_wait_ms = max_wait_ms
        self.retry_s = retry_s
        self.force_polling = force_polling
        self.on_report = on_report
        self.commits = 0  # ingests that changed the index
        self.error: BaseException | None = None  # what ended a background run, if it failed
        folders = [r for r in self.roots if r.is_dir()]
        files = [r for r in self.roots if not r.is_dir()]
        self.scopes = list(self.roots)  # where a changed path may lie: the roots, and followed links' targets
        linked_folders, linked_files = pipeline.followed_links(folders)  # their events come at the targets' paths
        folders += linked_folders
        files += linked_files
        self.scopes += linked_folders + linked_files
        self.filter = WatchFilter(folders, files, self.index)
        # A watched file is watched through its folder, not recursively: editors replace files by renaming a new
        # one over them, and a watch on the file itself would follow the old inode.
        self._sources: list[tuple[list[Path], bool]] = []
        if folders:
            self._sources.append((folders, True))
        parents = list(dict.fromkeys(f.parent for f in files))
        if parents:
            self._sources.append((parents, False))
        self._events: queue.Queue[set[tuple[Any, str]]] = queue.Queue()
        self._failures: list[BaseException] = []
        self._halt = threading.Event()  # stops the event collectors when run() ends
        self._reported: dict[str, tuple[str, tuple[int, int] | None]] = {}
        self._gone_roots: set[Path] = set()
        self._thread: threading.Thread | None = None

    # -- control ------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end; it does after the commit in flight (thread-safe, signal-handler safe)."""
        self.stop_event.set()

    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread; an error that ends it is logged and kept in ``error``."""
        if self._thread is not None:
            raise RuntimeError("this watcher was started already")

        def target() -> None:
            try:
                self.run()
            except RagError as exc:
                self.error = exc
                log.error("watching stopped: %s", exc)
            except Exception as exc:
                self.error = exc
                log.exception("watching stopped by an unexpected error")
            finally:
                self.ready.set()  # nobody waits forever for a watcher that ended

        self._thread = threading.Thread(target=target, name="rag-watch", daemon=True)
        self._thread.start()
        return self._thread

    @property
    def running(self) -> bool:
        """Whether the background loop (``start``) is still running."""
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float | None = None) -> None:
        """Stop and wait for a background loop (``start``) to end: after the commit in flight."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the loop -----------------------------------------------------------------------------------------
    def run(self) -> None:
        """Initial sync, then apply each batch of changes until ``stop_event`` is set. Raises RagError when the
        initial sync fails (a model mismatch, an unreadable index...) or watching fails. While another process
        writes the index, the sync and later changes wait and are retried every ``retry_s``."""
        started = [threading.Event() for _ in self._sources]
        collectors = [
            threading.Thread(target=self._collect, args=(paths, recursive, event), name="rag-watch-events")
            for (paths, recursive), event in zip(self._sources, started, strict=True)
        ]
        try:
            for thread in collectors:
                thread.start()
            while not all(e.is_set() for e in started) and not self.stop_event.is_set():
                time.sleep(0.01)  # until every collector watches: changes made from now on are seen
            self._raise_failure()
            if self.stop_event.is_set():
                return
            if not self._initial_sync():
                return
            self.ready.set()
            log.info("watching %s for changes", ", ".join(display_path(r) for r in self.roots))
            self._loop()
        finally:
            self._halt.set()
            for thread in collectors:
                if thread.ident is not None:
                    thread.join()

    def _initial_sync(self) -> bool:
        """The full sync of the roots, waiting while another process writes the index; False if stopped first."""
        waiting = False
        while True:
            try:
                self._apply([str(r) for r in self.scopes], initial=True)
                return True
            except IndexLockedError as exc:
                if not waiting:
                    log.warning("%s; the watcher waits and retries every %.0f s", exc, self.retry_s)
                waiting = True
                if self.stop_event.wait(self.retry_s):
                    return False

    def _loop(self) -> None:
        pending: set[str] = set()
        retry_at = 0.0
        locked = False
        while not self.stop_event.is_set():
            self._raise_failure()
            with contextlib.suppress(queue.Empty):
                pending.update(path for _, path in self._events.get(timeout=0.1))
            with contextlib.suppress(queue.Empty):
                while True:
                    pending.update(path for _, path in self._events.get_nowait())
            if not pending or time.monotonic() < retry_at or self.stop_event.is_set():
                continue
            try:
                self._apply(sorted(pending))
            except IndexLockedError as exc:  # another process is writing: keep the changes, try again soon
                retry_at = time.monotonic() + self.retry_s
                if not locked:
                    log.warning("%s; the watcher retries every %.0f s", exc, self.retry_s)
                locked = True
                continue
            except RagError as exc:  # e.g. a settings clash: these changes cannot be applied, later ones may
                log.error("changes to %s not applied: %s", _some(pending), exc)
            except Exception:
                log.exception("changes to %s not applied (unexpected error)", _some(pending))
            if locked:
                log.info("the index is free again; changes applied")
                locked = False
            pending.clear()

    def _raise_failure(self) -> None:
        if self._failures:
            exc = self._failures[0]
            raise _watch_error(exc) from exc

    def _collect(self, paths: list[Path], recursive: bool, started: threading.Event) -> None:
        """Feed batches of filtered events into the queue until ``_halt`` (one thread per kind of watch)."""
        from watchfiles import watch

        try:
            for changes in watch(
                *paths,
                watch_filter=self.filter,
                debounce=self.max_wait_ms,
                step=self.quiet_ms,
                stop_event=self._halt,
                rust_timeout=200,
                yield_on_timeout=True,  # the first (empty) yield says the watch is in place
                raise_interrupt=False,
                recursive=recursive,
                force_polling=self.force_polling,
            ):
                started.set()
                if changes:
                    self._events.put(changes)
        except Exception as exc:  # noqa: BLE001 - kept for the loop, which raises it as a WatchError
            self._failures.append(exc)
        finally:
            started.set()

    # -- applying -----------------------------------------------------------------------------------------
    def _apply(self, changed: list[str], *, initial: bool = False) -> IngestReport:
        t0 = time.perf_counter()
        with self.write_lock if self.write_lock is not None else contextlib.nullcontext():
            report = self.pipeline.ingest_changes(changed, self.scopes, metadata=self.metadata)
        changed_index = bool(report.files_added or report.files_updated or report.files_removed)
        if changed_index:
            self.commits += 1
        self._report_skipped(report)
        self._check_roots()
        what = "initial sync" if initial else f"{len(changed)} changed path(s) ({_some(changed)})"
        if changed_index or initial:
            log.info(
                "%s: %d added, %d updated, %d removed, %d skipped; %d chunks embedded; %.2f s",
                what,
                report.files_added,
                report.files_updated,
                report.files_removed,
                len(report.skipped),
                report.chunks_embedded,
                time.perf_counter() - t0,
            )
        else:
            log.debug("%s: nothing to change in the index", what)
        if self.on_report is not None:
            self.on_report(report)
        return report

    def _report_skipped(self, report: IngestReport) -> None:
        """Warn about each file that could not be read, once per version of it (an unsupported type found in a
        folder is only a debug message: the folder walk of ``rag ingest`` lists those too)."""
        for skipped in report.skipped:
            if not self.pipeline.accepts(skipped.path):
                log.debug("not ingested: %s (%s)", skipped.path, skipped.reason)
                continue
            key = (skipped.reason, _version(skipped.path))
            if self._reported.get(skipped.path) != key:
                self._reported[skipped.path] = key
                log.warning("cannot ingest %s: %s", skipped.path, skipped.reason)

    def _check_roots(self) -> None:
        for root in self.roots:
            if not root.exists() and root not in self._gone_roots:
                self._gone_roots.add(root)
                log.warning(
                    "watched path %s is gone: its documents were removed; if it comes back, restart watching",
                    display_path(root),
                )


def _version(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _some(paths: Iterable[str], n: int = 3) -> str:
    items = sorted(paths)
    shown = ", ".join(display_path(Path(p)) for p in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _watch_error(exc: BaseException) -> WatchError:
    if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC from inotify_add_watch: the watch limit
        return WatchError(
            f"the system's limit of watched folders is reached ({exc}); raise fs.inotify.max_user_watches "
            "(sysctl) or watch with polling (--poll)"
        )
    return WatchError(f"the file system watcher failed: {exc}")


__all__ = ["EDITOR_TEMP_NAMES", "FolderWatcher", "WatchError", "WatchFilter", "is_temporary", "resolve_roots"]
