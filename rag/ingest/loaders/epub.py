"""EPUB loader: the book's chapters in reading order (the OPF spine), each a section "chapter N: Title".

An EPUB is a zip of XHTML files listed by an OPF package file; it is read with the standard library's ``zipfile``
and lxml, and each chapter's text comes from the HTML loader. (EbookLib, the usual EPUB library, is AGPL-licensed,
which this Apache-2.0 project cannot take as a dependency.) DRM-protected books are skipped with that reason.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
from typing import Any
from urllib.parse import unquote

from rag.errors import LoaderError
from rag.ingest.loaders.base import LoadOptions, SectionedText, short_detail
from rag.ingest.loaders.html import html_text
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".epub"})

CHAPTER_SEPARATOR = "\n\n"
# Uncompressed size of the chapters read, at most (a zip bomb is refused).
MAX_UNCOMPRESSED = 256 * 1024 * 1024
_TITLE_CHARS = 60
_CONTAINER = "META-INF/container.xml"
_NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_DOCUMENT_TYPES = ("application/xhtml+xml", "text/html")


def _corrupt(detail: str) -> LoaderError:
    return LoaderError(f"corrupt EPUB: {detail}")


def _xml(book: zipfile.ZipFile, name: str) -> Any:
    from lxml import etree

    try:
        raw = book.read(name)
    except KeyError as exc:
        raise _corrupt(f"{name} is missing") from exc
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise _corrupt(f"{name}: {short_detail(exc)}") from exc


def _package(book: zipfile.ZipFile) -> tuple[str, Any]:
    """The OPF file's path inside the zip and its parsed tree."""
    container = _xml(book, _CONTAINER)
    rootfile = container.find(".//c:rootfile", _NS)
    if rootfile is None or not rootfile.get("full-path"):
        raise _corrupt(f"{_CONTAINER} names no package file")
    name = rootfile.get("full-path")
    return name, _xml(book, name)


def _spine(opf_name: str, opf: Any) -> list[str]:
    """Zip names of the spine's XHTML documents, in reading order."""
    base = posixpath.dirname(opf_name)
    manifest = {
        item.get("id"): item
        for item in opf.findall(".//opf:manifest/opf:item", _NS)
        if item.get("id") and item.get("href")
    }
    names: list[str] = []
    for ref in opf.findall(".//opf:spine/opf:itemref", _NS):
        item = manifest.get(ref.get("idref"))
        if item is None or item.get("media-type") not in _DOCUMENT_TYPES:
            continue
        href = unquote(item.get("href").split("#", 1)[0])
        names.append(posixpath.normpath(posixpath.join(base, href)))
    return names


def _book_title(opf: Any) -> str:
    title = opf.find(".//dc:title", _NS)
    return " ".join((title.text or "").split()) if title is not None else ""


def _label(number: int, title: str, text: str) -> str:
    heading = title or text.split("\n", 1)[0]
    heading = " ".join(heading.split())
    if len(heading) > _TITLE_CHARS:
        heading = heading[: _TITLE_CHARS - 3].rstrip() + "..."
    return f"chapter {number}: {heading}" if heading else f"chapter {number}"


def load_epub(data: bytes, path: str, options: LoadOptions | None = None) -> Document:
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _corrupt(f"not a zip archive ({short_detail(exc)})") from exc
    with book:
        if "META-INF/encryption.xml" in book.namelist():
            raise LoaderError("DRM-protected EPUB (its chapters are encrypted)")
        opf_name, opf = _package(book)
        chapters = _spine(opf_name, opf)
        if not chapters:
            raise _corrupt("the spine lists no chapters")
        parts = SectionedText(CHAPTER_SEPARATOR)
        read = 0
        for name in chapters:
            try:
                info = book.getinfo(name)
            except KeyError:
                logger.warning("%s: chapter %s is missing from the archive", path, name)
                continue
            read += info.file_size
            if read > MAX_UNCOMPRESSED:
                raise LoaderError(f"EPUB chapters unpack to over {MAX_UNCOMPRESSED // (1024 * 1024)} MB")
            try:
                title, text = html_text(book.read(name), f"{path}#{name}")
            except LoaderError:
                continue  # an empty or unreadable chapter (a cover page): the others are kept
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise _corrupt(f"{name}: {short_detail(exc)}") from exc
            if not text.strip():
                continue
            parts.add(text, _label(len(parts) + 1, title, text))
    if not parts:
        raise LoaderError("EPUB has no text")
    metadata: dict[str, Any] = {"chapters": len(parts)}
    book_title = _book_title(opf)
    if book_title:
        metadata["title"] = book_title
    return Document(
        path=path, text=parts.text, file_type="epub", metadata=metadata, sections=tuple(parts.sections)
    )
