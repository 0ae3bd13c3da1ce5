"""Command line: parse -> construct RagPipeline -> one call -> print. Nothing here reaches past the pipeline.

``build_parser`` assembles the subcommands from their modules (each one's ``register`` adds its commands and sets
``func``); ``main`` sets up logging, runs ``args.func(args)`` and turns a RagError into ``rag: error: ...`` and exit
status 2. Modules that pull in models or servers are imported only by the command that needs them, so ``rag
--help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from rag.cli import admin, evaluate, ingest, mcp, query, serve, tune, watch
from rag.errors import RagError

# In the order `rag --help` lists the commands: ingest, ask, chat, search, eval, info, verify, compact, remove, tune,
# serve, mcp, watch.
COMMAND_MODULES = (ingest, query, evaluate, admin, tune, serve, mcp, watch)
NOISY_LOGGERS = ("httpx", "sentence_transformers", "transformers", "filelock", "urllib3", "faiss", "watchfiles")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Answer questions over your documents, with citations.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit status."""
    status: int = args.func(args)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    start = time.perf_counter()
    try:
        return run(args)
    except RagError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    finally:
        logging.getLogger(__name__).debug("done in %.2f s", time.perf_counter() - start)
