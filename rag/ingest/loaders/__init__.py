"""File loaders: turn a file on disk into a ``Document``, picking the format by suffix.

Every problem with a file (missing, unreadable, too large, empty, binary, undecodable, corrupt)
raises ``LoaderError`` whose message is the one-line reason shown in the ingest summary.
Heavy parsers (pypdf, python-docx, BeautifulSoup) are imported only when a file needs them.
"""

from __future__ import annotations

import logging
import os
import stat

from rag.errors import LoaderError
from rag.ingest.loaders import code, docx, html, pdf, structured, tabular, text
from rag.ingest.loaders.base import LoaderFunc, short_detail
from rag.ingest.loaders.text import decode_bytes
from rag.types import Document

__all__ = ["DEFAULT_MAX_BYTES", "decode_bytes", "is_supported", "load", "supported_suffixes"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def _build_registry() -> dict[str, LoaderFunc]:
    registry: dict[str, LoaderFunc] = {}
    for suffixes, loader in (
        (text.SUFFIXES, text.load_text),
        (html.SUFFIXES, html.load_html),
        (pdf.SUFFIXES, pdf.load_pdf),
        (docx.SUFFIXES, docx.load_docx),
        (tabular.SUFFIXES, tabular.load_tabular),
        (structured.SUFFIXES, structured.load_structured),
        (code.SUFFIXES, code.load_code),
    ):
        for suffix in suffixes:
            if suffix in registry:
                raise RuntimeError(f"suffix {suffix} registered twice")
            registry[suffix] = loader
    return registry


_BY_SUFFIX: dict[str, LoaderFunc] = _build_registry()
_BY_NAME: dict[str, LoaderFunc] = {name: code.load_code for name in code.NAMES}


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


def _parse(loader: LoaderFunc, data: bytes, path: str) -> Document:
    try:
        return loader(data, path)
    except LoaderError:
        raise
    except Exception as exc:  # a library failing on odd input must not abort a whole ingest
        logger.debug("unexpected loader failure for %s", path, exc_info=True)
        raise LoaderError(f"cannot parse file: {type(exc).__name__}: {short_detail(exc)}") from exc


def load(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Read one file into a Document, or raise LoaderError with a one-line reason.

    ``path`` is kept as given (as a string) in ``Document.path``; the size limit is checked with
    ``stat`` before anything is read.
    """
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
    document = _parse(loader, data, path_str)
    if not document.text.strip():
        raise LoaderError("no text content")
    logger.debug("loaded %s: %s, %d chars", path_str, document.file_type, len(document.text))
    return document
