"""Decoding of text files (BOM, UTF-8, detected legacy encodings) and the plain-text/markdown loader."""

from __future__ import annotations

import codecs
import logging
import os
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import normalise_newlines, short_detail
from rag.types import Document

logger = logging.getLogger(__name__)

TEXT_SUFFIXES: frozenset[str] = frozenset({".txt", ".text", ".rst", ".log"})
MARKDOWN_SUFFIXES: frozenset[str] = frozenset({".md", ".markdown", ".mdx"})
SUFFIXES: frozenset[str] = TEXT_SUFFIXES | MARKDOWN_SUFFIXES

BINARY_REASON = "binary file (not text)"
EMPTY_REASON = "empty file"

_SNIFF_BYTES = 8192
_PATTERN_BYTES = 64 * 1024
# Share of control characters (other than whitespace and ESC) above which content is taken as binary.
_MAX_CONTROL_RATIO = 0.10
# Longest BOM first: the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ALLOWED_CONTROL = frozenset("\t\n\r\f\v\x1b")
_ALLOWED_CONTROL_BYTES = frozenset(ord(c) for c in _ALLOWED_CONTROL)
# When charset-normalizer cannot tell candidates apart (common on short texts), prefer the encodings
# that are most likely in practice; the order depends on whether non-ASCII bytes come in runs (CJK).
_PREFER_MULTIBYTE = ("gb18030", "big5", "cp932", "cp949", "euc_jp", "cp1252", "cp1251", "cp1250")
_PREFER_SINGLE_BYTE = ("cp1252", "cp1251", "cp1250", "gb18030", "big5", "cp932", "cp949", "euc_jp")


def detect_bom(data: bytes) -> tuple[str, int] | None:
    """Codec name and BOM length when ``data`` starts with a Unicode byte-order mark."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def _control_ratio_bytes(sample: bytes) -> float:
    if not sample:
        return 0.0
    controls = sum(1 for b in sample if (b < 0x20 and b not in _ALLOWED_CONTROL_BYTES) or b == 0x7F)
    return controls / len(sample)


def _control_ratio_text(sample: str) -> float:
    if not sample:
        return 0.0
    controls = sum(1 for ch in sample if (ch < " " and ch not in _ALLOWED_CONTROL) or ch == "\x7f")
    return controls / len(sample)


def looks_binary(data: bytes) -> bool:
    """True for NUL bytes or many control bytes near the start (only meaningful without a UTF-16/32 BOM)."""
    sample = data[:_SNIFF_BYTES]
    return b"\x00" in sample or _control_ratio_bytes(sample) > _MAX_CONTROL_RATIO


def _decode_with_bom(data: bytes, encoding: str, bom_len: int) -> str:
    try:
        return data[bom_len:].decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "utf-32-le":  # FF FE 00 00 is also a UTF-16 LE BOM followed by a NUL character
            return _decode_with_bom(data, "utf-16-le", len(codecs.BOM_UTF16_LE))
        raise LoaderError(f"cannot decode as {encoding.upper()} despite its byte-order mark: {exc.reason}") from exc


def _high_bytes_in_runs(data: bytes) -> bool:
    """True when most non-ASCII bytes sit next to another non-ASCII byte (typical of CJK encodings)."""
    data = data[:_PATTERN_BYTES]
    high = paired = 0
    last = len(data) - 1
    for i, b in enumerate(data):
        if b < 0x80:
            continue
        high += 1
        if (i > 0 and data[i - 1] >= 0x80) or (i < last and data[i + 1] >= 0x80):
            paired += 1
    return high > 0 and paired / high > 0.5


def _pick_encoding(matches: list[Any], data: bytes) -> str:
    """Best charset-normalizer match, breaking ties between equally plausible ones by likelihood."""
    best = matches[0]
    tied = [m for m in matches if abs(m.chaos - best.chaos) < 1e-6 and abs(m.coherence - best.coherence) < 1e-6]
    preference = _PREFER_MULTIBYTE if _high_bytes_in_runs(data) else _PREFER_SINGLE_BYTE
    for wanted in preference:
        for match in tied:
            if wanted in match.could_be_from_charset:
                return wanted
    return str(best.encoding)


def _decode_detected(data: bytes, path: str) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise LoaderError("could not detect the text encoding (not UTF-8, no known encoding fits)")
    encoding = _pick_encoding(matches, data)
    logger.debug("%s: not UTF-8, decoding as %s", path, encoding)
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return str(matches[0])


def decode_bytes(data: bytes, path: str | os.PathLike[str], *, hint: str | None = None) -> str:
    """Decode file bytes to text with LF newlines, or raise LoaderError for binary or undecodable data.

    Order: byte-order mark (UTF-8/16/32), strict UTF-8, the ``hint`` encoding (e.g. an HTML meta
    charset), then charset-normalizer's best guess.
    """
    path = os.fspath(path)
    bom = detect_bom(data)
    if bom is not None:
        text = _decode_with_bom(data, *bom)
    elif looks_binary(data):
        raise LoaderError(BINARY_REASON)
    else:
        text = _decode_without_bom(data, path, hint)
    if _control_ratio_text(text[:_SNIFF_BYTES]) > _MAX_CONTROL_RATIO or "\x00" in text[:_SNIFF_BYTES]:
        raise LoaderError(BINARY_REASON)
    return normalise_newlines(text)


def _decode_utf8(data: bytes, path: str) -> str | None:
    """Strict UTF-8, tolerating only a multi-byte character cut off at the very end of the file."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            logger.warning("%s: ends in the middle of a UTF-8 character (file cut short?)", path)
            return data[: exc.start].decode("utf-8", errors="strict") + "\ufffd"
    return None


def _decode_without_bom(data: bytes, path: str, hint: str | None) -> str:
    text = _decode_utf8(data, path)
    if text is not None:
        return text
    if hint:
        try:
            return data.decode(hint)
        except (UnicodeDecodeError, LookupError) as exc:
            logger.debug("%s: declared encoding %r does not fit: %s", path, hint, short_detail(exc))
    return _decode_detected(data, path)


def read_text(data: bytes, path: str, *, hint: str | None = None) -> str:
    """``decode_bytes`` plus the check that the text is not empty or whitespace only."""
    text = decode_bytes(data, path, hint=hint)
    if not text.strip():
        raise LoaderError(EMPTY_REASON)
    return text


def load_text(data: bytes, path: str) -> Document:
    """Plain text and markdown: the decoded text as-is (offsets point into the file). Markdown's front matter gives
    the title (else its first heading) and metadata; its display text is made per chunk (``rag.ingest.markdown``)."""
    suffix = os.path.splitext(path)[1].lower()
    text = read_text(data, path)
    if suffix not in MARKDOWN_SUFFIXES:
        return Document(path=path, text=text, file_type="text")
    from rag.ingest import markdown

    body, keys = markdown.front_matter(text)
    metadata = markdown.metadata_of(keys)
    title = str(metadata.pop("title", "") or "").strip()
    if not title:
        first = markdown.headings(text[body:])
        title = first[0].title if first else ""
    if title:
        metadata["title"] = title
    return Document(path=path, text=text, file_type="markdown", metadata=metadata)
