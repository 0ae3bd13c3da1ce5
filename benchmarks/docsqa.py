"""Answers on real documentation folders: ../shared/data/docsqa (FastAPI's docs in English and Chinese, two PDF
manuals, 80 questions), and its parts sec10q (SEC filings, PDF tables) and tara (Chinese help texts).

Ingests each folder as a user would (into ``--index-root``, incrementally: a rerun with the same code reuses it;
``--fresh`` rebuilds), asks every question through ``RagPipeline.ask_stream`` and prints per group: all key facts
present, key-fact recall, a source cited, a source in the top 1 / top 4 passages, answerable refused, unanswerable
refused, degenerate answers, seconds per answer and to the first token (p50).

    python benchmarks/docsqa.py [--parts main,sec10q,tara] [--limit N] [--sec10q-limit 40] [--tara-limit 100]
                                [--generator G] [--set key=value ...] [--retrieval-only] [--json out.json]
                                [--show] [--ids fa-en-001,pdf-003]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from quality import data_root  # type: ignore[import-not-found]

from rag.config import RagConfig
from rag.folder_eval import (
    FolderReport,
    QuestionResult,
    load_questions,
    relative_source,
    score_folder,
    summarise,
    table,
)
from rag.pipeline import RagPipeline

PARTS = {
    # name: (folder under docsqa, what to ingest under it, questions file)
    "main": ("", ("fastapi", "pdf"), "questions.jsonl"),
    "sec10q": ("sec10q", ("docs",), "questions.jsonl"),
    "tara": ("tara", ("docs",), "questions.jsonl"),
}


def spread(records: list[dict], limit: int) -> list[dict]:
    if not limit or limit >= len(records):
        return records
    step = len(records) / limit
    return [records[int(i * step)] for i in range(limit)]


def print_table(name: str, report: FolderReport) -> None:
    print(f"\n## {name}")
    print("\n".join(table(report)))


def show(result: QuestionResult) -> None:
    mark = "OK " if result.facts and all(result.facts) else ("REF" if result.refused else "-- ")
    flags = f" [{result.degenerate}]" if result.degenerate else ""
    print(f"\n{mark} {result.id} ({result.kind}) {result.question}{flags}", file=sys.stderr)
    print(
        f"    facts {result.facts} cited {result.cited} top {result.top[:2]} {result.seconds:.1f}s {result.grounding}",
        file=sys.stderr,
    )
    print("    " + result.answer.replace("\n", "\n    "), file=sys.stderr)


def retrieval_only(pipeline: RagPipeline, root: Path, records: list[dict], k: int) -> FolderReport:
    """Sources in the top k without asking the generator (fast: embedder and search only)."""
    from rag.folder_eval import score_question
    from rag.types import Answer

    results = []
    for record in records:
        hits = pipeline.retrieve(record["question"], k=k, across_languages=True)
        top = list(dict.fromkeys(relative_source(h.chunk.source, root) for h in hits))
        empty = Answer(record["question"], "", [], True, "", [], {})
        results.append(score_question(record, empty, top, root, 0.0, 0.0))
    info = pipeline.info()
    return FolderReport(str(root), info.documents, info.chunks, info.embedder, "", 0.0, k, summarise(results), results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="main")
    parser.add_argument("--limit", type=int, default=0, help="questions of the main set (0: all 80)")
    parser.add_argument("--sec10q-limit", type=int, default=40)
    parser.add_argument("--tara-limit", type=int, default=100)
    parser.add_argument("--ids", default="", help="only these question ids (main set)")
    parser.add_argument("--generator", default=None)
    parser.add_argument("--set", action="append", default=[], help="a RagConfig setting, key=value")
    parser.add_argument("--index-root", type=Path, default=Path(tempfile.gettempdir()) / "rag-docsqa")
    parser.add_argument("--fresh", action="store_true", help="rebuild the indexes")
    parser.add_argument("--retrieval-only", action="store_true")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--json", type=Path, help="write the per-question results here")
    parser.add_argument("--show", action="store_true", help="print every answer to stderr")
    args = parser.parse_args()
    root = data_root() / "docsqa"
    overrides = dict(item.split("=", 1) for item in args.set)
    if args.generator:
        overrides["generator"] = args.generator
    out = {}
    for part in args.parts.split(","):
        sub, ingest, questions = PARTS[part]
        folder = root / sub if sub else root
        records = load_questions(folder / questions)
        if args.ids:
            wanted = set(args.ids.split(","))
            records = [r for r in records if r["id"] in wanted]
        limit = {"main": args.limit, "sec10q": args.sec10q_limit, "tara": args.tara_limit}[part]
        records = spread(records, limit)
        index = args.index_root / part
        if args.fresh:
            shutil.rmtree(index, ignore_errors=True)
        config = RagConfig.load(None, index=index, quiet=True, **overrides)
        pipeline = RagPipeline(config)
        try:
            if args.retrieval_only:
                pipeline.ingest([folder / p for p in ingest])
                report = retrieval_only(pipeline, folder, records, args.k)
            else:
                report = score_folder(
                    pipeline, folder, records, paths=[folder / p for p in ingest], k=args.k,
                    progress=show if args.show else None,
                )  # fmt: skip
        finally:
            pipeline.close()
        print_table(part, report)
        out[part] = report.to_dict()
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
