"""JSON and JSON Lines loader: pretty-printed JSON, or one compact object per line for JSONL."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.text import read_text
from rag.types import Document

logger = logging.getLogger(__name__)

JSON_SUFFIXES: frozenset[str] = frozenset({".json"})
JSONL_SUFFIXES: frozenset[str] = frozenset({".jsonl", ".ndjson"})
SUFFIXES: frozenset[str] = JSON_SUFFIXES | JSONL_SUFFIXES


def _parse(text: str, line_offset: int = 0) -> Any:
    """``json.loads`` that raises LoaderError naming the line and column of the first error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        line = exc.lineno + line_offset
        raise LoaderError(f"invalid JSON at line {line}, column {exc.colno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise LoaderError("JSON nested too deeply to parse") from exc


def _dump(value: Any, *, indent: int | None) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent)
    except RecursionError as exc:
        raise LoaderError("JSON nested too deeply to render") from exc


def _load_json(text: str, path: str) -> Document:
    value = _parse(text)
    metadata = {"top_level": type(value).__name__}
    return Document(path=path, text=_dump(value, indent=2), file_type="json", metadata=metadata)


def _load_jsonl(text: str, path: str) -> Document:
    """One record per line; blank lines stay blank so line numbers match the file."""
    lines: list[str] = []
    records = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            lines.append("")
            continue
        lines.append(_dump(_parse(line, line_offset=number - 1), indent=None))
        records += 1
    return Document(path=path, text="\n".join(lines).rstrip("\n"), file_type="json", metadata={"records": records})


def load_structured(data: bytes, path: str) -> Document:
    """Dispatch on suffix: .json is one document, .jsonl/.ndjson one JSON value per line."""
    text = read_text(data, path)
    if os.path.splitext(path)[1].lower() in JSONL_SUFFIXES:
        return _load_jsonl(text, path)
    return _load_json(text, path)
