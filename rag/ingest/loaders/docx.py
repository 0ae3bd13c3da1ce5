"""DOCX loader (python-docx): paragraphs and tables in document order."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import normalise_newlines, short_detail
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".docx"})

CELL_SEPARATOR = " | "
_BLANK_RUNS = re.compile(r"\n{3,}")
_WHITESPACE = re.compile(r"\s+")


def _open_document(data: bytes) -> Any:
    import docx

    try:
        return docx.Document(io.BytesIO(data))
    except Exception as exc:  # a broken zip, missing parts or bad XML all mean the same to the user
        raise LoaderError(f"corrupt DOCX: {short_detail(exc)}") from exc


def _cell_text(cell: Any) -> str:
    return _WHITESPACE.sub(" ", cell.text).strip()


def _row_line(row: Any) -> str:
    """Cells of a row joined by CELL_SEPARATOR; a merged cell is listed once."""
    cells: list[str] = []
    previous = None
    for cell in row.cells:
        if previous is not None and cell._tc is previous:
            continue
        previous = cell._tc
        cells.append(_cell_text(cell))
    while cells and not cells[-1]:
        cells.pop()
    return CELL_SEPARATOR.join(cells)


def _table_text(table: Any) -> str:
    lines = [_row_line(row) for row in table.rows]
    return "\n".join(line for line in lines if line)


def _blocks(document: Any) -> tuple[list[str], int, int]:
    """Text of each body block in order, with the paragraph and table counts."""
    from docx.table import Table

    blocks: list[str] = []
    paragraphs = tables = 0
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            tables += 1
            blocks.append(_table_text(item))
        else:
            paragraphs += 1
            blocks.append(normalise_newlines(item.text).rstrip())
    return blocks, paragraphs, tables


def _title(document: Any) -> str:
    try:
        return (document.core_properties.title or "").strip()
    except Exception:  # noqa: BLE001 - optional metadata; a damaged core.xml must not fail the load
        return ""


def load_docx(data: bytes, path: str) -> Document:
    """Paragraph text, one per line, and tables as rows of cells joined by " | "."""
    document = _open_document(data)
    try:
        blocks, paragraphs, tables = _blocks(document)
    except Exception as exc:  # malformed XML inside a valid zip shows up here
        raise LoaderError(f"corrupt DOCX: {short_detail(exc)}") from exc
    text = _BLANK_RUNS.sub("\n\n", "\n".join(blocks)).strip()
    if not text:
        raise LoaderError("DOCX has no text")
    metadata: dict[str, Any] = {"paragraphs": paragraphs, "tables": tables}
    title = _title(document)
    if title:
        metadata["title"] = title
    return Document(path=path, text=text, file_type="docx", metadata=metadata)
