"""Re-ingest of an unchanged folder vs. its first ingest, in one process, with the default models.

    python benchmarks/reingest.py [FOLDER]   (default: Python's HTML docs from Debian's python3.11-doc:
                                              apt-get install python3.11-doc)

Prints a table (files, chunks, seconds, chunks/s) and the ratio first/re-ingest.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from rag import RagConfig, RagPipeline

DEFAULT = Path("/usr/share/doc/python3.11/html")


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not folder.is_dir():
        print(f"{folder} not found: apt-get install python3.11-doc, or pass a folder", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = RagPipeline(RagConfig(index=Path(tmp) / "index", quiet=True))
        rows = []
        for label in ("first ingest", "re-ingest (unchanged)"):
            t0 = time.perf_counter()
            report = pipeline.ingest([folder])
            seconds = time.perf_counter() - t0
            rows.append((label, report.files_seen, report.files_added, report.chunks_added, seconds))
        info = pipeline.info()
    print(f"corpus: {folder}  model: {info.embedder}  chunks in index: {info.chunks}")
    print(f"{'run':<24}{'files':>8}{'added':>8}{'chunks':>9}{'seconds':>10}")
    for label, files, added, chunks, seconds in rows:
        print(f"{label:<24}{files:>8}{added:>8}{chunks:>9}{seconds:>10.2f}")
    print(f"re-ingest is {rows[0][4] / rows[1][4]:.0f}x faster than the first ingest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
