"""PDF loader: page texts joined by a blank line, with the start offset of every page.

- Text layer: pypdfium2, page by page (pypdf where pdfium cannot read the file or a page): it keeps the word spaces
  that pypdf and pdfplumber lose in justified xdvipdfmx text, marks line-end hyphens, and is 10-20x faster
  (``benchmarks/pdf_text.py``). pypdf still checks the file (damage, encryption) and gives the title.
- Clean-up (``rag.ingest.loaders.pdftext``): ligatures and compatibility forms, words hyphenated across lines
  joined, running headers, footers and page numbers dropped; page by page, so page offsets stay right.
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
from rag.ingest.loaders.pdftext import clean_pages
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".pdf"})
# A rectangle on a page: x0, top, x1, bottom in points from the top-left corner (pdfplumber's coordinates).
Box = tuple[float, float, float, float]

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
PDFIUM_LINE_HYPHENS = ("\x02", "\ufffe")
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


def _pages(reader: Any) -> list[Any]:
    try:
        pages = list(reader.pages)
    except Exception as exc:
        raise _corrupt(short_detail(exc)) from exc
    if not pages:
        raise _corrupt("no pages")
    return pages


def _page_texts(pages: list[Any], layout: _Layout | None) -> list[str]:
    """Every page's text layer: pdfium's, else pypdf's; a page neither can read is empty."""
    texts: list[str] = []
    failures = 0
    for index, page in enumerate(pages):
        text = layout.text(index) if layout is not None and index < layout.pages else None
        if text is None and page is not None:
            try:
                text = normalise_newlines(page.extract_text() or "")
            except Exception as exc:  # noqa: BLE001 - one bad page should not lose the whole document
                logger.warning("page %d: text extraction failed: %s", index + 1, short_detail(exc))
        if text is None:
            failures += 1
        texts.append((text or "").strip())
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
    reader, pages, layout = _open(data)
    metadata: dict[str, Any] = {"pages": len(pages)}
    try:
        texts = _page_texts(pages, layout)
        if layout is not None:
            _tables(data, texts, layout, metadata)
            if options.ocr != "never":
                _ocr_pages(texts, layout, options, metadata)
    finally:
        if layout is not None:
            layout.close()
    texts, cleanup = clean_pages(texts)
    if cleanup.running_lines:
        metadata["running_lines_dropped"] = cleanup.running_lines
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


def _open(data: bytes) -> tuple[Any, list[Any], _Layout | None]:
    """pypdf's reader and pages, and pdfium's layout. A file pypdf cannot read (it refuses some real filings:
    "Reached maximum array element count") is read by pdfium alone: no pypdf reader, pages of None."""
    try:
        reader = _open_reader(data)
        pages: list[Any] = _pages(reader)
    except LoaderError as exc:
        if not str(exc).startswith(_CORRUPT):
            raise  # encrypted
        layout = _Layout.open(data, None)
        if layout is None or not layout.pages:
            if layout is not None:
                layout.close()
            raise
        logger.warning("pypdf cannot read the PDF (%s): pdfium reads it alone", exc)
        return None, [None] * layout.pages, layout
    return reader, pages, _Layout.open(data, len(pages))


class _Layout:
    """pypdfium2's view of the pages: what each draws (images, paths), and rendering for OCR."""

    def __init__(self, pdf: Any, pages: int | None) -> None:
        self.pdf = pdf
        self.pages = len(pdf) if pages is None else min(pages, len(pdf))

    @classmethod
    def open(cls, data: bytes, pages: int | None) -> _Layout | None:
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

    def text(self, index: int) -> str | None:
        """Page ``index``'s text layer with LF line ends and line-end hyphens restored; None when pdfium fails."""
        try:
            page = self.pdf[index]
        except Exception as exc:  # noqa: BLE001 - pypdf may still read the page
            logger.warning("page %d: pdfium cannot read it: %s", index + 1, short_detail(exc))
            return None
        try:
            textpage = page.get_textpage()
            try:
                # get_text_range, not get_text_bounded: the bounded text cuts words that run past the page edge.
                raw = textpage.get_text_range()
            finally:
                textpage.close()
        except Exception as exc:  # noqa: BLE001 - pypdf may still read the page
            logger.warning("page %d: pdfium text extraction failed: %s", index + 1, short_detail(exc))
            return None
        finally:
            page.close()
        return _restore_hyphens(normalise_newlines(raw))

    def lines_outside(self, index: int, boxes: list[Box]) -> list[tuple[float, str]] | None:
        """Page ``index``'s text lines outside ``boxes`` (x0, top, x1, bottom from the top-left corner, as
        pdfplumber measures), each with its top; None when pdfium fails."""
        try:
            page = self.pdf[index]
            textpage = page.get_textpage()
        except Exception as exc:  # noqa: BLE001 - pdfplumber's lines are the fallback
            logger.warning("page %d: pdfium cannot read it: %s", index + 1, short_detail(exc))
            return None
        try:
            left, _, _, top_edge = page.get_cropbox()
            text = textpage.get_text_range()
            kept: list[str] = []
            tops: list[float] = []
            for i, char in enumerate(text):
                x0, bottom, x1, top = textpage.get_charbox(i)
                x, y = (x0 + x1) / 2 - left, top_edge - (top + bottom) / 2
                if any(bx0 <= x <= bx1 and btop <= y <= bbottom for bx0, btop, bx1, bbottom in boxes):
                    continue
                kept.append(char)
                tops.append(top_edge - top)
        except Exception as exc:  # noqa: BLE001 - pdfplumber's lines are the fallback
            logger.warning("page %d: pdfium text extraction failed: %s", index + 1, short_detail(exc))
            return None
        finally:
            textpage.close()
            page.close()
        return _lines(kept, tops)

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


def _lines(chars: list[str], tops: list[float]) -> list[tuple[float, str]]:
    """Characters with their tops -> the non-empty lines, each with the top of its first visible character."""
    lines: list[tuple[float, str]] = []
    buffer: list[str] = []
    line_top: float | None = None
    for char, top in [*zip(chars, tops, strict=True), ("\n", 0.0)]:
        if char == "\r":
            continue
        if char == "\n":
            if line_top is not None:
                lines.append((line_top, _restore_hyphens("".join(buffer)).strip()))
            buffer, line_top = [], None
            continue
        if line_top is None and not char.isspace():
            line_top = top
        buffer.append(char)
    return lines


def _restore_hyphens(text: str) -> str:
    """pdfium writes a hyphen that ends a line as U+0002 (or U+FFFE) and drops the line break after it."""
    for mark in PDFIUM_LINE_HYPHENS:
        text = text.replace(mark, "-\n")
    return text


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
                rebuilt, tables = _page_with_tables(plumber.pages[index], layout, index)
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


def _page_with_tables(page: Any, layout: _Layout, index: int) -> tuple[str, int]:
    """The page's lines, with each ruled table (at least 2 rows and 2 columns) replaced by its rows.

    The lines outside the tables are pdfium's (pdfplumber's where pdfium fails): pdfplumber joins the words of
    justified lines whose spaces are only gaps ("Ifnoexplicitinteger..." on the Camlidl manual's p. 8)."""
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

    boxes = [box for box, _ in tables]
    blocks = layout.lines_outside(index, boxes)
    if blocks is None:
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
    if reader is None:
        return ""
    try:
        info = reader.metadata
        title = info.title if info is not None else None
    except Exception:  # noqa: BLE001 - metadata is optional; damaged info dictionaries are common
        return ""
    title = str(title).strip() if title else ""
    return "" if title.lower() in _PLACEHOLDER_TITLES else title
