"""Shared pieces of the loaders: the loader signature, the options a load takes, attachment keys and
error-message helpers."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from rag.config import OCR_MODES
from rag.types import Document, Section

__all__ = ["OCR_MODES", "LoadOptions", "LoaderFunc", "attachment_key", "container_of", "short_detail"]

# Every format loader takes the raw bytes of the file, the path as given and the load options, and returns a
# Document (or raises LoaderError with the one-line reason).
LoaderFunc = Callable[[bytes, str, "LoadOptions"], Document]

_MAX_DETAIL = 120

# What separates a container file's path from the name of a document inside it: "mail.eml#report.pdf".
ATTACHMENT_MARK = "#"
# Formats whose files carry other documents (their keys are "PARENT#NAME").
CONTAINER_SUFFIXES = frozenset({".eml", ".mbox"})


@dataclass(frozen=True)
class LoadOptions:
    """How files are read: OCR (``auto``: pages without a text layer and images; ``always``: every PDF page is
    recognised, its text layer ignored; ``never``), and the bounds on slow or huge files. A bound that stops a file
    early is written to ``Document.metadata["truncated"]`` and shown in the ingest summary."""

    ocr: str = "auto"
    ocr_max_pages: int = 200  # pages (and images) recognised per file
    ocr_max_seconds: float = 600.0  # OCR time per file; the pages after it are left out
    max_rows: int = 200_000  # spreadsheet rows per file


def short_detail(exc: BaseException) -> str:
    """First line of an exception message, shortened for a one-line reason (falls back to the type name)."""
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else ""
    if not text:
        return type(exc).__name__
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3].rstrip() + "..."
    return text


def normalise_newlines(text: str) -> str:
    """Turn CRLF and lone CR line endings into LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def attachment_key(parent: str, name: str) -> str:
    """The key a document found inside ``parent`` is stored under ("inbox.mbox#message-3/report.pdf")."""
    return f"{parent}{ATTACHMENT_MARK}{name}"


def container_of(key: str) -> str | None:
    """For a key made by ``attachment_key``, the container file's path; None for a plain path."""
    head, mark, _ = key.partition(ATTACHMENT_MARK)
    while mark:
        if os.path.splitext(head)[1].lower() in CONTAINER_SUFFIXES:
            return head
        more, mark, _ = key[len(head) + 1 :].partition(ATTACHMENT_MARK)
        head = f"{head}{ATTACHMENT_MARK}{more}"
    return None


class SectionedText:
    """A document's text built from pieces joined by ``separator``, each piece the start of a named section (a
    slide, a sheet, a chapter, a message): ``text`` and ``sections`` as ``Document`` wants them."""

    def __init__(self, separator: str = "\n\n") -> None:
        self.separator = separator
        self.parts: list[str] = []
        self.sections: list[Section] = []
        self._position = 0

    def add(self, text: str, label: str, rows: tuple[int, ...] = ()) -> None:
        if self.parts:
            self._position += len(self.separator)
        self.sections.append(Section(self._position, label, rows))
        self.parts.append(text)
        self._position += len(text)

    def __len__(self) -> int:
        return len(self.parts)

    @property
    def text(self) -> str:
        return self.separator.join(self.parts)
