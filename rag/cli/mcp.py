"""`rag mcp`: serve the index to agents over stdio (Model Context Protocol), as desktop clients launch it.

stdout carries the protocol and nothing else: logs go to stderr. The MCP code (and the SDK) is imported only when
the command runs, so `rag --help` stays instant.
"""

from __future__ import annotations

import argparse

from rag.cli.options import (
    Subparsers,
    add_config_options,
    add_generator_options,
    add_record_questions,
    add_relevance_options,
    open_pipeline,
)


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "mcp", help="serve the index to agents over stdio (MCP tools: search, ask, get_document, ...)"
    )
    p.add_argument(
        "--allow-writes",
        action="store_true",
        dest="allow_writes",
        help="enable the write tools: ingest_paths (files on this machine) and remove_document",
    )
    add_relevance_options(p)
    add_generator_options(p, stream=False)
    add_record_questions(p)
    add_config_options(p)
    p.set_defaults(func=mcp)


def mcp(args: argparse.Namespace) -> int:
    from rag.mcp import run_stdio

    # No progress bars: a client shows the server's stderr as its log.
    run_stdio(open_pipeline(args, quiet=True), allow_writes=args.allow_writes)
    return 0
