"""Cold start of ``rag search "question"``: wall seconds from a fresh process to printed passages, and where they go.

    .venv/bin/python benchmarks/cold_start.py [--index indexes/default] [--runs 3]
        [--baseline DIR [--baseline-index DIR/indexes/default]]

Run from a checkout whose index exists (``rag ingest corpora`` makes ``indexes/default``). ``--baseline DIR``
measures another checkout of rag the same way in the same run (e.g. ``git archive main | tar -x -C DIR``, then
``rag ingest corpora`` there with ``PYTHONPATH=DIR``: an index of the format that code writes), so the tables
come with ratios. Each checkout is imported through ``PYTHONPATH`` with this interpreter.

* ``rag search`` wall: the real command (``python -m rag search -q QUESTION``), median of ``--runs``.
* the breakdown: a child process that does what the command does, one step after another, timing each:
  interpreter start (process creation to the child's first line), the CLI's imports, ``RagPipeline`` built from
  the settings (its imports), the index opened (manifest, SQLite, FAISS, lexical engine), the embedder object
  made, the first ``retrieve`` (the model loaded and run for the first time: most of it; both searches) and the
  passages printed. Also which heavy modules it imported. The real command embeds its first question while it
  opens the index (``RagPipeline._snapshot_and_vector``), so its wall can be below the sum of the steps.
  The machine these numbers come from is shared: compare the columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _corpus import table

QUESTION = "What is BM25 and how does it rank documents?"
HEAVY = ("torch", "transformers", "sentence_transformers", "pandas", "openvino", "faiss", "numpy", "jieba", "tantivy")

CHILD = r"""
import sys, time, json
marks = [("interpreter start", time.time())]
import rag.cli.main
from rag.cli.output import print_hits
marks.append(("import the CLI", time.time()))
from rag.config import RagConfig
from rag.pipeline import RagPipeline
p = RagPipeline(RagConfig.load(None, index=sys.argv[2], quiet=True))
marks.append(("RagPipeline(settings) (its imports)", time.time()))
snap = p._current()
marks.append(("open the index", time.time()))
(p._embedders.for_index if hasattr(p, '_embedders') else p._embedder_for)(snap.manifest)  # older checkouts
marks.append(("load the embedder", time.time()))
hits = p.retrieve(sys.argv[3])
marks.append(("first retrieve (embed + search)", time.time()))
import io, contextlib
with contextlib.redirect_stdout(io.StringIO()):
    print_hits(hits)
marks.append(("print the passages", time.time()))
t0 = float(sys.argv[1])
heavy = [m for m in sys.argv[4].split(",") if m in sys.modules]
print(json.dumps({"marks": [(name, t - t0) for name, t in marks], "heavy": heavy, "hits": len(hits)}))
"""


def env_for(checkout: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(checkout)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def command_wall(checkout: Path, index: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rag", "search", "-q", "--index", str(index), QUESTION],
        cwd=checkout,
        env=env_for(checkout),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def breakdown(checkout: Path, index: Path) -> tuple[list[tuple[str, float]], list[str]]:
    """Seconds of each step in one child, and the heavy modules it imported."""
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(t0), str(index), QUESTION, ",".join(HEAVY)],
        cwd=checkout,
        env=env_for(checkout),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    assert data["hits"] > 0, "the search found nothing: is the index built?"
    marks = data["marks"]
    return [(name, t - (marks[i - 1][1] if i else 0.0)) for i, (name, t) in enumerate(marks)], data["heavy"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--index", type=Path, default=None, help="default: CHECKOUT/indexes/default")
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout of rag, measured the same way")
    ap.add_argument("--baseline-index", type=Path, default=None, help="default: BASELINE/indexes/default")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    runs = [("this checkout", args.checkout, args.index or args.checkout / "indexes" / "default")]
    if args.baseline:
        runs.insert(0, ("baseline", args.baseline, args.baseline_index or args.baseline / "indexes" / "default"))
    samples: dict[str, list[list[tuple[str, float]]]] = {label: [] for label, _, _ in runs}
    walls_of: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    heavy_of: dict[str, list[str]] = {}
    for _ in range(args.runs):  # interleaved, so that the shared machine's load drifts over both alike
        for label, checkout, index in runs:
            steps, heavy_of[label] = breakdown(checkout, index.resolve())
            samples[label].append(steps)
            walls_of[label].append(command_wall(checkout, index.resolve()))
    results = {}
    for label, _, _ in runs:
        first = samples[label][0]
        steps = [(name, statistics.median(s[i][1] for s in samples[label])) for i, (name, _) in enumerate(first)]
        results[label] = (steps, heavy_of[label], statistics.median(walls_of[label]))
        print(
            f"{label}: rag search {results[label][2]:.2f} s; heavy modules: {', '.join(heavy_of[label])}",
            file=sys.stderr,
        )
    labels = list(results)
    names = [name for name, _ in results[labels[-1]][0]]
    rows = []
    for name in names:
        row: list[object] = [name]
        for label in labels:
            row.append(f"{dict(results[label][0]).get(name, float('nan')):.2f}")
        rows.append(row)
    totals: list[object] = ["sum of the steps"] + [f"{sum(s for _, s in results[lb][0]):.2f}" for lb in labels]
    walls: list[object] = ["`rag search` wall (median)"] + [f"{results[lb][2]:.2f}" for lb in labels]
    heavy_row: list[object] = ["heavy modules imported"] + [" ".join(results[lb][1]) for lb in labels]
    headers = ["step (s)", *labels]
    if len(labels) == 2:
        for row in [*rows, totals, walls]:
            a, b = float(str(row[1])), float(str(row[2]))
            row.append(f"{a / b:.1f}x" if min(a, b) >= 0.05 else "-")
        heavy_row.append("")
        headers.append("baseline / this")
    print(f"\nquestion: {QUESTION!r}; {args.runs} runs each, medians; python {sys.version.split()[0]}\n")
    print(table(headers, [*rows, totals, walls, heavy_row]))


if __name__ == "__main__":
    main()
