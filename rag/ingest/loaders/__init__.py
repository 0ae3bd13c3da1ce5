"""File loaders: turn a file on disk into a ``Document``, picking the format by suffix.

Every problem with a file (missing, unreadable, too large, empty, binary, undecodable, corrupt)
raises ``LoaderError`` whose message is the one-line reason shown in the ingest summary.
Heavy parsers (pypdf, pdfplumber, pypdfium2, python-docx, python-pptx, openpyxl, odfpy, BeautifulSoup, the OCR
engine) are imported only when a file needs them. ``LoadOptions`` carries the OCR mode and the bounds on slow or
huge files; attachments of e-mails are loaded by the same registry (``Document.attachments``).
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from collections.abc import Callable

from rag.errors import LoaderError
from rag.ingest.loaders import (
    code,
    docx,
    epub,
    html,
    image,
    mail,
    opendocument,
    pdf,
    pptx,
    spreadsheet,
    structured,
    tabular,
    text,
)
from rag.ingest.loaders.base import OCR_MODES, LoaderFunc, LoadOptions, container_of, short_detail
from rag.ingest.loaders.text import decode_bytes
from rag.types import Document

__all__ = [
    "DEFAULT_MAX_BYTES",
    "OCR_MODES",
    "LoadOptions",
    "container_of",
    "decode_bytes",
    "is_supported",
    "load",
    "supported_suffixes",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def _plain(loader: Callable[[bytes, str], Document]) -> LoaderFunc:
    """A loader that needs no options."""

    def load_plain(data: bytes, path: str, options: LoadOptions) -> Document:
        return loader(data, path)

    return load_plain


def _build_registry() -> dict[str, LoaderFunc]:
    registry: dict[str, LoaderFunc] = {}
    for suffixes, loader in (
        (text.SUFFIXES, _plain(text.load_text)),
        (html.SUFFIXES, _plain(html.load_html)),
        (pdf.SUFFIXES, pdf.load_pdf),
        (docx.SUFFIXES, _plain(docx.load_docx)),
        (tabular.SUFFIXES, _plain(tabular.load_tabular)),
        (structured.SUFFIXES, _plain(structured.load_structured)),
        (code.SUFFIXES, _plain(code.load_code)),
        (image.SUFFIXES, image.load_image),
        (pptx.SUFFIXES, pptx.load_pptx),
        (spreadsheet.SUFFIXES, spreadsheet.load_xlsx),
        (opendocument.ODS_SUFFIXES, opendocument.load_ods),
        (opendocument.ODT_SUFFIXES, opendocument.load_odt),
        (epub.SUFFIXES, epub.load_epub),
        (mail.EML_SUFFIXES, functools.partial(mail.load_eml, load_part=_load_part)),
        (mail.MBOX_SUFFIXES, functools.partial(mail.load_mbox, load_part=_load_part)),
    ):
        for suffix in suffixes:
            if suffix in registry:
                raise RuntimeError(f"suffix {suffix} registered twice")
            registry[suffix] = loader
    return registry


def _load_part(data: bytes, path: str, options: LoadOptions) -> Document:
    """A document carried inside another file (an e-mail attachment): its bytes, loaded by ``path``'s suffix."""
    loader = _loader_for(path)
    if loader is None:
        raise _unsupported(path)
    if not data:
        raise LoaderError(text.EMPTY_REASON)
    return _checked(_parse(loader, data, path, options), path)


_BY_SUFFIX: dict[str, LoaderFunc] = _build_registry()
_BY_NAME: dict[str, LoaderFunc] = {name: _plain(code.load_code) for name in code.NAMES}


def supported_suffixes() -> frozenset[str]:
    """Lower-case suffixes (with the dot) that ``load`` can read."""
    return frozenset(_BY_SUFFIX)


def _suffix(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[1].lower()


def _loader_for(path: str) -> LoaderFunc | None:
    name = os.path.basename(path).lower()
    if name in _BY_NAME:
        return _BY_NAME[name]
    return _BY_SUFFIX.get(_suffix(path))


def is_supported(path: str | os.PathLike[str]) -> bool:
    """True when ``load`` has a loader for this path's suffix (or special name such as Makefile)."""
    return _loader_for(os.fsdecode(path)) is not None


def format_size(size: int) -> str:
    """Human-readable size: MB from 1 MiB up, else KB or bytes."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


def _too_large(size: int, max_bytes: int) -> LoaderError:
    return LoaderError(
        f"file is {format_size(size)}, over the {format_size(max_bytes)} limit (set max_file_mb to raise it)"
    )


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    return f"cannot read file: {exc.strerror or short_detail(exc)}"


def _stat_regular_file(path: str) -> os.stat_result:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise LoaderError(_os_reason(exc)) from exc
    if stat.S_ISDIR(info.st_mode):
        raise LoaderError("is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise LoaderError("not a regular file")
    return info


def _read_bytes(path: str, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise LoaderError(_os_reason(exc)) from exc
    if len(data) > max_bytes:  # the file grew after it was checked
        raise _too_large(len(data), max_bytes)
    return data


def _unsupported(path: str) -> LoaderError:
    suffix = _suffix(path)
    if not suffix:
        return LoaderError("unsupported file type (no suffix)")
    return LoaderError(f"unsupported file type '{suffix}'")


def _parse(loader: LoaderFunc, data: bytes, path: str, options: LoadOptions) -> Document:
    try:
        return loader(data, path, options)
    except LoaderError:
        raise
    except Exception as exc:  # a library failing on odd input must not abort a whole ingest
        logger.debug("unexpected loader failure for %s", path, exc_info=True)
        raise LoaderError(f"cannot parse file: {type(exc).__name__}: {short_detail(exc)}") from exc


def _checked(document: Document, path: str) -> Document:
    if not document.text.strip():
        raise LoaderError("no text content")
    logger.debug("loaded %s: %s, %d chars", path, document.file_type, len(document.text))
    return document


def load(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES, options: LoadOptions | None = None
) -> Document:
    """Read one file into a Document, or raise LoaderError with a one-line reason.

    ``path`` is kept as given (as a string) in ``Document.path``; the size limit is checked with
    ``stat`` before anything is read. ``options``: OCR and the bounds on slow or huge files (defaults when None).
    """
    options = options or LoadOptions()
    if options.ocr not in OCR_MODES:
        raise ValueError(f"ocr={options.ocr!r}; choose {', '.join(OCR_MODES)}")
    path_str = os.fsdecode(path)
    info = _stat_regular_file(path_str)
    loader = _loader_for(path_str)
    if loader is None:
        raise _unsupported(path_str)
    if info.st_size > max_bytes:
        raise _too_large(info.st_size, max_bytes)
    data = _read_bytes(path_str, max_bytes)
    if not data:
        raise LoaderError(text.EMPTY_REASON)
    return _checked(_parse(loader, data, path_str, options), path_str)
