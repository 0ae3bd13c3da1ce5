"""Shared pieces of the loaders: the loader signature and error-message helpers."""

from __future__ import annotations

from collections.abc import Callable

from rag.types import Document

# Every format loader takes the raw bytes of the file and the path as given, and returns a Document.
LoaderFunc = Callable[[bytes, str], Document]

_MAX_DETAIL = 120


def short_detail(exc: BaseException) -> str:
    """First line of an exception message, shortened for a one-line reason (falls back to the type name)."""
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else ""
    if not text:
        return type(exc).__name__
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3].rstrip() + "..."
    return text


def normalise_newlines(text: str) -> str:
    """Turn CRLF and lone CR line endings into LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
