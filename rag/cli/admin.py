"""`rag info`, `rag verify`, `rag compact` and `rag remove`: look after an existing index."""

from __future__ import annotations

import argparse

from rag.cli.options import Subparsers, add_config_options, add_index_type, open_pipeline
from rag.cli.output import print_info, print_problems, to_json


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("info", help="show the index: model, dimension, documents, chunks, size")
    add_config_options(p)
    p.set_defaults(func=info)

    p = subparsers.add_parser("verify", help="check the index for consistency; exit 1 when problems are found")
    add_config_options(p)
    p.set_defaults(func=verify)

    p = subparsers.add_parser("compact", help="rebuild the vector file and vacuum the database (after many deletes)")
    add_index_type(p, "convert to this index type")
    add_config_options(p)
    p.set_defaults(func=compact)

    p = subparsers.add_parser("remove", help="delete documents (files, or everything under a folder) from the index")
    p.add_argument("paths", nargs="+")
    add_config_options(p)
    p.set_defaults(func=remove)


def info(args: argparse.Namespace) -> int:
    index_info = open_pipeline(args).info()
    if args.json:
        print(to_json(index_info))
    else:
        print_info(index_info)
    return 0


def verify(args: argparse.Namespace) -> int:
    """Exit status 1 when the index is damaged; leftovers of an interrupted write are notes (exit 0)."""
    report = open_pipeline(args).verify_report()
    print_problems(report.problems, args.json, report.notes)
    return 0 if report.ok else 1


def compact(args: argparse.Namespace) -> int:
    index_info = open_pipeline(args).compact()
    print(to_json(index_info) if args.json else f"compacted: {index_info.chunks} chunks, {index_info.size_bytes} bytes")
    return 0


def remove(args: argparse.Namespace) -> int:
    n = open_pipeline(args).remove(args.paths)
    print(f"removed {n} document(s)")
    return 0
