"""HTML loader: the visible text of the page, one block element per line, title first."""

from __future__ import annotations

import logging
import re
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import short_detail
from rag.ingest.loaders.text import read_text
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".html", ".htm", ".xhtml"})

# Elements whose content is never shown as text.
_HIDDEN = frozenset({"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object", "canvas"})
# Elements that start and end a paragraph (blank line around them).
_PARAGRAPH = frozenset(
    [
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "blockquote",
        "table",
        "ul",
        "ol",
        "dl",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "main",
        "form",
        "figure",
        "fieldset",
        "details",
        "address",
        "hr",
        "body",
    ]
)
# Elements that start and end a line.
_LINE = frozenset(
    [
        "div",
        "li",
        "tr",
        "dt",
        "dd",
        "caption",
        "figcaption",
        "summary",
        "legend",
        "option",
        "thead",
        "tbody",
        "tfoot",
        "center",
        "label",
        "menu",
        "dialog",
    ]
)
_CELLS = frozenset({"td", "th"})
_PREFORMATTED = frozenset({"pre", "textarea", "listing", "plaintext"})
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Labels that browsers decode with a superset encoding (WHATWG Encoding Standard).
_BROWSER_CHARSETS = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
}
_WHITESPACE = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def declared_charset(data: bytes) -> str | None:
    """Charset named by a ``<meta charset>`` or ``http-equiv`` tag near the start of the page."""
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    name = match.group(1).decode("ascii", "replace").lower()
    return _BROWSER_CHARSETS.get(name, name)


def _make_soup(text: str) -> Any:
    from bs4 import BeautifulSoup, FeatureNotFound

    try:
        return BeautifulSoup(text, "lxml")
    except (FeatureNotFound, ValueError) as exc:  # lxml missing or refusing the input
        logger.debug("lxml parser unavailable or failed (%s); using html.parser", short_detail(exc))
        return BeautifulSoup(text, "html.parser")


def _title_of(soup: Any) -> str:
    title = soup.find("title")
    if title is None:
        return ""
    return _WHITESPACE.sub(" ", title.get_text()).strip()


class _TextWriter:
    """Collects text pieces; block boundaries add only the newlines still missing at the end."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.trailing_newlines = 2  # the start of the text counts as a paragraph break
        self.after_space = False

    @property
    def at_line_start(self) -> bool:
        return self.trailing_newlines > 0

    def text(self, value: str, *, preformatted: bool) -> None:
        if not preformatted:
            value = _WHITESPACE.sub(" ", value)
            if self.at_line_start or self.after_space:
                value = value.lstrip(" ")
        if value:
            self._append(value)

    def newline(self, count: int = 1) -> None:
        missing = count - self.trailing_newlines
        if missing > 0:
            self._append("\n" * missing)

    def separator(self, value: str) -> None:
        if not self.at_line_start:
            self._append(value.lstrip(" ") if self.after_space else value)

    def _append(self, value: str) -> None:
        self.parts.append(value)
        stripped = value.rstrip("\n")
        if stripped:
            self.trailing_newlines = len(value) - len(stripped)
        else:
            self.trailing_newlines += len(value)
        self.after_space = value.endswith(" ")


def _open_tag(name: str, writer: _TextWriter) -> None:
    if name in _PARAGRAPH:
        writer.newline(2)
    elif name in _LINE or name == "br":
        writer.newline()
    elif name in _CELLS:
        writer.separator(" | ")


def _close_tag(name: str, writer: _TextWriter) -> None:
    if name in _PARAGRAPH:
        writer.newline(2)
    elif name in _LINE:
        writer.newline()


def _visible_text(root: Any) -> str:
    """Walk the tree without recursion (deep pages must not hit the recursion limit)."""
    from bs4 import NavigableString, Tag
    from bs4.element import CData

    writer = _TextWriter()
    pre_depth = 0
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if isinstance(node, Tag):
            name = (node.name or "").lower()
            if closing:
                pre_depth -= int(name in _PREFORMATTED)
                _close_tag(name, writer)
                continue
            if name in _HIDDEN:
                continue
            pre_depth += int(name in _PREFORMATTED)
            _open_tag(name, writer)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
        elif isinstance(node, NavigableString) and (type(node) is NavigableString or isinstance(node, CData)):
            writer.text(str(node), preformatted=pre_depth > 0)
    return "".join(writer.parts)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def html_text(data: bytes, path: str) -> tuple[str, str]:
    """The <title> and the visible text of an HTML page (also used for e-mail bodies and EPUB chapters)."""
    text = read_text(data, path, hint=declared_charset(data))
    try:
        soup = _make_soup(text)
        return _title_of(soup), _tidy(_visible_text(soup))
    except RecursionError as exc:
        raise LoaderError("HTML nested too deeply to parse") from exc


def load_html(data: bytes, path: str) -> Document:
    """Visible text of an HTML page; the <title> is the first line and ``metadata["title"]``."""
    title, body = html_text(data, path)
    if title and body.split("\n", 1)[0].strip() != title:
        body = f"{title}\n\n{body}" if body else title
    if not body.strip():
        raise LoaderError("HTML has no visible text")
    metadata: dict[str, Any] = {"title": title} if title else {}
    return Document(path=path, text=body, file_type="html", metadata=metadata)
