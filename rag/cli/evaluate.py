"""`rag eval`: build a temporary index of a BEIR folder and print retrieval (and answer) metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.cli.options import (
    Subparsers,
    add_config_options,
    add_embedder,
    add_embedding_options,
    add_generator,
    add_rerank,
    add_retrieval,
)
from rag.cli.output import print_eval_report, to_json
from rag.config import RagConfig

# The settings eval takes from its options; the rest come from --config and $RAG_*. The index is a temporary one.
EVAL_SETTINGS = ("embedder", "retrieval", "rerank", "generator")


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="build a temporary index of a BEIR folder and print retrieval/answer metrics"
    )
    p.add_argument("dataset", type=Path, help="folder with corpus.jsonl, queries.jsonl, qrels/*.tsv [, qa.jsonl]")
    p.add_argument("--split", help="qrels split (default: test, or the only one)")
    add_embedder(p, "embedder (default auto)")
    add_retrieval(p)
    add_rerank(p, "cross-encoder model folder to rerank with")
    p.add_argument("--max-queries", type=int, dest="max_queries", help="score only the first N queries")
    p.add_argument(
        "--answers", type=int, default=0, dest="qa_limit", help="also answer N questions of qa.jsonl (EM/F1)"
    )
    add_generator(p, "generator for --answers (default: the configured one, qwen2.5-1.5b unless set)")
    add_embedding_options(p)
    add_config_options(p)
    p.set_defaults(func=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    from rag.evaluation import evaluate as run_evaluation

    settings = {k: getattr(args, k, None) for k in EVAL_SETTINGS}
    config = RagConfig.load(args.config, quiet=args.quiet or None, **settings)
    report = run_evaluation(
        args.dataset, config, split=args.split, max_queries=args.max_queries, qa_limit=args.qa_limit
    )
    if args.json:
        print(to_json(report))
    else:
        print_eval_report(report)
    return 0
