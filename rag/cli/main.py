"""Command line: parse -> construct RagPipeline -> one call -> print. Nothing here reaches past the pipeline."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from rag.config import INDEX_TYPES, PRECISIONS, RagConfig
from rag.errors import RagError


def _embed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="embedding precision (default auto: bfloat16 on CPUs with native bf16, float16 on CUDA, else float32)",
    )
    p.add_argument("--batch-size", type=int, dest="batch_size", help="passages per embedding call (default 32)")
    p.add_argument(
        "--index-type",
        choices=INDEX_TYPES,
        dest="index_type",
        help="vector index: auto (exact below 100k vectors, IVF above; default), flat, ivf or hnsw; kept for the "
        "index's later ingests",
    )


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=Path, help="index folder (default: $RAG_INDEX or indexes/default)")
    p.add_argument("--config", type=Path, help="TOML file with settings (default: ./rag.toml if present)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info logs")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logs")


def _query_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("question")
    p.add_argument("-k", "--top-k", type=int, dest="top_k", help="passages to retrieve (default 4)")
    p.add_argument("--retrieval", choices=["hybrid", "dense", "lexical"], help="retrieval mode (default hybrid)")
    p.add_argument("--min-score", type=float, dest="min_score", help="relevance threshold (cosine)")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        dest="filters",
        metavar="KEY=VALUE",
        help="only passages matching: path=GLOB, type=markdown,pdf, lang=zh, meta.NAME=VALUE (repeatable)",
    )
    p.add_argument("--rerank", help="cross-encoder model folder (or hub id) to rerank the fused candidates")


def _generator_args(p: argparse.ArgumentParser, stream: bool = True) -> None:
    p.add_argument(
        "--generator",
        help="generator: smollm2 (default), extractive (passage sentences, no model), openai (an OpenAI-compatible "
        "server: Ollama, vLLM, llama.cpp server, a hosted API), or a local model folder",
    )
    p.add_argument("--base-url", dest="base_url", help="openai: server URL, e.g. http://localhost:11434/v1")
    p.add_argument(
        "--model", dest="llm_model", help="openai: model name (API key from $RAG_API_KEY_OPENAI or $OPENAI_API_KEY)"
    )
    p.add_argument("--timeout", type=float, dest="request_timeout", help="openai: seconds per request (default 60)")
    p.add_argument(
        "--grounding",
        choices=["auto", "snap", "check"],
        help="how answers are checked against the passages: the backend's own (auto), snap to passage text, or "
        "check citations and keep the text",
    )
    if stream:
        p.add_argument("--stream", action="store_true", help="print the answer as it is written, then the sources")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Answer questions over your documents, with citations.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add or update files and folders in the index")
    p.add_argument("paths", nargs="+", help="files or folders")
    p.add_argument(
        "--model", dest="embedder", help="embedder: auto (default), minilm, e5-multilingual, a folder or hub id"
    )
    p.add_argument("--sync", action="store_true", help="also remove documents whose files under PATHS are gone")
    p.add_argument("--chunk-size", type=int, dest="chunk_size", help="chunk size in embedder tokens (default 200)")
    p.add_argument("--chunk-overlap", type=int, dest="chunk_overlap", help="overlap in tokens (default 30)")
    p.add_argument("--max-file-mb", type=float, dest="max_file_mb", help="skip files larger than this (default 50)")
    p.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata stored with every document of this ingest, for --filter meta.KEY=VALUE (repeatable)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="read, chunk and embed on a Ray cluster (auto, ray://head:10001); without ADDRESS a local Ray instance",
    )
    p.add_argument("--ray-workers", type=int, default=0, dest="ray_workers", help="Ray model actors (default: auto)")
    _embed_args(p)
    _config_args(p)

    p = sub.add_parser("ask", help="answer a question from the index, with citations")
    _query_args(p)
    _generator_args(p)
    _config_args(p)

    p = sub.add_parser("chat", help="answer questions read from stdin, one per line, as a conversation")
    p.add_argument("-k", "--top-k", type=int, dest="top_k", help="passages to retrieve (default 4)")
    p.add_argument("--min-score", type=float, dest="min_score", help="relevance threshold (cosine)")
    _generator_args(p)
    _config_args(p)

    p = sub.add_parser("search", help="print the top passages for a query, with scores and sources")
    _query_args(p)
    _config_args(p)

    p = sub.add_parser("eval", help="build a temporary index of a BEIR folder and print retrieval/answer metrics")
    p.add_argument("dataset", type=Path, help="folder with corpus.jsonl, queries.jsonl, qrels/*.tsv [, qa.jsonl]")
    p.add_argument("--split", help="qrels split (default: test, or the only one)")
    p.add_argument("--model", dest="embedder", help="embedder (default auto)")
    p.add_argument("--retrieval", choices=["hybrid", "dense", "lexical"], help="retrieval mode (default hybrid)")
    p.add_argument("--rerank", help="cross-encoder model folder to rerank with")
    p.add_argument("--max-queries", type=int, dest="max_queries", help="score only the first N queries")
    p.add_argument(
        "--answers", type=int, default=0, dest="qa_limit", help="also answer N questions of qa.jsonl (EM/F1)"
    )
    p.add_argument("--generator", help="generator for --answers (default smollm2)")
    _embed_args(p)
    _config_args(p)

    p = sub.add_parser("info", help="show the index: model, dimension, documents, chunks, size")
    _config_args(p)

    p = sub.add_parser("verify", help="check the index for consistency; exit 1 when problems are found")
    _config_args(p)

    p = sub.add_parser("compact", help="rebuild the vector file and vacuum the database (after many deletes)")
    p.add_argument(
        "--index-type", choices=INDEX_TYPES, dest="index_type", help="convert to this index type"
    )
    _config_args(p)

    p = sub.add_parser("remove", help="delete documents (files, or everything under a folder) from the index")
    p.add_argument("paths", nargs="+")
    _config_args(p)

    p = sub.add_parser("serve", help="serve the index over HTTP (JSON API, uploads, OpenAI-compatible /v1)")
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
    p.add_argument("-k", "--top-k", type=int, dest="top_k", help="passages to retrieve (default 4)")
    p.add_argument("--min-score", type=float, dest="min_score", help="relevance threshold (cosine)")
    _generator_args(p, stream=False)
    _config_args(p)
    return parser


def _key_value(item: str, option: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise RagError(f"{option} {item!r} is not KEY=VALUE")
    return key.strip(), value


def _to_json(obj: Any) -> str:
    def default(o: Any) -> Any:
        if is_dataclass(o) and not isinstance(o, type):
            return asdict(o)
        return str(o)

    return json.dumps(obj, default=default, ensure_ascii=False, indent=2)


def _pipeline(args: argparse.Namespace, **extra: Any) -> Any:
    from rag.pipeline import RagPipeline

    settings = {
        k: v for k, v in vars(args).items() if k in RagConfig.setting_names() and v is not None and k != "quiet"
    }
    settings.update({k: v for k, v in extra.items() if v is not None})
    if args.quiet:
        settings["quiet"] = True
    return RagPipeline(RagConfig.load(args.config, **settings))


def _print_hits(hits: list[Any]) -> None:
    for hit in hits:
        c = hit.chunk
        text = " ".join(c.text.split())
        print(f"{hit.rank}. [{hit.similarity:.3f}] {_source(c.source)} ({c.location()})")
        print(f"   {text[:300]}{'…' if len(text) > 300 else ''}")


def _source(path: str) -> str:
    from rag.text.paths import display_path

    return display_path(path)


def run(args: argparse.Namespace) -> int:
    if args.command == "ingest":
        metadata = dict(_key_value(item, "--metadata") for item in args.metadata)
        report = _pipeline(args).ingest(
            args.paths, sync=args.sync, metadata=metadata, ray=args.ray, ray_workers=args.ray_workers
        )
        if args.json:
            print(_to_json(report))
            return 0
        print(
            f"{report.index}: {report.files_seen} files seen, {report.files_added} added, "
            f"{report.files_updated} updated, {report.files_unchanged} unchanged, {report.files_removed} removed, "
            f"{len(report.skipped)} skipped; {report.chunks_added} chunks added, {report.chunks_removed} removed; "
            f"model {report.model}; {report.seconds:.1f} s"
        )
        for s in report.skipped:
            print(f"  skipped {s.path}: {s.reason}")
        return 0
    if args.command == "info":
        info = _pipeline(args).info()
        if args.json:
            print(_to_json(info))
        else:
            for key, value in asdict(info).items():
                print(f"{key:>15}: {value}")
        return 0
    if args.command == "eval":
        from rag.evaluation import evaluate

        settings = {k: getattr(args, k, None) for k in ("embedder", "retrieval", "rerank", "generator")}
        config = RagConfig.load(args.config, quiet=args.quiet or None, **settings)
        report = evaluate(args.dataset, config, split=args.split, max_queries=args.max_queries, qa_limit=args.qa_limit)
        if args.json:
            print(_to_json(report))
            return 0
        s = report.scores
        print(
            f"{report.dataset}: {report.documents} documents, {report.chunks} chunks, embedder {report.embedder}, "
            f"retrieval {report.retrieval}{' + rerank' if report.rerank else ''}, "
            f"indexed in {report.index_seconds:.1f} s"
        )
        print(
            f"nDCG@10 {s.ndcg_at_10:.4f}  Recall@10 {s.recall_at_10:.4f}  Recall@100 {s.recall_at_100:.4f}  "
            f"MRR@10 {s.mrr_at_10:.4f}  latency p50 {s.latency_p50_ms:.1f} ms p95 {s.latency_p95_ms:.1f} ms "
            f"({s.queries} queries)"
        )
        if report.answers:
            a = report.answers
            print(
                f"answers: EM {a.exact_match:.4f}  F1 {a.f1:.4f}  citation accuracy {a.citation_accuracy:.4f}  "
                f"refused {a.refusal_rate:.2%}  ({a.questions} questions, {a.seconds_per_answer:.2f} s each); "
                f"refused {a.refusal_when_removed or 0:.2%} of {a.removed_questions} questions whose paragraph "
                "was left out of the index"
            )
        return 0
    if args.command == "search":
        from rag.filters import Filters

        hits = _pipeline(args).retrieve(args.question, filters=Filters.parse(args.filters))
        if args.json:
            print(_to_json(hits))
        else:
            _print_hits(hits)
        return 0
    if args.command == "ask":
        from rag.cli.chat import ask_once
        from rag.filters import Filters

        filters = Filters.parse(args.filters)
        ask_once(_pipeline(args), args.question, stream=args.stream, as_json=args.json, filters=filters or None)
        return 0
    if args.command == "chat":
        from rag.cli.chat import chat

        chat(_pipeline(args), sys.stdin, stream=args.stream, as_json=args.json, interactive=sys.stdin.isatty())
        return 0
    if args.command == "verify":
        problems = _pipeline(args).verify()
        if args.json:
            print(_to_json({"ok": not problems, "problems": problems}))
        else:
            print("index is consistent" if not problems else "\n".join(f"problem: {p}" for p in problems))
        return 1 if problems else 0
    if args.command == "compact":
        info = _pipeline(args).compact()
        print(_to_json(info) if args.json else f"compacted: {info.chunks} chunks, {info.size_bytes} bytes")
        return 0
    if args.command == "remove":
        n = _pipeline(args).remove(args.paths)
        print(f"removed {n} document(s)")
        return 0
    if args.command == "serve":
        from rag.serve.app import ServerSettings, check_bind, serve

        settings = ServerSettings.from_env(
            api_key=args.api_key,
            max_concurrency=args.max_concurrency,
            max_body_bytes=args.max_body_kb * 1024 if args.max_body_kb is not None else None,
            max_upload_bytes=int(args.max_upload_mb * 1024 * 1024) if args.max_upload_mb is not None else None,
        )
        check_bind(args.host, settings)  # before any model loads: refuse at once
        level = "debug" if args.verbose else "warning" if args.quiet else "info"
        serve(_pipeline(args), host=args.host, port=args.port, settings=settings, log_level=level)
        return 0
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "transformers", "filelock", "urllib3", "faiss"):
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
