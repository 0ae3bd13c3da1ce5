"""`rag ask`, `rag chat` and `rag search`: answer a question, a conversation read from stdin, or show the passages
a query finds."""

from __future__ import annotations

import argparse
import sys

from rag.cli.options import (
    Subparsers,
    add_config_options,
    add_generator_options,
    add_query_options,
    add_record_questions,
    add_relevance_options,
    open_pipeline,
)
from rag.cli.output import print_hits, to_json


def _add_question(p: argparse.ArgumentParser) -> None:
    p.add_argument("question")


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("ask", help="answer a question from the index, with citations")
    _add_question(p)
    add_query_options(p)
    add_generator_options(p)
    add_record_questions(p)
    add_config_options(p)
    p.set_defaults(func=ask)

    p = subparsers.add_parser("chat", help="answer questions read from stdin, one per line, as a conversation")
    add_relevance_options(p)
    add_generator_options(p)
    add_record_questions(p)
    add_config_options(p)
    p.set_defaults(func=chat)

    p = subparsers.add_parser("search", help="print the top passages for a query, with scores and sources")
    _add_question(p)
    add_query_options(p)
    add_config_options(p)
    p.set_defaults(func=search)


def ask(args: argparse.Namespace) -> int:
    from rag.cli.chat import ask_once
    from rag.filters import Filters

    filters = Filters.parse(args.filters)
    ask_once(open_pipeline(args), args.question, stream=args.stream, as_json=args.json, filters=filters or None)
    return 0


def chat(args: argparse.Namespace) -> int:
    from rag.cli.chat import chat as chat_loop

    chat_loop(open_pipeline(args), sys.stdin, stream=args.stream, as_json=args.json, interactive=sys.stdin.isatty())
    return 0


def search(args: argparse.Namespace) -> int:
    from rag.filters import Filters

    hits = open_pipeline(args).retrieve(args.question, filters=Filters.parse(args.filters))
    if args.json:
        print(to_json(hits))
    else:
        print_hits(hits)
    return 0
