"""Retrieval quality side by side: BM25 only, dense only, hybrid (RRF), hybrid + rerank, on every BEIR set
under the shared data folder (default ../shared/data, or $RAG_EVAL_DATA). One index per set and embedder;
the configurations reuse it.

    python benchmarks/quality.py [--sets scifact,xquad/beir_zh] [--embedder auto] [--rerank MODEL]
                                 [--precision auto|float32|bfloat16] [--max-queries N] [--json out.json]
                                 [--engines tantivy,fts5]

``--engines tantivy,fts5`` scores the lexical and hybrid rows twice over the same chunks and vectors: with the
tantivy engine, then with the SQLite FTS5 BM25 of indexes made before it (a twin of the index, see _lexical.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from _lexical import fts5_twin

from rag.config import RagConfig
from rag.evaluation import build_index, load_beir, score_retrieval
from rag.pipeline import RagPipeline

SETS = ["scifact", "xquad/beir_en", "xquad/beir_zh", "cmrc2018/beir_trial", "cmrc2018/beir_dev"]
MODES = ["lexical", "dense", "hybrid"]


def data_root() -> Path:
    env = os.environ.get("RAG_EVAL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--embedder", default="auto")
    parser.add_argument("--precision", default="auto", help="embedding precision: auto, float32, bfloat16")
    parser.add_argument("--rerank", default=None, help="cross-encoder folder for the hybrid+rerank row")
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--weights", default="1.0,1.0", help="dense,lexical RRF weights for hybrid")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--engines", default="tantivy", help="lexical engines to score: tantivy, fts5 (older)")
    args = parser.parse_args()
    root = data_root()
    if not root.is_dir():
        print(f"no evaluation data at {root} (set RAG_EVAL_DATA)", file=sys.stderr)
        return 2
    dense_w, lexical_w = (float(x) for x in args.weights.split(","))
    rows = []
    for name in args.sets.split(","):
        folder = root / name
        if not folder.is_dir():
            print(f"skipping {name}: not found under {root}", file=sys.stderr)
            continue
        data = load_beir(folder)
        with tempfile.TemporaryDirectory() as tmp:
            config = RagConfig(index=Path(tmp) / "i", embedder=args.embedder, precision=args.precision, quiet=True)
            pipeline, seconds = build_index(data, config)
            info = pipeline.info()
            modes = [*MODES, "hybrid+rerank"] if args.rerank else MODES
            runs = [(engine, mode) for engine in args.engines.split(",") for mode in modes]
            runs = [(e, m) for e, m in runs if e == runs[0][0] or m != "dense"]  # dense does not use the engine
            for engine, mode in runs:
                if engine == "fts5" and config.index.name != "fts5":
                    pipeline.close()
                    fts5_twin(config.index, Path(tmp) / "fts5")
                    config = config.replace(index=Path(tmp) / "fts5")
                    pipeline = RagPipeline(config)
                retrieval = mode.split("+")[0]
                pipeline.config = config.replace(
                    retrieval=retrieval,
                    rerank=args.rerank if "rerank" in mode else None,
                    dense_weight=dense_w,
                    lexical_weight=lexical_w,
                )
                s = score_retrieval(pipeline, data, args.max_queries)
                label = mode if len(runs) == len(modes) else f"{mode} ({engine})"
                rows.append({"set": name, "embedder": info.embedder, "config": label, "index_s": seconds, **vars(s)})
                print(
                    f"{name:<22}{info.embedder:<16}{label:<22}nDCG@10 {s.ndcg_at_10:.4f}  R@10 {s.recall_at_10:.4f}  "
                    f"R@100 {s.recall_at_100:.4f}  MRR@10 {s.mrr_at_10:.4f}  p50 {s.latency_p50_ms:.1f} ms  "
                    f"p95 {s.latency_p95_ms:.1f} ms",
                    flush=True,
                )
            pipeline.close()
    print()
    print("| set | embedder | config | nDCG@10 | R@10 | R@100 | MRR@10 | p50 ms | p95 ms | queries |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['set']} | {r['embedder']} | {r['config']} | {r['ndcg_at_10']:.4f} | {r['recall_at_10']:.4f} | "
            f"{r['recall_at_100']:.4f} | {r['mrr_at_10']:.4f} | {r['latency_p50_ms']:.1f} | "
            f"{r['latency_p95_ms']:.1f} | {r['queries']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
