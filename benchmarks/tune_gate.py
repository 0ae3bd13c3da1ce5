"""Does `rag tune`'s gate predict real questions? (issue 37) On a shared BEIR set's real queries, split in two halves
("use" and "test"), MiniLM's dense and hybrid nDCG@10 on the *test* half before and after each way of tuning:

- ``default``: ``rag tune --apply`` as a new user runs it (inverse-cloze pairs here: no generator is loaded, to keep
  the run small; generated questions are the same kind of proxy). It must now refuse, so the index is unchanged;
- ``forced`` (with ``--forced``): the same tune applied whatever its proxy gate says (``--apply --accept-proxy``):
  what the old default did;
- ``from-use``: the "use" half recorded as real use (``record_questions``: each query asked, the chunks of its relevant
  documents that hybrid retrieval ranks best as the answer's citations, the top 10 as retrieved, every answer marked
  helpful), then ``rag tune --from-use --apply`` (gated on its own held-out quarter of the recorded questions);
- ``pairs``: the same "use" half as the user's pairs (``rag tune --pairs FILE --apply``: query + relevant document).

    python benchmarks/tune_gate.py [--sets scifact,xquad/beir_en] [--docs 1500] [--queries 300] [--epochs 1]
                                   [--max-pairs 600] [--forced] [--json out.json]

CPU is scarce: the corpus is subsampled (every relevant document of the sampled queries, then random others up to
``--docs``), the queries too (``--queries``, seeded), one epoch; the output says what was sampled. MiniLM only: the
multilingual E5 cannot be tuned (and MiniLM cannot read Chinese), so CMRC 2018 and XQuAD zh are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.config import RagConfig
from rag.evaluation import DOC_PREFIX, BeirSet, build_index, load_beir, score_retrieval
from rag.index.questions import QuestionLog
from rag.pipeline import RagPipeline

SETS = ["scifact", "xquad/beir_en"]


def data_root() -> Path:
    env = os.environ.get("RAG_EVAL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def sample(data: BeirSet, n_docs: int, n_queries: int, seed: int = 0) -> BeirSet:
    """``n_queries`` queries (seeded) and a corpus of their relevant documents topped up to ``n_docs``."""
    rng = random.Random(seed)
    qids = sorted(q for q in data.queries if data.qrels.get(q))
    qids = sorted(rng.sample(qids, min(n_queries, len(qids))))
    keep = {d for q in qids for d in data.qrels[q] if d in data.corpus}
    others = sorted(set(data.corpus) - keep)
    keep |= set(rng.sample(others, max(0, min(len(others), n_docs - len(keep)))))
    return replace(
        data,
        corpus={d: data.corpus[d] for d in sorted(keep)},
        queries={q: data.queries[q] for q in qids},
        qrels={q: {d for d in data.qrels[q] if d in keep} for q in qids},
    )


def subset(data: BeirSet, qids: list[str]) -> BeirSet:
    return replace(data, queries={q: data.queries[q] for q in qids}, qrels={q: data.qrels[q] for q in qids})


def scores(pipeline: RagPipeline, data: BeirSet) -> dict[str, float]:
    out = {}
    retrieval = pipeline.config.retrieve.retrieval
    for mode in ("dense", "hybrid"):
        pipeline.config = pipeline.config.replace(retrieval=mode)
        out[mode] = score_retrieval(pipeline, data).ndcg_at_10
    pipeline.config = pipeline.config.replace(retrieval=retrieval)
    return out


def record_use(index: Path, data: BeirSet, qids: list[str]) -> int:
    """Record ``qids`` as questions asked in real use, their answers citing the best-ranked chunk of each relevant
    document (or its first chunk when retrieval missed it), all marked helpful. Returns the questions recorded."""
    log = QuestionLog(index)
    with RagPipeline(RagConfig(index=index, quiet=True)) as p:
        store = p._current().store
        first: dict[str, int] = {}
        for cid, path in store.db.execute(
            "SELECT c.id, d.path FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id"
        ).fetchall():
            first.setdefault(str(path), int(cid))
        p.prime_queries([data.queries[q] for q in qids])
        for q in qids:
            hits = p.retrieve(data.queries[q], k=100)
            relevant = {DOC_PREFIX + d for d in data.qrels[q]}
            cited: dict[str, int] = {}
            for h in hits:
                if h.chunk.source in relevant and h.chunk.id is not None:
                    cited.setdefault(h.chunk.source, int(h.chunk.id))
            for doc in sorted(relevant - set(cited)):
                if doc in first:
                    cited[doc] = first[doc]
            retrieved = [int(h.chunk.id) for h in hits[:10] if h.chunk.id is not None]
            qid = log.record(
                data.queries[q], data.queries[q], list(cited.values()), retrieved, refused=False, generation=0
            )
            log.feedback(qid, True)
    return len(qids)


def write_pairs(path: Path, data: BeirSet, qids: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for q in qids:
            for doc in sorted(data.qrels[q]):
                title, text = data.corpus[doc]
                record = {"query": data.queries[q], "passage": f"{title} {text}".strip(), "path": DOC_PREFIX + doc}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def tune_once(index: Path, test: BeirSet, **options: Any) -> dict[str, Any]:
    pipeline = RagPipeline(RagConfig(index=index, quiet=True))
    before = scores(pipeline, test)
    t0 = time.perf_counter()
    report = pipeline.tune(apply=True, **options)
    minutes = (time.perf_counter() - t0) / 60
    after = scores(pipeline, test)
    problems = pipeline.verify()
    pipeline.close()
    return {
        "pairs": f"{report.pairs} {report.pairs_source}",
        "gate": f"{report.held_out} {report.held_out_source}{' (proxy)' if report.proxy_gate else ''}",
        "gate_dense": (report.before.ndcg_at_10, report.after.ndcg_at_10),
        "gate_hybrid": (report.before.hybrid_ndcg_at_10, report.after.hybrid_ndcg_at_10),
        "applied": report.applied,
        "before": before,
        "after": after,
        "minutes": minutes,
        "verified": not problems,
    }


def row(name: str, path: str, r: dict[str, Any]) -> str:
    b, a = r["before"], r["after"]
    gd, gh = r["gate_dense"], r["gate_hybrid"]
    return (
        f"| {name} | {path} | {r['pairs']} | {r['gate']}: dense {gd[0]:.3f} -> {gd[1]:.3f}, hybrid {gh[0]:.3f} -> "
        f"{gh[1]:.3f} | {'yes' if r['applied'] else 'no'} "
        f"| {b['dense']:.3f} -> {a['dense']:.3f} ({a['dense'] - b['dense']:+.3f}) "
        f"| {b['hybrid']:.3f} -> {a['hybrid']:.3f} ({a['hybrid'] - b['hybrid']:+.3f}) | {r['minutes']:.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--docs", type=int, default=1500, help="corpus documents kept (relevant ones first)")
    parser.add_argument("--queries", type=int, default=300, help="real queries sampled (half use, half test)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-pairs", type=int, default=600, help="training pairs at most (the default tune's)")
    parser.add_argument("--max-minutes", type=float, default=6.0)
    parser.add_argument("--forced", action="store_true", help="also the proxy tune applied anyway (old default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    root = data_root()
    results: dict[str, Any] = {}
    lines = [
        "| set | path | training pairs | the tune's gate (held-out: before -> after) | applied | test dense nDCG@10 "
        "| test hybrid nDCG@10 | tune min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    common = {"epochs": args.epochs, "max_minutes": args.max_minutes, "max_pairs": args.max_pairs}
    for name in args.sets.split(","):
        folder = root / name
        if not folder.is_dir():
            print(f"skip {name}: {folder} missing")
            continue
        full = load_beir(folder)
        data = sample(full, args.docs, args.queries)
        qids = sorted(data.queries)
        random.Random(1).shuffle(qids)
        half = len(qids) // 2
        use_q, test_q = sorted(qids[:half]), sorted(qids[half:])
        test = subset(data, test_q)
        print(
            f"{name}: {len(data.corpus)} of {len(full.corpus)} documents, {len(qids)} of {len(full.queries)} queries "
            f"({len(use_q)} use, {len(test_q)} test), epochs {args.epochs:g}, MiniLM",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="rag-tune-gate-") as tmp:
            base = Path(tmp) / "base"
            t0 = time.perf_counter()
            build_index(data, RagConfig(index=base, embedder="minilm", quiet=True))[0].close()
            print(f"{name}: indexed in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
            runs: list[tuple[str, str, dict[str, Any]]] = [
                ("default", "rag tune --apply (cloze pairs)", {"pairs_from": "cloze"}),
            ]
            if args.forced:
                forced = {"pairs_from": "cloze", "accept_proxy": True}
                runs.append(("forced", "--apply --accept-proxy (old default)", forced))
            runs.append(("from-use", f"--from-use ({len(use_q)} recorded)", {"from_use": True}))
            runs.append(("pairs", f"--pairs ({len(use_q)} queries)", {"pairs_file": Path(tmp) / "pairs.jsonl"}))
            write_pairs(Path(tmp) / "pairs.jsonl", data, use_q)
            for key, label, options in runs:
                index = Path(tmp) / key
                shutil.copytree(base, index)
                if key == "from-use":
                    record_use(index, data, use_q)
                r = tune_once(index, test, **common, **options)
                results[f"{name}/{key}"] = r
                lines.append(row(name, label, r))
                print(lines[-1], flush=True)
                shutil.rmtree(index, ignore_errors=True)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
