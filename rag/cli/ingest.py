"""`rag ingest`: add or update files and folders in the index (locally or on a Ray cluster)."""

from __future__ import annotations

import argparse

from rag.cli.options import (
    Subparsers,
    add_config_options,
    add_embedder,
    add_embedding_options,
    add_metadata,
    add_reading_options,
    key_value,
    open_pipeline,
)
from rag.cli.output import print_ingest_report, to_json


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("ingest", help="add or update files and folders in the index")
    p.add_argument("paths", nargs="+", help="files or folders")
    add_embedder(p, "embedder: auto (default), minilm, e5-multilingual, a folder or hub id")
    p.add_argument("--sync", action="store_true", help="also remove documents whose files under PATHS are gone")
    p.add_argument("--chunk-size", type=int, dest="chunk_size", help="chunk size in embedder tokens (default 200)")
    p.add_argument("--chunk-overlap", type=int, dest="chunk_overlap", help="overlap in tokens (default 30)")
    add_reading_options(p)
    add_metadata(p, "metadata stored with every document of this ingest, for --filter meta.KEY=VALUE (repeatable)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="read, chunk and embed on a Ray cluster (auto, ray://head:10001); without ADDRESS a local Ray instance",
    )
    p.add_argument("--ray-workers", type=int, default=0, dest="ray_workers", help="Ray model actors (default: auto)")
    add_embedding_options(p)
    add_config_options(p)
    p.set_defaults(func=ingest)


def ingest(args: argparse.Namespace) -> int:
    metadata = dict(key_value(item, "--metadata") for item in args.metadata)
    report = open_pipeline(args).ingest(
        args.paths, sync=args.sync, metadata=metadata, ray=args.ray, ray_workers=args.ray_workers
    )
    if args.json:
        print(to_json(report))
    else:
        print_ingest_report(report)
    return 0
