"""`rag tune`: adapt the index's embedder to its documents, scored on held-out pairs; `--apply` keeps a better one
(gated on real questions: the user's pairs or recorded ones; a gate of proxy pairs alone needs `--accept-proxy`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.cli.options import Subparsers, add_config_options, add_generator, open_pipeline
from rag.cli.output import print_tune_report, to_json


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "tune",
        help="train the embedder on your documents; scored on held-out pairs, applied with --apply when better "
        "on real questions (your --pairs, or --from-use: questions recorded with helpful answers)",
    )
    p.add_argument(
        "--pairs",
        type=Path,
        help="training pairs: a JSONL file of {query, passage[, path]} or a BEIR folder (queries + qrels; a dev "
        "split is the held-out set). Default: questions generated from the index's chunks",
    )
    p.add_argument(
        "--from-use",
        action="store_true",
        help="train on questions recorded in real use (setting record_questions) whose answers were marked helpful: "
        "cited passages as positives, retrieved but uncited ones as negatives; gated on a held-out quarter of them",
    )
    p.add_argument(
        "--pairs-from",
        choices=("auto", "generated", "cloze"),
        default="auto",
        help="without --pairs: generated (questions the local generator writes), cloze (a sentence of a chunk as "
        "its query), auto (generated within --generate-minutes, topped up with cloze; cloze when no generator)",
    )
    p.add_argument("--max-pairs", type=int, default=2000, help="training pairs at most (default 2000)")
    p.add_argument(
        "--epochs", type=float, default=0.0, help="passes over the pairs (default: 3 for --pairs, else 1)"
    )
    p.add_argument(
        "--learning-rate", type=float, default=0.0, help="training learning rate (default: 1e-4 for --pairs, else 2e-5)"
    )
    p.add_argument("--max-minutes", type=float, default=10.0, help="training time limit (default 10; 0: none)")
    p.add_argument("--generate-minutes", type=float, default=6.0, help="question generation time budget (default 6)")
    p.add_argument("--batch-size", dest="tune_batch_size", type=int, default=32, help="training batch (default 32)")
    p.add_argument("--margin", type=float, default=0.005, help="held-out dense nDCG@10 gain needed to keep the model")
    p.add_argument("--apply", action="store_true", help="re-embed the index with the tuned model when it is better")
    p.add_argument(
        "--accept-proxy",
        action="store_true",
        help="with --apply: also apply a model judged only on generated or cloze pairs (they do not predict real "
        "questions: on SciFact such a tune made real questions worse while its held-out pairs said better)",
    )
    add_generator(p, "generator that writes the training questions (default: the configured one)")
    add_config_options(p)
    p.set_defaults(func=tune)


def tune(args: argparse.Namespace) -> int:
    report = open_pipeline(args).tune(
        pairs_file=args.pairs,
        pairs_from=args.pairs_from,
        max_pairs=args.max_pairs,
        generate_minutes=args.generate_minutes,
        margin=args.margin,
        apply=args.apply,
        accept_proxy=args.accept_proxy,
        from_use=args.from_use,
        quiet=bool(args.quiet),
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.tune_batch_size,
        max_minutes=args.max_minutes,
    )
    if args.json:
        print(to_json(report))
    else:
        print_tune_report(report)
    return 0
