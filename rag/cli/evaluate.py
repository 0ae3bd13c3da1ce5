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
from rag.config import AnswerSettings, RagConfig

# The settings eval takes from its options; the rest come from --config and $RAG_*. The index is a temporary one.
EVAL_SETTINGS = ("embedder", "retrieval", "rerank", "generator")


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="build a temporary index of a BEIR folder and print retrieval/answer metrics"
    )
    p.add_argument(
        "dataset",
        type=Path,
        help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv [, qa.jsonl]), or with --questions a folder of "
        "documents",
    )
    p.add_argument(
        "--questions",
        type=Path,
        help="a JSON Lines file of questions about the documents in DATASET (id, question, key_facts, sources: "
        "the docsqa layout): ingest the folder, answer each, print key facts present, sources cited and found",
    )
    p.add_argument("--split", help="qrels split (default: test, or the only one)")
    add_embedder(p, "embedder (default auto)")
    add_retrieval(p)
    add_rerank(p, "cross-encoder model folder to rerank with")
    p.add_argument("--max-queries", type=int, dest="max_queries", help="score only the first N queries")
    p.add_argument(
        "--answers", type=int, default=0, dest="qa_limit", help="also answer N questions of qa.jsonl (EM/F1)"
    )
    add_generator(p, f"generator for --answers (default: the configured one, {AnswerSettings().generator} unless set)")
    add_embedding_options(p)
    add_config_options(p)
    p.set_defaults(func=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    from rag.evaluation import evaluate as run_evaluation

    settings = {k: getattr(args, k, None) for k in EVAL_SETTINGS}
    config = RagConfig.load(args.config, quiet=args.quiet or None, **settings)
    if args.questions is not None:
        return evaluate_folder(args, config)
    report = run_evaluation(
        args.dataset, config, split=args.split, max_queries=args.max_queries, qa_limit=args.qa_limit
    )
    if args.json:
        print(to_json(report))
    else:
        print_eval_report(report)
    return 0


def evaluate_folder(args: argparse.Namespace, config: RagConfig) -> int:
    """``rag eval FOLDER --questions FILE``: a temporary index of the folder, every question answered and scored."""
    import tempfile

    from rag.errors import RagError
    from rag.folder_eval import load_questions, score_folder, table
    from rag.pipeline import RagPipeline

    if not args.dataset.is_dir():
        raise RagError(f"{args.dataset} is not a folder: give the folder of documents the questions are about")
    records = load_questions(args.questions)
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        pipeline = RagPipeline(config.replace(index=Path(tmp) / "index"))
        try:
            report = score_folder(pipeline, args.dataset, records, k=config.retrieve.top_k)
        finally:
            pipeline.close()
    print(to_json(report) if args.json else "\n".join(table(report)))
    return 0
