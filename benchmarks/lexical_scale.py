"""The lexical engines at a million chunks: tantivy (block-max WAND top-k, rag's default) against the SQLite FTS5
BM25 of indexes made before it, over the same chunks and vectors, in one run.

    .venv/bin/python benchmarks/lexical_scale.py [--chunks 1000000] [--real 3000] [--workdir /tmp/rag-bench]

The index folder is built as ``benchmarks/index_types.py --pipeline`` builds its own (rag's store and writer;
chunk texts are real passages of Python's docs, each repeated as often as its synthetic vector was; vectors are
real MiniLM vectors plus noise from their covariance; IVF at this size), then a twin of it keeps its BM25 rows
in SQLite FTS5 instead (``_lexical.fts5_twin``: the format 2 layout, which rag still searches). Timed, one query
at a time, warm, 40 real questions twice each (tantivy; the FTS5 twin, over a hundred ms a query, the first
``--fts5-queries`` of them once):

* lexical top-40 (what hybrid takes from the lexical side for k=10): ``ChunkStore.lexical_search``
* the same with a filter that every chunk passes (``lang=en``): the worst case of a filtered search
* ``RagPipeline.retrieve(question, k=10)`` in hybrid (the default) and lexical mode, each question embedded anew
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _corpus import peak_rss_mb, table
from _lexical import fts5_twin
from index_types import QUESTIONS, pipeline_index, real_vectors, synthesize

from rag.filters import Filters
from rag.index.folder import IndexDir
from rag.index.vectors import choose_kind
from rag.pipeline import RagPipeline


def memoize_text_functions() -> None:
    """The synthetic corpus repeats each real text hundreds of times: remember each text's tokens and language
    while building (the stored index is the same; only the build is faster)."""
    import functools

    import rag.index.lexical
    import rag.text.langdetect

    rag.index.lexical.index_tokens = functools.lru_cache(maxsize=None)(rag.index.lexical.index_tokens)  # type: ignore[assignment]
    rag.text.langdetect.detect_language = functools.lru_cache(maxsize=None)(rag.text.langdetect.detect_language)


def percentiles(fn: Callable[[str], object], questions: list[str]) -> tuple[float, float]:
    fn(QUESTIONS[0])  # warm
    lat = []
    for q in questions:
        t = time.perf_counter()
        fn(q)
        lat.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 95))


def bench(folder: Path, questions: list[str], filtered: bool = True) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    snap = IndexDir(folder).open_snapshot()
    try:
        everything = Filters(language=("en",))
        out["lexical top-40"] = percentiles(lambda q: snap.store.lexical_search(q, 40), questions)
        if filtered:
            out["lexical top-40, filter lang=en (all pass)"] = percentiles(
                lambda q: snap.store.lexical_search(q, 40, everything), questions
            )
    finally:
        snap.close()
    for mode in ("hybrid", "lexical"):
        p = RagPipeline.from_index(folder, retrieval=mode, quiet=True)

        def retrieve(q: str, p: RagPipeline = p) -> object:
            p._queries.clear()  # every question embedded anew: the latency a new question sees
            return p.retrieve(q, k=10)

        out[f"RagPipeline.retrieve k=10, {mode}"] = percentiles(retrieve, questions)
        p.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--real", type=int, default=2000, help="real chunks (embedded with MiniLM) to start from")
    ap.add_argument(
        "--fts5-queries",
        type=int,
        default=20,
        help="questions timed on the FTS5 twin (0: skip it; about 0.1-1 s each)",
    )
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rag-bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args.workdir.mkdir(parents=True, exist_ok=True)
    tantivy_dir = args.workdir / f"lexical_{args.chunks}_tantivy"
    fts5_dir = args.workdir / f"lexical_{args.chunks}_fts5"
    if not (tantivy_dir / "manifest.json").exists():
        memoize_text_functions()
        real, texts, _ = real_vectors(args.real, args.workdir)
        base, source = synthesize(real, args.chunks)
        kind = choose_kind("auto", args.chunks)
        seconds = pipeline_index(tantivy_dir, base, source, texts, kind)
        print(f"index of {args.chunks:,} chunks ({kind}, tantivy) written in {seconds:.0f} s", file=sys.stderr)
        del base
    tantivy = bench(tantivy_dir, QUESTIONS * 2)
    print(f"\n{args.chunks:,} chunks, one query at a time, tantivy: 80 queries (40 questions twice)\n")
    print(
        table(
            ["search", "tantivy p50 ms", "tantivy p95 ms"],
            [[w, f"{a:.1f}", f"{b:.1f}"] for w, (a, b) in tantivy.items()],
        )
    )
    if args.fts5_queries:
        if not (fts5_dir / "manifest.json").exists():
            t0 = time.perf_counter()
            fts5_twin(tantivy_dir, fts5_dir)
            print(f"FTS5 twin written in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        # FTS5's filtered search joins every matching row with the chunk table: minutes a query here, left out
        fts5 = bench(fts5_dir, QUESTIONS[: args.fts5_queries], filtered=False)
        rows = []
        for what, (f50, f95) in fts5.items():
            t50, t95 = tantivy[what]
            rows.append(
                [what, f"{f50:.1f}", f"{f95:.1f}", f"{t50:.1f}", f"{t95:.1f}", f"{f50 / t50:.1f}x", f"{f95 / t95:.1f}x"]
            )
        print(f"\nFTS5 twin: the first {args.fts5_queries} questions once each; peak RSS {peak_rss_mb():.0f} MB\n")
        headers = ["search", "FTS5 p50 ms", "FTS5 p95 ms", "tantivy p50 ms", "tantivy p95 ms", "p50 ratio", "p95 ratio"]
        print(table(headers, rows))


if __name__ == "__main__":
    main()
