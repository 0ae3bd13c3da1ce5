"""E-mail loaders (the standard library's ``email`` and ``mailbox``): ``.eml`` (one message) and ``.mbox`` (one
section per message, "message N").

A message's text is its Subject, From, To, Cc and Date lines, then the body: the plain-text part, or the HTML part
converted to text. The headers are also ``metadata`` (``from``, ``to``, ``subject``, ``date``...). Attachments of
supported types are loaded as their own documents, under the key ``MAIL#NAME`` (``inbox.mbox#message-3/NAME`` in a
mailbox); those that cannot be read are reported as skipped, and the message is kept either way.
"""

from __future__ import annotations

import email
import email.policy
import logging
import mailbox
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import ATTACHMENT_MARK, LoadOptions, SectionedText, attachment_key, short_detail
from rag.ingest.loaders.html import html_text
from rag.types import Document, SkippedFile

logger = logging.getLogger(__name__)

EML_SUFFIXES: frozenset[str] = frozenset({".eml"})
MBOX_SUFFIXES: frozenset[str] = frozenset({".mbox"})

# Loads an attachment's bytes as the document at a key (picked by the key's suffix); raises LoaderError.
PartLoader = Callable[[bytes, str, LoadOptions], Document]

HEADERS = ("subject", "from", "to", "cc", "date")
MESSAGE_SEPARATOR = "\n\n"
# Attachments inside attachments are followed this many levels deep (a forwarded message's attachments).
MAX_DEPTH = 3
_UNSAFE_NAME = re.compile(r"[/\\#\x00-\x1f]+")


@dataclass
class _Parts:
    attachments: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def _parse(data: bytes) -> Any:
    return email.message_from_bytes(data, policy=email.policy.default)


def _header(message: Any, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - a malformed header must not lose the message
        value = None
    return " ".join(str(value).split()) if value else ""


def _body(message: Any, key: str) -> str:
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except Exception:
        logger.debug("%s: no readable body", key, exc_info=True)
        return ""
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset or broken encoding
        raw = part.get_payload(decode=True) or b""
        content = raw.decode("utf-8", errors="replace")
    if part.get_content_subtype() == "html":
        try:
            return html_text(content.encode("utf-8"), key)[1]
        except LoaderError:
            return ""
    return "\n".join(line.rstrip() for line in str(content).replace("\r\n", "\n").split("\n")).strip()


def _name(part: Any, number: int) -> str:
    filename = part.get_filename() or ""
    if not filename and part.get_content_type() == "message/rfc822":
        filename = f"message-{number}.eml"
    filename = _UNSAFE_NAME.sub("_", os.path.basename(filename.replace("\\", "/"))).strip(" .")
    return filename or f"attachment-{number}"


def _payload(part: Any) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        return inner[0].as_bytes() if isinstance(inner, list) and inner else b""
    return part.get_payload(decode=True) or b""


def _attachments(
    message: Any, key: str, options: LoadOptions, load_part: PartLoader, parts: _Parts, in_mailbox: bool
) -> list[str]:
    """Load the attachments of supported types into ``parts``; return every attachment's name. Their keys are
    ``KEY#NAME``, or ``KEY/NAME`` for a message of a mailbox (``KEY`` is then ``inbox.mbox#message-N``)."""
    names: list[str] = []
    used: set[str] = set()
    try:
        attached = list(message.iter_attachments())
    except Exception:
        logger.debug("%s: cannot list attachments", key, exc_info=True)
        return names
    for number, part in enumerate(attached, start=1):
        if part.get_content_disposition() == "inline" and not part.get_filename():
            continue  # pictures of an HTML body (logos), not attachments
        name = _name(part, number)
        stem, suffix = os.path.splitext(name)
        unique, n = name, 2
        while unique in used:
            unique, n = f"{stem}-{n}{suffix}", n + 1
        used.add(unique)
        names.append(unique)
        child = f"{key}/{unique}" if in_mailbox else attachment_key(key, unique)
        if child.count(ATTACHMENT_MARK) > MAX_DEPTH:
            parts.skipped.append(SkippedFile(child, f"attachment nested more than {MAX_DEPTH} levels deep"))
            continue
        try:
            document = load_part(_payload(part), child, options)
        except LoaderError as exc:
            parts.skipped.append(SkippedFile(child, f"attachment: {exc}"))
            continue
        except Exception as exc:  # noqa: BLE001 - a damaged attachment must not lose the message
            parts.skipped.append(SkippedFile(child, f"attachment: {type(exc).__name__}: {short_detail(exc)}"))
            continue
        parts.attachments.append(document)
        parts.attachments.extend(document.attachments)
        parts.skipped.extend(document.skipped)
    return names


def _message(
    message: Any, key: str, options: LoadOptions, load_part: PartLoader, parts: _Parts, *, in_mailbox: bool = False
) -> tuple[str, dict[str, Any]]:
    """The text of one message (header lines, then the body) and its metadata."""
    headers = {name: _header(message, name) for name in HEADERS}
    headers = {name: value for name, value in headers.items() if value}
    if not headers and not _header(message, "message-id"):
        raise LoaderError("not an e-mail message (no Subject, From, To or Date header)")
    lines = [f"{name.capitalize()}: {value}" for name, value in headers.items()]
    body = _body(message, key)
    names = _attachments(message, key, options, load_part, parts, in_mailbox)
    if names:
        lines.append(f"Attachments: {', '.join(names)}")
    text = "\n".join(lines) + (f"\n\n{body}" if body else "")
    metadata: dict[str, Any] = dict(headers)
    if names:
        metadata["attachments"] = names
    return text, metadata


def _document(path: str, text: str, file_type: str, metadata: dict[str, Any], parts: _Parts, **extra: Any) -> Document:
    if "subject" in metadata:
        metadata.setdefault("title", metadata["subject"])
    return Document(
        path=path,
        text=text,
        file_type=file_type,
        metadata=metadata,
        attachments=tuple(parts.attachments),
        skipped=tuple(parts.skipped),
        **extra,
    )


def load_eml(data: bytes, path: str, options: LoadOptions, load_part: PartLoader) -> Document:
    """One message; its supported attachments become ``Document.attachments``."""
    parts = _Parts()
    text, metadata = _message(_parse(data), path, options, load_part, parts)
    return _document(path, text, "email", metadata, parts)


def load_mbox(data: bytes, path: str, options: LoadOptions, load_part: PartLoader) -> Document:
    """Every message of a mailbox, in file order, each a section "message N"."""
    parts = _Parts()
    texts = SectionedText(MESSAGE_SEPARATOR)
    with tempfile.TemporaryDirectory(prefix="rag-mbox-") as folder:
        copy = os.path.join(folder, "box.mbox")
        with open(copy, "wb") as handle:
            handle.write(data)
        box = mailbox.mbox(copy, create=False)
        try:
            keys = list(box.keys())
            for number, box_key in enumerate(keys, start=1):
                key = attachment_key(path, f"message-{number}")
                try:
                    message = _parse(box.get_bytes(box_key))
                    text, _ = _message(message, key, options, load_part, parts, in_mailbox=True)
                except LoaderError as exc:
                    parts.skipped.append(SkippedFile(key, str(exc)))
                    continue
                texts.add(text, f"message {number}")
        finally:
            box.close()
    if not texts:
        raise LoaderError("no e-mail messages in the mailbox (not an mbox file?)")
    metadata: dict[str, Any] = {"messages": len(keys)}
    return _document(path, texts.text, "mbox", metadata, parts, sections=tuple(texts.sections))
