"""How long a watched edit takes to become searchable (`rag watch`, `rag serve --watch`).

    python benchmarks/watch_latency.py [--edits 20] [--debounce 50,200] [--embedder auto]

Copies the sample corpus to a temporary folder, watches it with the default embedder (``auto``: e5-multilingual on
this corpus, which holds Chinese documents), and makes ``--edits`` edits one after another, alternating between
appending a sentence to an existing file and creating a new file; each sentence holds a made-up word of its own. An
edit's latency runs from just before the file is written until ``RagPipeline.retrieve`` of the sentence (on the
pipeline the watcher writes with, as in ``rag serve --watch``; filtered to the edited file, so ranking among the
other near-identical edits does not count) returns a passage holding the word; retrieval is polled every 10 ms. One
row per debounce setting (the quiet period the watcher waits for before an ingest): median, p90, min and max
latency, and the median time of the ingest itself (plan, load, chunk, embed, commit), from the watcher's reports.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import RagConfig  # noqa: E402
from rag.pipeline import RagPipeline  # noqa: E402
from rag.types import IngestReport  # noqa: E402
from rag.watch import FolderWatcher  # noqa: E402

CORPUS = ROOT / "corpora"
TIMEOUT_S = 120.0
WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "heron", "indigo", "juniper"]


SYLLABLES = ["ka", "lo", "mi", "nu", "pe", "ri", "so", "tu", "ve", "zo"]


def marker(i: int) -> str:
    """A made-up word of letters only (one lexical token), different for every ``i``."""
    return "velkar" + "".join(SYLLABLES[int(d)] for d in str(i)) + "ost"


def sentence(i: int) -> str:
    a, b, c = WORDS[i % 10], WORDS[(i // 10) % 10], WORDS[(i * 7 + 3) % 10]
    # a made-up word per edit: no two edits (nor the corpus) share it, so the question has one right passage
    return f"Field log {i}: the surveyor named the {a} ridge {marker(i)}, beside the {b} creek and the {c} pass."


def run(pipeline: RagPipeline, docs: Path, edits: int, debounce_ms: int, start: int) -> tuple[list[float], list[float]]:
    """(latencies, ingest seconds) of ``edits`` edits, watched with a ``debounce_ms`` quiet period."""
    reports: list[IngestReport] = []
    watcher = FolderWatcher(pipeline, [docs], quiet_ms=debounce_ms, on_report=reports.append)
    watcher.start()
    if not watcher.ready.wait(600) or watcher.error is not None:
        raise SystemExit(f"the watcher did not start: {watcher.error}")
    existing = sorted(p for p in docs.iterdir() if p.suffix in (".md", ".txt"))
    latencies: list[float] = []
    try:
        for n in range(edits):
            i = start + n
            text = sentence(i)
            before = len(reports)
            t0 = time.perf_counter()
            if n % 2 == 0:
                target = existing[n % len(existing)]
                with open(target, "a", encoding="utf-8") as fh:
                    fh.write("\n\n" + text + "\n")
            else:
                target = docs / f"log-{i}.md"
                target.write_text(text + "\n", encoding="utf-8")
            only = {"path": str(target.resolve())}  # the edited file's passages (filters apply before top-k)
            while not any(marker(i) in h.chunk.text for h in pipeline.retrieve(text, k=10, filters=only)):
                if time.perf_counter() - t0 > TIMEOUT_S:
                    raise SystemExit(f"edit {i} not searchable after {TIMEOUT_S:.0f} s")
                time.sleep(0.01)
            latencies.append(time.perf_counter() - t0)
            deadline = time.monotonic() + TIMEOUT_S
            while len(reports) == before and time.monotonic() < deadline:  # the report comes just after the commit
                time.sleep(0.005)
    finally:
        watcher.close(TIMEOUT_S)
    ingests = [r.seconds for r in reports[1:] if r.files_added or r.files_updated]
    return latencies, ingests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20, help="edits per debounce setting (default 20)")
    parser.add_argument("--debounce", default="50,200", help="debounce settings in ms, comma-separated")
    parser.add_argument("--embedder", default="auto", help="embedder (default auto: the default for a new index)")
    args = parser.parse_args()
    settings = [int(x) for x in args.debounce.split(",") if x.strip()]
    with tempfile.TemporaryDirectory(prefix="rag-watch-bench-") as tmp:
        docs = Path(tmp) / "docs"
        shutil.copytree(CORPUS, docs)
        config = RagConfig(index=Path(tmp) / "idx", quiet=True, embedder=args.embedder)
        with RagPipeline(config) as pipeline:
            t0 = time.perf_counter()
            pipeline.ingest_changes([docs], [docs])
            pipeline.retrieve("warm up the query path")
            info = pipeline.info()
            print(
                f"corpus: {info.documents} documents, {info.chunks} chunks; embedder {info.embedder}; "
                f"initial ingest {time.perf_counter() - t0:.1f} s (model load included)"
            )
            print()
            print("| debounce ms | edits | median s | p90 s | min s | max s | ingest median s |")
            print("|---|---|---|---|---|---|---|")
            start = 0
            for debounce in settings:
                latencies, ingests = run(pipeline, docs, args.edits, debounce, start)
                start += args.edits
                p90 = statistics.quantiles(latencies, n=10, method="inclusive")[-1]
                print(
                    f"| {debounce} | {len(latencies)} | {statistics.median(latencies):.3f} | {p90:.3f} | "
                    f"{min(latencies):.3f} | {max(latencies):.3f} | "
                    f"{statistics.median(ingests) if ingests else float('nan'):.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
