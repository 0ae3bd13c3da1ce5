"""PDF loader (pypdf): page texts joined by a blank line, with the start offset of every page."""

from __future__ import annotations

import io
import logging
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import normalise_newlines, short_detail
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".pdf"})

PAGE_SEPARATOR = "\n\n"
NO_TEXT_REASON = "PDF has no text layer (scanned?)"
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


def load_pdf(data: bytes, path: str) -> Document:
    """Text of every page; ``page_offsets[i]`` is where page ``i + 1`` starts in ``text``."""
    check_structure(data)
    reader = _open_reader(data)
    texts = _page_texts(reader)
    if not any(texts):
        raise LoaderError(NO_TEXT_REASON)
    text, offsets = join_pages(texts)
    metadata: dict[str, Any] = {"pages": len(texts)}
    empty = [i + 1 for i, page_text in enumerate(texts) if not page_text]
    if empty:
        metadata["pages_without_text"] = empty
    title = _title(reader)
    if title:
        metadata["title"] = title
    return Document(path=path, text=text, file_type="pdf", page_offsets=offsets, metadata=metadata)


def _title(reader: Any) -> str:
    try:
        info = reader.metadata
        title = info.title if info is not None else None
    except Exception:  # noqa: BLE001 - metadata is optional; damaged info dictionaries are common
        return ""
    title = str(title).strip() if title else ""
    return "" if title.lower() in _PLACEHOLDER_TITLES else title
