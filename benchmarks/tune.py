"""`rag tune` measured on queries training never saw: nDCG@10 (dense and hybrid) of the shared BEIR queries
before and after tuning MiniLM on the corpus alone (generated or inverse-cloze pairs, no queries), and the
user-pairs path: half of the queries (their qrels passages) as training pairs, the other half scored.

    python benchmarks/tune.py [--sets scifact,xquad/beir_en,xquad/beir_zh] [--pairs-from cloze|generated|auto]
                              [--max-pairs 1000] [--max-minutes 15] [--epochs E] [--learning-rate R]
                              [--user-pairs] [--no-corpus] [--json out.json]

The tuned model is applied whatever the held-out verdict (``margin=-1``) so that the shared queries can be scored
after; the verdict `rag tune` would have given is printed beside them. Times: wall and CPU (all threads) minutes.
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
from rag.pipeline import RagPipeline

SETS = ["scifact", "xquad/beir_en", "xquad/beir_zh"]


def data_root() -> Path:
    env = os.environ.get("RAG_EVAL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def scores(pipeline: RagPipeline, data: BeirSet) -> dict[str, float]:
    out = {}
    for mode in ("dense", "hybrid"):
        pipeline.config = pipeline.config.replace(retrieval=mode)
        out[mode] = score_retrieval(pipeline, data).ndcg_at_10
    return out


def subset(data: BeirSet, qids: list[str]) -> BeirSet:
    return replace(data, queries={q: data.queries[q] for q in qids}, qrels={q: data.qrels[q] for q in qids})


def tune_once(index: Path, data: BeirSet, config: RagConfig, **options: Any) -> dict[str, Any]:
    pipeline = RagPipeline(replace_index(config, index))
    before = scores(pipeline, data)
    wall, cpu = time.perf_counter(), time.process_time()
    report = pipeline.tune(margin=-1.0, apply=True, accept_proxy=True, **options)
    wall, cpu = (time.perf_counter() - wall) / 60, (time.process_time() - cpu) / 60
    after = scores(pipeline, data)
    problems = pipeline.verify()
    return {
        "pairs_source": report.pairs_source,
        "pairs": report.pairs,
        "held_out": report.held_out,
        "questions_written": report.questions_written,
        "steps": report.steps,
        "before": before,
        "after": after,
        "held_out_before": report.before.ndcg_at_10,
        "held_out_after": report.after.ndcg_at_10,
        "verdict": "keep" if report.after.ndcg_at_10 >= report.before.ndcg_at_10 + 0.005 else "refuse",
        "wall_minutes": wall,
        "cpu_minutes": cpu,
        "train_minutes": report.train_seconds / 60,
        "verified": not problems,
        "queries": len(data.queries),
    }


def replace_index(config: RagConfig, index: Path) -> RagConfig:
    return config.replace(index=index)


def row(name: str, path: str, r: dict[str, Any]) -> str:
    b, a = r["before"], r["after"]
    return (
        f"| {name} | {path} | {r['pairs']} ({r['pairs_source']}) | {r['queries']} "
        f"| {b['dense']:.3f} -> {a['dense']:.3f} ({a['dense'] - b['dense']:+.3f}) "
        f"| {b['hybrid']:.3f} -> {a['hybrid']:.3f} ({a['hybrid'] - b['hybrid']:+.3f}) "
        f"| {r['held_out_before']:.3f} -> {r['held_out_after']:.3f} ({r['verdict']}) | {r['train_minutes']:.1f} "
        f"| {r['wall_minutes']:.1f} / {r['cpu_minutes']:.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--pairs-from", default="cloze", choices=("auto", "generated", "cloze"))
    parser.add_argument("--max-pairs", type=int, default=1000)
    parser.add_argument("--max-minutes", type=float, default=15.0)
    parser.add_argument("--generate-minutes", type=float, default=8.0)
    parser.add_argument("--epochs", type=float, default=0.0, help="0: rag tune's recipe for the kind of pairs")
    parser.add_argument("--learning-rate", type=float, default=0.0, help="0: rag tune's recipe for the kind of pairs")
    parser.add_argument("--user-pairs", action="store_true", help="also the user-pairs path (half the queries)")
    parser.add_argument("--no-corpus", action="store_true", help="skip the corpus-only path")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    root = data_root()
    results: dict[str, Any] = {}
    lines = [
        "| set | path | training pairs | scored queries | dense nDCG@10 | hybrid nDCG@10 | held-out nDCG@10 "
        "(verdict) | train min | tune wall / CPU min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    options = {
        "max_pairs": args.max_pairs,
        "max_minutes": args.max_minutes,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
    }
    for name in args.sets.split(","):
        folder = root / name
        if not folder.is_dir():
            print(f"skip {name}: {folder} missing")
            continue
        data = load_beir(folder)
        with tempfile.TemporaryDirectory(prefix="rag-tune-bench-") as tmp:
            base = Path(tmp) / "base"
            config = RagConfig(index=base, embedder="minilm", quiet=True)
            t0 = time.perf_counter()
            build_index(data, config)[0].close()
            print(f"{name}: indexed in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
            if args.user_pairs:
                shutil.copytree(base, Path(tmp) / "user")
            if not args.no_corpus:
                r = tune_once(
                    base,
                    data,
                    config,
                    pairs_from=args.pairs_from,
                    generate_minutes=args.generate_minutes,
                    **options,
                )
                results[f"{name}/corpus"] = r
                lines.append(row(name, "corpus only", r))
                print(lines[-1], flush=True)
            if args.user_pairs:
                qids = sorted(data.queries)
                random.Random(0).shuffle(qids)
                half = len(qids) // 2
                train_q, test_q = qids[:half], qids[half:]
                pairs = Path(tmp) / "pairs.jsonl"
                with open(pairs, "w", encoding="utf-8") as fh:
                    for q in train_q:
                        for doc in sorted(data.qrels[q]):
                            title, text = data.corpus[doc]
                            passage = f"{title} {text}".strip()
                            record = {"query": data.queries[q], "passage": passage, "path": DOC_PREFIX + doc}
                            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                r = tune_once(Path(tmp) / "user", subset(data, test_q), config, pairs_file=pairs, **options)
                results[f"{name}/user-pairs"] = r
                lines.append(row(name, f"user pairs ({half} queries)", r))
                print(lines[-1], flush=True)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
