"""PowerPoint loader (python-pptx): per slide its title, text boxes, tables (a row per line, with the header cells)
and speaker notes; each slide is a section, so a citation says "slide N"."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import LoadOptions, SectionedText, normalise_newlines, short_detail
from rag.ingest.loaders.tabular import header_names, row_line
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".pptx"})

SLIDE_SEPARATOR = "\n\n"
NOTES_PREFIX = "Notes: "


def _open(data: bytes) -> Any:
    from pptx import Presentation

    try:
        return Presentation(io.BytesIO(data))
    except Exception as exc:  # a broken zip, missing parts or bad XML all mean the same to the user
        raise LoaderError(f"corrupt PPTX: {short_detail(exc)}") from exc


def _shapes(shapes: Any) -> Iterator[Any]:
    """Shapes in reading order (top to bottom, then left to right), groups opened."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    def position(shape: Any) -> tuple[int, int]:
        return (shape.top or 0, shape.left or 0)

    for shape in sorted(shapes, key=position):
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _table_lines(table: Any) -> list[str]:
    rows = [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]
    rows = [row for row in rows if any(row)]
    if len(rows) < 2:
        return [" | ".join(c for c in row if c) for row in rows]
    headers = header_names(rows[0])
    return [line for line in (row_line(headers, row) for row in rows[1:]) if line]


def _slide_text(slide: Any) -> str:
    lines: list[str] = []
    title = slide.shapes.title
    if title is not None and title.has_text_frame and title.text_frame.text.strip():
        lines.append(normalise_newlines(title.text_frame.text).strip())
    for shape in _shapes(slide.shapes):
        if title is not None and shape.shape_id == title.shape_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            lines.extend(_table_lines(shape.table))
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = normalise_newlines(shape.text_frame.text).strip()
            if text:
                lines.append(text)
    if slide.has_notes_slide:
        notes = normalise_newlines(slide.notes_slide.notes_text_frame.text or "").strip()
        if notes:
            lines.append(NOTES_PREFIX + notes)
    return "\n".join(lines)


def load_pptx(data: bytes, path: str, options: LoadOptions | None = None) -> Document:
    """One section per slide with text ("slide N", numbered as in the deck)."""
    deck = _open(data)
    parts = SectionedText(SLIDE_SEPARATOR)
    try:
        slides = list(deck.slides)
        for number, slide in enumerate(slides, start=1):
            text = _slide_text(slide)
            if not text:
                continue
            parts.add(text, f"slide {number}")
    except Exception as exc:  # malformed XML inside a valid zip shows up while reading the shapes
        raise LoaderError(f"corrupt PPTX: {short_detail(exc)}") from exc
    if not parts:
        raise LoaderError("PPTX has no text")
    metadata: dict[str, Any] = {"slides": len(slides)}
    try:
        title = (deck.core_properties.title or "").strip()
    except Exception:  # noqa: BLE001 - optional metadata
        title = ""
    if title:
        metadata["title"] = title
    return Document(
        path=path, text=parts.text, file_type="pptx", metadata=metadata, sections=tuple(parts.sections)
    )
