"""OpenDocument loaders (odfpy): ``.odt`` text documents (headings, paragraphs, lists and tables in document order;
a table row per line with its header cells) and ``.ods`` spreadsheets (rows as in ``spreadsheet``)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import LoadOptions, normalise_newlines, short_detail
from rag.ingest.loaders.spreadsheet import sheets_document
from rag.ingest.loaders.tabular import header_names, row_line
from rag.types import Document

logger = logging.getLogger(__name__)

ODT_SUFFIXES: frozenset[str] = frozenset({".odt"})
ODS_SUFFIXES: frozenset[str] = frozenset({".ods"})

# Repeated columns past this many are dropped (a sheet's last cell is often repeated to the 16384th column).
MAX_COLUMNS = 1024
_CELLS = ("table-cell", "covered-table-cell")


def _open(data: bytes, kind: str) -> Any:
    from odf.opendocument import load

    try:
        return load(io.BytesIO(data))
    except Exception as exc:  # a broken zip, missing parts or bad XML all mean the same to the user
        raise LoaderError(f"corrupt {kind}: {short_detail(exc)}") from exc


def _local(node: Any) -> str:
    qname = getattr(node, "qname", None)
    return qname[1] if qname else ""


def _text(node: Any) -> str:
    from odf import teletype

    return normalise_newlines(teletype.extractText(node))


def _cell_value(cell: Any) -> str:
    paragraphs = [_text(p) for p in cell.childNodes if _local(p) in ("p", "h")]
    return " ".join(" ".join(paragraphs).split())


def table_rows(table: Any) -> Iterator[tuple[int, list[str]]]:
    """(row number, cell texts) of each non-empty row of a ``table:table``; repeated rows and cells expanded."""
    number = 0
    for row in table.getElementsByType(_row_type()):
        repeat = int(row.getAttribute("numberrowsrepeated") or 1)
        cells: list[str] = []
        for cell in row.childNodes:
            if _local(cell) not in _CELLS:
                continue
            value = _cell_value(cell)
            times = int(cell.getAttribute("numbercolumnsrepeated") or 1)
            cells.extend([value] * max(0, min(times, MAX_COLUMNS - len(cells))))
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            number += repeat
            continue
        for _ in range(min(repeat, 10_000)):
            number += 1
            yield number, cells
        number += max(0, repeat - 10_000)


def _row_type() -> Any:
    from odf.table import TableRow

    return TableRow


def load_ods(data: bytes, path: str, options: LoadOptions) -> Document:
    """Every sheet of an OpenDocument spreadsheet."""
    from odf.table import Table

    document = _open(data, "ODS")
    try:
        tables = document.spreadsheet.getElementsByType(Table)
        sheets = ((str(t.getAttribute("name") or f"Sheet{i}"), table_rows(t)) for i, t in enumerate(tables, 1))
        return sheets_document(sheets, path, "ods", options)
    except LoaderError:
        raise
    except Exception as exc:  # a valid zip whose content is not a spreadsheet
        raise LoaderError(f"corrupt ODS: {short_detail(exc)}") from exc


def _odt_table(table: Any) -> list[str]:
    rows = [cells for _, cells in table_rows(table)]
    if len(rows) < 2:
        return [" | ".join(c for c in row if c) for row in rows]
    headers = header_names(rows[0])
    return [line for line in (row_line(headers, row) for row in rows[1:]) if line]


def _blocks(node: Any) -> Iterator[str]:
    """Lines of the body in document order: headings and paragraphs; lists and sections opened; tables as rows."""
    for child in node.childNodes:
        name = _local(child)
        if name in ("h", "p"):
            yield _text(child).strip()
        elif name == "table":
            yield from _odt_table(child)
        elif name in ("list", "list-item", "list-header", "section", "index-body", "table-of-content"):
            yield from _blocks(child)


def load_odt(data: bytes, path: str, options: LoadOptions | None = None) -> Document:
    """The text of an OpenDocument text file, one paragraph per line."""
    document = _open(data, "ODT")
    try:
        lines = [line for line in _blocks(document.text) if line]
    except Exception as exc:  # a valid zip whose content is not a text document
        raise LoaderError(f"corrupt ODT: {short_detail(exc)}") from exc
    if not lines:
        raise LoaderError("ODT has no text")
    metadata: dict[str, Any] = {}
    try:
        from odf.dc import Title

        titles = document.meta.getElementsByType(Title)
        title = _text(titles[0]).strip() if titles else ""
    except Exception:  # noqa: BLE001 - optional metadata
        title = ""
    if title:
        metadata["title"] = title
    return Document(path=path, text="\n".join(lines), file_type="odt", metadata=metadata)
