"""Command line: parse -> construct RagPipeline -> one call -> print. Nothing here reaches past the pipeline.

``build_parser`` assembles the subcommands from their modules (each one's ``register`` adds its commands and sets
``func``); ``main`` sets up logging, runs ``args.func(args)`` and turns a RagError into ``rag: error: ...`` and exit
status 2. Modules that pull in models or servers are imported only by the command that needs them, so ``rag
--help`` stays instant.

The terminal is the user's, not the libraries': without ``-v`` their warnings and progress bars are silenced
(``quiet_libraries``), so a first run shows rag's own notice and bar per preparation step; a reader that closes the
pipe early (``rag search ... | head -5``) ends the command quietly with status 0; and only the commands that read
standard input (``chat``, ``mcp``) keep it: every other command runs with /dev/null as its stdin, so neither a
library nor a child process it starts can swallow the lines of a shell loop (``while read q; do rag ask "$q";
done < questions.txt``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence

from rag.cli import admin, evaluate, ingest, mcp, query, serve, tune, watch
from rag.errors import RagError

# In the order `rag --help` lists the commands: ingest, ask, chat, search, eval, info, verify, compact, remove, tune,
# serve, mcp, watch.
COMMAND_MODULES = (ingest, query, evaluate, admin, tune, serve, mcp, watch)
NOISY_LOGGERS = ("httpx", "sentence_transformers", "transformers", "filelock", "urllib3", "faiss", "watchfiles")
# Libraries whose warnings are noise to a user (model loading, tracing, quantization): ERROR unless -v.
LIBRARY_LOGGERS = ("transformers", "nncf", "openvino", "optimum", "torch", "onnxruntime", "huggingface_hub")
# Read before those libraries are imported (they configure their own loggers and bars from them); children inherit.
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
# The commands that read standard input: `rag chat` (the questions), `rag mcp` (the protocol).
STDIN_COMMANDS = frozenset({"chat", "mcp"})


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


def quiet_libraries() -> None:
    """Silence the libraries underneath (their Python warnings, their loggers' warnings, Hugging Face progress
    bars) for this process and its children; rag's own log lines and bars stay. Not called with ``-v``."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


@contextlib.contextmanager
def stdin_detached(keep: bool) -> Iterator[None]:
    """File descriptor 0 (and ``sys.stdin``) on /dev/null while the command runs, unless ``keep``; restored after,
    so an in-process caller (the tests) gets its own stdin back."""
    if keep:
        yield
        return
    try:
        saved = os.dup(0)
    except OSError:  # no stdin at all: nothing to protect
        yield
        return
    null = os.open(os.devnull, os.O_RDONLY)
    stdin = sys.stdin
    try:
        os.dup2(null, 0)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (closed below)
        yield
    finally:
        sys.stdin.close()
        sys.stdin = stdin
        os.dup2(saved, 0)
        os.close(saved)
        os.close(null)


def _stdout_gone() -> None:
    """stdout's reader went away: point fd 1 at /dev/null so the interpreter's last flush cannot fail again."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if not args.verbose:
        quiet_libraries()
    start = time.perf_counter()
    try:
        with stdin_detached(keep=args.command in STDIN_COMMANDS):
            status = run(args)
            sys.stdout.flush()  # a reader that closed the pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:  # `rag search ... | head -5`: the reader has what it wanted
        _stdout_gone()
        return 0
    except RagError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    finally:
        logging.getLogger(__name__).debug("done in %.2f s", time.perf_counter() - start)
