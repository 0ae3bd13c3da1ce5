"""`rag serve`: serve the index over HTTP (JSON API, uploads, OpenAI-compatible /v1, MCP tools at /mcp)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.cli.options import (
    Subparsers,
    add_config_options,
    add_generator_options,
    add_record_questions,
    add_relevance_options,
    open_pipeline,
)


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve the index over HTTP (JSON API, uploads, OpenAI-compatible /v1)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--api-key",
        dest="api_key",
        help="require 'Authorization: Bearer KEY' (default $RAG_API_KEY); required off loopback",
    )
    p.add_argument("--max-concurrency", type=int, dest="max_concurrency", help="model requests at once (default 16)")
    p.add_argument("--max-body-kb", type=int, dest="max_body_kb", help="JSON request body limit (default 1024)")
    p.add_argument("--max-upload-mb", type=float, dest="max_upload_mb", help="upload request limit (default 50)")
    p.add_argument(
        "--mcp-allow-writes",
        action="store_true",
        dest="mcp_allow_writes",
        help="let MCP clients at /mcp add files (from this machine's disk) and remove documents",
    )
    p.add_argument("--no-mcp", action="store_false", dest="mcp", help="do not serve the MCP tools at /mcp")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        dest="allowed_hosts",
        metavar="NAME",
        help="another Host name clients reach the server by (a DNS name, a proxy); /mcp refuses unknown Hosts",
    )
    p.add_argument(
        "--watch",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="keep this file or folder in step with the index while serving, as `rag watch` (repeatable)",
    )
    add_relevance_options(p)
    add_generator_options(p, stream=False)
    add_record_questions(p)
    add_config_options(p)
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    # From rag.serve.app, where serve is defined, so a test that replaces rag.serve.app.serve is obeyed.
    from rag.serve.app import ServerSettings, check_bind
    from rag.serve.app import serve as run_server

    settings = ServerSettings.from_env(
        api_key=args.api_key,
        max_concurrency=args.max_concurrency,
        max_body_bytes=args.max_body_kb * 1024 if args.max_body_kb is not None else None,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024) if args.max_upload_mb is not None else None,
        mcp=args.mcp,
        mcp_allow_writes=args.mcp_allow_writes,
        allowed_hosts=tuple(args.allowed_hosts),
        watch=tuple(args.watch),
    )
    check_bind(args.host, settings)  # before any model loads: refuse at once
    pipeline = open_pipeline(args)
    if args.watch:  # a path that cannot be watched is refused before the server starts
        from rag.watch import resolve_roots

        resolve_roots(args.watch, pipeline.index_path)
    level = "debug" if args.verbose else "warning" if args.quiet else "info"
    run_server(pipeline, host=args.host, port=args.port, settings=settings, log_level=level)
    return 0
