"""Retrieval on the docsqa folder: is a question's source file among the top 1 / top 4 passages, per group
(fa-en, fa-zh, fa-x, pdf), for BM25 only and hybrid retrieval.

The corpus is the folder's ``fastapi/`` and ``pdf/`` as a user would index them; the questions are
``questions.jsonl`` (unanswerable ones, with no ``sources``, left out). For fa-en and fa-zh the parallel file
(``fastapi/en/X`` <-> ``fastapi/zh/X``) counts as a hit, as the set's README allows.

    python benchmarks/docsqa_retrieval.py [--embedder rag.testing:HashEmbedder] [--modes lexical,hybrid]
                                          [--index DIR] [--misses] [--json out.json]

The default embedder is the hashing fake: the BM25 rows do not depend on it and ingest takes seconds; pass
``--embedder auto`` for hybrid rows with the real embedder (minutes of ingest on a small CPU). ``--index DIR``
keeps the index there and reuses it when it exists: the documents are unchanged, so nothing is re-embedded, and
the index is compacted, which re-tokenizes its lexical rows when they were made by another tokenizer version (a
before/after of a lexical change with the real embedder: build with the old code, then rerun with the new).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rag.config import RagConfig
from rag.pipeline import RagPipeline

GROUPS = ("fa-en", "fa-zh", "fa-x", "pdf")


def data_folder() -> Path:
    env = os.environ.get("RAG_EVAL_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return root / "docsqa"


def accepted(record: dict[str, object]) -> set[str]:
    """The source paths (relative to the folder) that count as a hit for ``record``."""
    sources = {str(s) for s in record["sources"]}  # type: ignore[attr-defined]
    if str(record["id"]).startswith(("fa-en-", "fa-zh-")):
        for s in list(sources):
            for a, b in (("fastapi/en/", "fastapi/zh/"), ("fastapi/zh/", "fastapi/en/")):
                if s.startswith(a):
                    sources.add(b + s[len(a) :])
    return sources


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default="rag.testing:HashEmbedder")
    parser.add_argument("--modes", default="lexical,hybrid")
    parser.add_argument("--index", type=Path, default=None, help="keep (and reuse) the index in this folder")
    parser.add_argument("--misses", action="store_true", help="list the questions whose source is not in the top 4")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    folder = data_folder()
    if not (folder / "questions.jsonl").is_file():
        print(f"no docsqa at {folder} (set RAG_EVAL_DATA)", file=sys.stderr)
        return 2
    records = [json.loads(line) for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    records = [r for r in records if r["sources"]]
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index or Path(tmp) / "i"
        config = RagConfig(index=index, embedder=args.embedder, quiet=True)
        pipeline = RagPipeline(config)
        reused = (index / "manifest.json").is_file()
        start = time.perf_counter()
        pipeline.ingest([folder / "fastapi", folder / "pdf"])
        if reused:
            pipeline.compact()
        print(f"index: {pipeline.info().chunks} chunks, {time.perf_counter() - start:.1f} s", flush=True)
        rows = []
        for mode in args.modes.split(","):
            pipeline.config = config.replace(retrieval=mode)
            hits: dict[str, list[tuple[bool, bool]]] = {g: [] for g in GROUPS}
            for r in records:
                found = [
                    Path(h.chunk.source).resolve().relative_to(folder.resolve()).as_posix()
                    for h in pipeline.retrieve(r["question"], k=4)
                ]
                want = accepted(r)
                top1, top4 = bool(found[:1]) and found[0] in want, any(f in want for f in found)
                hits[r["id"].rsplit("-", 1)[0]].append((top1, top4))
                if args.misses and not top4:
                    print(f"  miss {mode} {r['id']}: {r['question']}\n    want {sorted(want)}\n    got {found}")
            for g, marks in hits.items():
                rows.append(
                    {
                        "mode": mode,
                        "group": g,
                        "questions": len(marks),
                        "top1": sum(a for a, _ in marks),
                        "top4": sum(b for _, b in marks),
                    }
                )
        pipeline.close()
    print("| mode | group | questions | source top 1 | source top 4 |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['mode']} | {row['group']} | {row['questions']} | {row['top1']} | {row['top4']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
