"""PDF loader: page texts joined by a blank line, with the start offset of every page.

- Text layer: pypdf, page by page.
- Tables (pdfplumber, on pages whose drawing has ruling lines): each row becomes one line "header: value; ...",
  in its place among the page's other lines, so a question about a cell finds its row.
- OCR (``ocr`` setting; pages rendered by pypdfium2, recognised by ``rag.ingest.loaders.ocr``): ``auto`` reads the
  pages with (almost) no text layer that carry an image or outlined drawing; ``always`` reads every page and uses
  its OCR text; ``never`` none. The pages recognised are listed in ``metadata["ocr_pages"]``.

Bounds: OCR per file (``ocr_max_pages``, ``ocr_max_seconds``) and table detection (TABLE_SECONDS per file); what a
bound left out is said in ``metadata["truncated"]``.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import LoadOptions, normalise_newlines, short_detail
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".pdf"})

PAGE_SEPARATOR = "\n\n"
NO_TEXT_REASON = "PDF has no text layer (scanned?)"
OCR_OFF_REASON = "PDF has no text layer (scanned?) and OCR is off (ocr = never)"
OCR_EMPTY_REASON = "PDF has no text layer and OCR found no text on its pages"
# A page with fewer visible characters than this in its text layer is read by OCR (ocr = auto) when it carries an
# image or at least OUTLINE_PATHS drawn paths (text turned into outlines).
MIN_PAGE_CHARS = 32
OUTLINE_PATHS = 20
# Pages are rendered for OCR so that their long side is about this many pixels (RapidOCR works at <= 2000).
OCR_SIDE = 2000
# Pages with at least this many drawn paths are checked for ruled tables; table detection stops after
# TABLE_SECONDS per file (the remaining pages keep their plain text).
TABLE_PATHS = 4
TABLE_SECONDS = 120.0
ENCRYPTED_REASON = "encrypted PDF"
_CORRUPT = "corrupt or truncated PDF"
# The header must appear within the first KiB; after the last %%EOF only padding may follow.
_HEADER_WINDOW = 1024
_TRAILING_SLACK = 1024
# Titles that PDF generators write when the author set none.
_PLACEHOLDER_TITLES = frozenset({"untitled", "(anonymous)", "anonymous"})


def _corrupt(detail: str) -> LoaderError:
    return LoaderError(f"{_CORRUPT}: {detail}")


def check_structure(data: bytes) -> None:
    """Reject files that are not PDFs or were cut short, before pypdf tries to repair them.

    pypdf's lenient mode can rebuild a damaged cross-reference table and return partial pages, so a
    truncated download would silently index half a document. A complete PDF ends with ``%%EOF``.
    """
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise _corrupt("no %PDF header (not a PDF file)")
    end = data.rfind(b"%%EOF")
    if end == -1:
        raise _corrupt("no %%EOF end marker (file cut short?)")
    trailing = data[end + len(b"%%EOF") :]
    if len(trailing) > _TRAILING_SLACK and trailing.strip(b" \t\r\n\x00\x0c"):
        raise _corrupt("data after the last %%EOF marker is not a complete update (file cut short?)")


def _open_reader(data: bytes) -> Any:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except Exception as exc:  # pypdf raises many types for damaged files
        raise _corrupt(short_detail(exc)) from exc
    if reader.is_encrypted:
        _decrypt(reader)
    return reader


def _decrypt(reader: Any) -> None:
    from pypdf.errors import DependencyError

    try:
        result = reader.decrypt("")
    except DependencyError as exc:
        raise LoaderError(f"{ENCRYPTED_REASON} (decrypting needs an extra package: {short_detail(exc)})") from exc
    except Exception as exc:
        raise LoaderError(f"{ENCRYPTED_REASON}: {short_detail(exc)}") from exc
    if not result:
        raise LoaderError(ENCRYPTED_REASON)


def _page_texts(reader: Any) -> list[str]:
    try:
        pages = list(reader.pages)
    except Exception as exc:
        raise _corrupt(short_detail(exc)) from exc
    if not pages:
        raise _corrupt("no pages")
    texts: list[str] = []
    failures = 0
    for number, page in enumerate(pages, start=1):
        try:
            texts.append(normalise_newlines(page.extract_text() or "").strip())
        except Exception as exc:  # noqa: BLE001 - one bad page should not lose the whole document
            failures += 1
            logger.warning("page %d: text extraction failed: %s", number, short_detail(exc))
            texts.append("")
    if failures == len(pages):
        raise _corrupt("text extraction failed on every page")
    return texts


def join_pages(texts: list[str]) -> tuple[str, tuple[int, ...]]:
    """Join page texts with PAGE_SEPARATOR; return the text and the start offset of each page."""
    offsets: list[int] = []
    position = 0
    for i, page_text in enumerate(texts):
        if i:
            position += len(PAGE_SEPARATOR)
        offsets.append(position)
        position += len(page_text)
    return PAGE_SEPARATOR.join(texts), tuple(offsets)


def load_pdf(data: bytes, path: str, options: LoadOptions | None = None) -> Document:
    """Text of every page; ``page_offsets[i]`` is where page ``i + 1`` starts in ``text``."""
    options = options or LoadOptions()
    check_structure(data)
    reader = _open_reader(data)
    texts = _page_texts(reader)
    metadata: dict[str, Any] = {"pages": len(texts)}
    layout = _Layout.open(data, len(texts))
    if layout is not None:
        _tables(data, texts, layout, metadata)
        if options.ocr != "never":
            _ocr_pages(texts, layout, options, metadata)
        layout.close()
    if not any(texts):
        if options.ocr == "never":
            raise LoaderError(OCR_OFF_REASON)
        if metadata.get("ocr_unavailable"):
            raise LoaderError(f"{NO_TEXT_REASON}; {metadata['ocr_unavailable']}")
        tried = metadata.get("ocr_pages") or metadata.get("truncated")
        raise LoaderError(OCR_EMPTY_REASON if tried else NO_TEXT_REASON)
    text, offsets = join_pages(texts)
    empty = [i + 1 for i, page_text in enumerate(texts) if not page_text]
    if empty:
        metadata["pages_without_text"] = empty
    title = _title(reader)
    if title:
        metadata["title"] = title
    return Document(path=path, text=text, file_type="pdf", page_offsets=offsets, metadata=metadata)


class _Layout:
    """pypdfium2's view of the pages: what each draws (images, paths), and rendering for OCR."""

    def __init__(self, pdf: Any, pages: int) -> None:
        self.pdf = pdf
        self.pages = min(pages, len(pdf))

    @classmethod
    def open(cls, data: bytes, pages: int) -> _Layout | None:
        import pypdfium2 as pdfium

        try:
            return cls(pdfium.PdfDocument(data), pages)
        except Exception as exc:  # noqa: BLE001 - pypdf read it; without pdfium only tables and OCR are lost
            logger.warning("pdfium cannot open the PDF (%s): no table detection or OCR", short_detail(exc))
            return None

    def counts(self, index: int) -> tuple[int, int]:
        """(image objects, path objects) drawn on page ``index`` (0-based)."""
        import pypdfium2.raw as pdfium_c

        page = self.pdf[index]
        try:
            images = paths = 0
            for obj in page.get_objects(max_depth=4):
                if obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                    images += 1
                elif obj.type == pdfium_c.FPDF_PAGEOBJ_PATH:
                    paths += 1
            return images, paths
        finally:
            page.close()

    def render(self, index: int) -> Any:
        page = self.pdf[index]
        try:
            width, height = page.get_size()
            scale = min(4.0, max(1.0, OCR_SIDE / max(width, height, 1.0)))
            return page.render(scale=scale).to_pil()
        finally:
            page.close()

    def close(self) -> None:
        self.pdf.close()


def _needs_ocr(text: str, layout: _Layout, index: int, mode: str) -> bool:
    if mode == "always":
        return True
    if len("".join(text.split())) >= MIN_PAGE_CHARS:
        return False
    images, paths = layout.counts(index)
    return images > 0 or paths >= OUTLINE_PATHS


def _ocr_pages(texts: list[str], layout: _Layout, options: LoadOptions, metadata: dict[str, Any]) -> None:
    """Replace the text of the pages that need it by their OCR text (in place)."""
    from rag.ingest.loaders.ocr import OcrBudget

    budget = OcrBudget(options)
    for index in range(layout.pages):
        if not _needs_ocr(texts[index], layout, index, options.ocr) or not budget.allows(index + 1):
            continue
        try:
            recognised = budget.recognize(index + 1, layout.render(index)).strip()
        except LoaderError as exc:  # the OCR package is missing: keep the text layer
            metadata["ocr_unavailable"] = str(exc)
            logger.warning("%s", exc)
            break
        except Exception as exc:  # noqa: BLE001 - one page that cannot be rendered must not lose the others
            logger.warning("page %d: OCR failed: %s", index + 1, short_detail(exc))
            continue
        if recognised:
            texts[index] = recognised
    budget.note(metadata)


def _tables(data: bytes, texts: list[str], layout: _Layout, metadata: dict[str, Any]) -> None:
    """Pages with ruled tables get their text rebuilt by pdfplumber: each table row one line with its headers."""
    candidates = [i for i in range(layout.pages) if texts[i] and layout.counts(i)[1] >= TABLE_PATHS]
    if not candidates:
        return
    import pdfplumber

    t0 = time.perf_counter()
    found = 0
    try:
        plumber = pdfplumber.open(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pypdf read the text; the tables stay plain text
        logger.warning("pdfplumber cannot open the PDF (%s): tables stay plain text", short_detail(exc))
        return
    try:
        for n, index in enumerate(candidates):
            if time.perf_counter() - t0 > TABLE_SECONDS:
                left = [i + 1 for i in candidates[n:]]
                metadata["truncated"] = f"table detection stopped after {TABLE_SECONDS:g} s: pages {left} as plain text"
                break
            try:
                rebuilt, tables = _page_with_tables(plumber.pages[index])
            except Exception as exc:  # noqa: BLE001 - one odd page keeps its plain text
                logger.warning("page %d: table detection failed: %s", index + 1, short_detail(exc))
                continue
            if tables:
                texts[index] = rebuilt
                found += tables
    finally:
        plumber.close()
    if found:
        metadata["tables"] = found


def _page_with_tables(page: Any) -> tuple[str, int]:
    """The page's lines, with each ruled table (at least 2 rows and 2 columns) replaced by its rows."""
    from rag.ingest.loaders.tabular import header_names, row_line

    tables = []
    for table in page.find_tables():
        rows = [[_cell(c) for c in row] for row in table.extract()]
        rows = [row for row in rows if any(row)]
        if len(rows) >= 2 and max(len(r) for r in rows) >= 2:
            tables.append((table.bbox, rows))
    if not tables:
        return "", 0

    def outside(obj: dict[str, Any]) -> bool:
        if obj.get("object_type") != "char":
            return True
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= x <= x1 and top <= y <= bottom for (x0, top, x1, bottom), _ in tables)

    blocks = [(float(line["top"]), str(line["text"])) for line in page.filter(outside).extract_text_lines()]
    for (_, top, _, _), rows in tables:
        headers = header_names(rows[0])
        lines = [row_line(headers, row) for row in rows[1:]]
        blocks.append((float(top), "\n".join(line for line in lines if line)))
    blocks.sort(key=lambda block: block[0])
    return normalise_newlines("\n".join(text for _, text in blocks if text)).strip(), len(tables)


def _cell(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _title(reader: Any) -> str:
    try:
        info = reader.metadata
        title = info.title if info is not None else None
    except Exception:  # noqa: BLE001 - metadata is optional; damaged info dictionaries are common
        return ""
    title = str(title).strip() if title else ""
    return "" if title.lower() in _PLACEHOLDER_TITLES else title
