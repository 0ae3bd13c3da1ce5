"""`rag watch`: keep the index in step with files and folders as they change, until Ctrl-C or SIGTERM.

The watcher (``rag.watch.FolderWatcher``, imported when the command runs) does an initial sync, then applies each
burst of changes as one commit. The first Ctrl-C or SIGTERM stops it after the commit in flight (exit status 0);
a second Ctrl-C interrupts at once (the index still holds its last complete generation).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import asdict
from types import FrameType
from typing import TYPE_CHECKING

from rag.cli.options import (
    Subparsers,
    add_config_options,
    add_embedder,
    add_metadata,
    add_reading_options,
    key_value,
    open_pipeline,
)
from rag.cli.output import print_ingest_report

if TYPE_CHECKING:
    from rag.types import IngestReport


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("watch", help="keep the index in step with files and folders as they change")
    p.add_argument("paths", nargs="+", help="files or folders to watch (recursively)")
    add_embedder(p, "embedder for a new index: auto (default), minilm, e5-multilingual, a folder or hub id")
    add_metadata(p, "metadata stored with every document added or replaced, for --filter meta.KEY=VALUE (repeatable)")
    p.add_argument(
        "--debounce-ms",
        type=int,
        default=200,
        dest="debounce_ms",
        help="apply changes once nothing has changed for this long (default 200; a burst is one commit)",
    )
    p.add_argument("--poll", action="store_true", help="poll for changes (network file systems, containers)")
    add_reading_options(p)
    add_config_options(p)
    p.set_defaults(func=watch)


def watch(args: argparse.Namespace) -> int:
    from rag.watch import FolderWatcher

    metadata = dict(key_value(item, "--metadata") for item in args.metadata)

    def on_report(report: IngestReport) -> None:
        if args.json:  # one JSON object per line and ingest, for scripts
            print(json.dumps(asdict(report), ensure_ascii=False), flush=True)
        elif not args.quiet and (report.files_added or report.files_updated or report.files_removed):
            print_ingest_report(report)
            sys.stdout.flush()

    watcher = FolderWatcher(
        open_pipeline(args),
        args.paths,
        metadata=metadata,
        quiet_ms=args.debounce_ms,
        max_wait_ms=max(2000, args.debounce_ms * 10),
        force_polling=True if args.poll else None,
        on_report=on_report,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if watcher.stop_event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        watcher.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        watcher.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
