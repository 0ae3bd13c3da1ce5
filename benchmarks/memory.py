"""Streaming ingest: peak memory of `rag ingest` as the corpus grows (10k and 100k chunks by default).

    .venv/bin/python benchmarks/memory.py [--chunks 10000,100000] [--model minilm|hash] [--workdir DIR]

The corpus is Python's documentation, copied as many times as needed; every paragraph of copy N is prefixed
with "(N)" so that no chunk text repeats (rag embeds a repeated text once, which would flatter the numbers).
Each run is a fresh `rag ingest` process; this script samples its resident memory every 0.5 s and reports the
peak (ru_maxrss of the child) and the resident memory at 25/50/75/100% of the run, plus the index size on disk.
The vectors themselves (384 floats = 1.5 KB per chunk) are held in memory by FAISS and are in the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _corpus import PYTHON_DOCS, dir_size_mb, python_docs, table

CHUNKS_PER_COPY = 21_500  # Python 3.11's docs at 200 MiniLM tokens per chunk


def make_corpus(folder: Path, chunks: int) -> Path:
    """Enough distinct copies of the docs for about ``chunks`` chunks (files cut at the end to fit)."""
    if folder.exists():
        return folder
    files = python_docs()
    copies = max(1, -(-chunks // CHUNKS_PER_COPY))
    per_file = CHUNKS_PER_COPY / len(files)
    budget = int(chunks / per_file)  # files to write
    written = 0
    for n in range(copies):
        for src in files:
            if written >= budget:
                return folder
            dst = folder / f"copy{n}" / src.relative_to(PYTHON_DOCS)
            dst.parent.mkdir(parents=True, exist_ok=True)
            text = src.read_text(encoding="utf-8", errors="replace")
            dst.write_text(text.replace("\n\n", f"\n\n({n}) ") if n else text, encoding="utf-8")
            written += 1
    return folder


def sample_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def run(corpus: Path, index: Path, model: str) -> dict[str, object]:
    shutil.rmtree(index, ignore_errors=True)
    cmd = [sys.executable, "-m", "rag", "ingest", str(corpus), "--index", str(index), "--model", model, "-q", "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    samples: list[int] = []
    while proc.poll() is None:
        samples.append(sample_rss(proc.pid))
        time.sleep(0.5)
    out = proc.communicate()[0]
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"rag ingest failed ({proc.returncode})")
    report = json.loads(out)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    quarter = [samples[min(len(samples) - 1, int(len(samples) * f))] for f in (0.25, 0.5, 0.75)] + [samples[-2]]
    return {
        "chunks": report["chunks_added"],
        "seconds": seconds,
        "peak": peak,
        "quarters": quarter,
        "index_mb": dir_size_mb(index),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", default="10000,100000")
    ap.add_argument("--model", default="minilm", help="minilm (the real default for English) or hash (no model)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rag-bench")
    args = ap.parse_args()
    rows = []
    for n in (int(c) for c in args.chunks.split(",")):  # ascending: ru_maxrss of children only grows
        corpus = make_corpus(args.workdir / f"corpus_{n}", n)
        r = run(corpus, args.workdir / f"memidx_{args.model}_{n}", args.model)
        rows.append(
            [
                f"{r['chunks']:,}",
                args.model,
                f"{r['seconds']:.0f}",
                f"{r['chunks'] / r['seconds']:.1f}",
                " / ".join(str(q) for q in r["quarters"]),
                f"{r['peak']:.0f}",
                f"{r['index_mb']:.0f}",
            ]
        )
        print(rows[-1], file=sys.stderr, flush=True)
    print()
    print(
        table(
            ["chunks", "model", "seconds", "chunks/s", "RSS MB at 25/50/75/100%", "peak RSS MB", "index MB"], rows
        )
    )


if __name__ == "__main__":
    main()
