"""CSV/TSV loader: every data row becomes one self-describing line "header: value; header: value"."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Iterator

from rag.errors import LoaderError
from rag.ingest.loaders.base import short_detail
from rag.ingest.loaders.text import read_text
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".csv", ".tsv"})

FIELD_SEPARATOR = "; "
_SNIFF_CHARS = 64 * 1024
_DELIMITERS = ",;\t|"
_WHITESPACE = re.compile(r"\s+")


def _dialect(text: str, suffix: str) -> type[csv.Dialect] | csv.Dialect:
    """Tab for .tsv; for .csv the sniffed dialect (commas, semicolons, pipes), else plain commas."""
    if suffix == ".tsv":
        return csv.excel_tab
    try:
        return csv.Sniffer().sniff(text[:_SNIFF_CHARS], delimiters=_DELIMITERS)
    except csv.Error:
        logger.debug("could not sniff the CSV dialect; using commas")
        return csv.excel


def _clean(value: str) -> str:
    return _WHITESPACE.sub(" ", value).strip()


def header_names(row: list[str]) -> list[str]:
    """Cleaned header cells; an empty one is named by its position ("column 3")."""
    return [_clean(name) or f"column {i}" for i, name in enumerate(row, start=1)]


def row_line(headers: list[str], row: list[str]) -> str:
    """A row as "header: value; header: value" (empty cells left out; cells past the headers are "column N")."""
    fields = []
    for i, value in enumerate(row):
        value = _clean(value)
        if not value:
            continue
        name = headers[i] if i < len(headers) else f"column {i + 1}"
        fields.append(f"{name}: {value}")
    return FIELD_SEPARATOR.join(fields)


def _rows(text: str, dialect: type[csv.Dialect] | csv.Dialect) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        yield from reader
    except csv.Error as exc:
        raise LoaderError(f"malformed CSV at line {reader.line_num}: {short_detail(exc)}") from exc


def load_tabular(data: bytes, path: str) -> Document:
    """First row is the header; each following non-empty row is one line of text."""
    text = read_text(data, path)
    dialect = _dialect(text, os.path.splitext(path)[1].lower())
    rows = (row for row in _rows(text, dialect) if any(cell.strip() for cell in row))
    header_row = next(rows, None)
    if header_row is None:
        raise LoaderError("empty file")
    headers = header_names(header_row)
    lines = [line for line in (row_line(headers, row) for row in rows) if line]
    if not lines:
        raise LoaderError("CSV has a header but no data rows")
    metadata = {"rows": len(lines), "columns": headers}
    return Document(path=path, text="\n".join(lines), file_type="csv", metadata=metadata)
