"""Spreadsheet loader: ``.xlsx``/``.xlsm`` (openpyxl, the values last saved with the file) and ``.ods`` (odfpy, see
``rag.ingest.loaders.opendocument``). In each sheet the first non-empty row is the header; every later non-empty row
becomes one line "header: value; header: value". Each sheet is a section whose lines know their row numbers, so
a citation says "sheet Sales rows 2-9". At most ``max_rows`` rows are read per file (the rest is reported)."""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import LoadOptions, SectionedText, short_detail
from rag.ingest.loaders.tabular import header_names, row_line
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".xlsx", ".xlsm"})

SHEET_SEPARATOR = "\n\n"

# (sheet name, rows as (row number, cells)) for each sheet, in workbook order.
Sheet = tuple[str, Iterable[tuple[int, list[str]]]]


def cell_text(value: Any) -> str:
    """A cell value as it reads: whole numbers without ".0", dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).split())


def sheets_document(sheets: Iterable[Sheet], path: str, file_type: str, options: LoadOptions) -> Document:
    """The text, sections and metadata of a workbook from its sheets' rows."""
    parts = SectionedText(SHEET_SEPARATOR)
    total = 0
    names: list[str] = []
    truncated = ""
    for name, rows in sheets:
        names.append(name)
        if truncated:
            continue
        lines: list[str] = []
        numbers: list[int] = []
        headers: list[str] | None = None
        for number, cells in rows:
            if not any(cells):
                continue
            if headers is None:
                headers = header_names(cells)
                continue
            if total >= options.max_rows:
                truncated = f"stopped at max_rows={options.max_rows}: sheet {name} from row {number} on not read"
                break
            line = row_line(headers, cells)
            if line:
                lines.append(line)
                numbers.append(number)
                total += 1
        if not lines:
            continue
        parts.add("\n".join(lines), f"sheet {name}", tuple(numbers))
    if not parts:
        raise LoaderError("spreadsheet has no data rows (a header row and at least one row below it)")
    metadata: dict[str, Any] = {"sheets": names, "rows": total}
    if truncated:
        metadata["truncated"] = truncated
    return Document(
        path=path, text=parts.text, file_type=file_type, metadata=metadata, sections=tuple(parts.sections)
    )


def _xlsx_rows(sheet: Any) -> Iterator[tuple[int, list[str]]]:
    first = sheet.min_row or 1
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=first):
        cells = [cell_text(v) for v in values]
        while cells and not cells[-1]:
            cells.pop()
        yield number, cells


def load_xlsx(data: bytes, path: str, options: LoadOptions) -> Document:
    """Every worksheet of an Excel workbook (chart sheets have no cells and are left out)."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # a broken zip, missing parts or bad XML all mean the same to the user
        raise LoaderError(f"corrupt Excel workbook: {short_detail(exc)}") from exc
    try:
        sheets = ((ws.title, _xlsx_rows(ws)) for ws in book.worksheets if hasattr(ws, "iter_rows"))
        try:
            return sheets_document(sheets, path, "xlsx", options)
        except LoaderError:
            raise
        except Exception as exc:  # malformed sheet XML shows up while the rows are read
            raise LoaderError(f"corrupt Excel workbook: {short_detail(exc)}") from exc
    finally:
        book.close()
