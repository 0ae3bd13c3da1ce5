"""Markdown and MDX as people write them: front matter, headings, blocks, and the display text of a passage.

The loader keeps a Markdown file's text exactly as it is (offsets, lines and the page's highlight point into it);
what this module adds:

- ``front_matter``: a leading ``---`` YAML block, parsed (``title`` becomes the document's title, the other
  scalar keys its metadata) and left out of the passages;
- ``headings`` and ``heading_path``: the ATX headings outside code, so each passage knows the section it is in
  ("Advanced Middleware › GZipMiddleware");
- ``blocks``: paragraphs, headings, lists, tables and whole code fences, the units a Markdown chunk is packed
  from (``rag.ingest.chunking``), so a code fence is only split when it is longer than a chunk;
- ``display``: a passage's text as the model and the reader see it: HTML entities decoded, admonitions and
  MkDocs/MDX components reduced to their text with their label ("Tip: ..."), include markers
  (``{* ../x.py hl[3] *}``) and heading anchors (``{ #id }``) dropped, HTML tags outside code removed with their
  text kept (``<abbr title="...">ASGI</abbr>`` -> "ASGI"; ``<style>``/``<script>`` bodies dropped), links reduced to
  their text and images to their alt text, bold markers dropped; code (fences and inline) is kept verbatim (but
  for the colouring tags of terminal recordings), and line breaks, lists and tables stay as they are.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

_FENCE_OPEN = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t]*$")
_ANCHOR = re.compile(r"[ \t]*\{[ \t]*#[^}\n]*\}")
SEPARATOR = " › "


@dataclass(frozen=True)
class Heading:
    offset: int  # where the heading line starts
    level: int
    title: str  # display text of the heading


def code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every fenced code block, fences included; an unclosed fence runs to the end."""
    spans: list[tuple[int, int]] = []
    pos = 0
    opened: tuple[int, str] | None = None
    for line in text.splitlines(keepends=True):
        match = _FENCE_OPEN.match(line)
        if opened is None and match:
            opened = (pos, match.group(1))
        elif opened is not None and match and _closes(match.group(1), opened[1], line):
            spans.append((opened[0], pos + len(line.rstrip("\n"))))
            opened = None
        pos += len(line)
    if opened is not None:
        spans.append((opened[0], len(text)))
    return spans


def _closes(fence: str, opening: str, line: str) -> bool:
    """A fence line closes an open fence: the same character, at least as long, nothing after it."""
    return fence[0] == opening[0] and len(fence) >= len(opening) and not line.strip()[len(fence) :].strip()


def front_matter(text: str) -> tuple[int, dict[str, Any]]:
    """(offset where the body starts, the parsed keys) of a leading ``---`` YAML block; (0, {}) without one."""
    if not text.startswith("---\n"):
        return 0, {}
    end = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4:], re.MULTILINE)
    if end is None:
        return 0, {}
    import yaml

    body_start = 4 + end.end()
    try:
        data = yaml.safe_load(text[4 : 4 + end.start()])
    except yaml.YAMLError:
        data = None
    keys = data if isinstance(data, dict) else {}
    return body_start, {str(k): v for k, v in keys.items()}


def metadata_of(keys: dict[str, Any]) -> dict[str, Any]:
    """The front-matter keys a document keeps as metadata (for filters): scalars and lists of scalars."""
    scalar = (str, int, float, bool)
    out: dict[str, Any] = {}
    for key, value in keys.items():
        if isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value)):
            out[key] = value
    return out


def headings(text: str, code: list[tuple[int, int]] | None = None) -> list[Heading]:
    """The ATX headings (``#`` .. ``######``) outside code fences, in order."""
    code = code_spans(text) if code is None else code
    out: list[Heading] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        if not _inside(pos, code):
            match = _HEADING.match(line)
            if match:
                title = display(_ANCHOR.sub("", match.group(2)).rstrip("#").strip()).strip()
                if title:
                    out.append(Heading(pos, len(match.group(1)), title))
        pos += len(line)
    return out


def heading_path(found: list[Heading], offset: int, title: str = "") -> str:
    """ "Title › Section › Subsection" in effect at ``offset`` (a heading at ``offset`` itself counts); ``title`` (the
    document's, from front matter) leads when the first heading does not already say it."""
    stack: list[Heading] = []
    for heading in found:
        if heading.offset > offset:
            break
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
    parts = [h.title for h in stack]
    if title and (not parts or parts[0].casefold() != title.casefold()):
        parts.insert(0, title)
    return SEPARATOR.join(parts)


def _inside(offset: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= offset < end for start, end in spans)


def blocks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of the blocks of ``text[start:end]``: runs of non-blank lines, a heading line on its own, and
    each code fence whole (blank lines inside it included). Offsets are into ``text``; blank lines are left out."""
    out: list[tuple[int, int]] = []
    block_start: int | None = None
    segment = text[start:end]
    lines = segment.splitlines(keepends=True)
    offsets = []
    acc = 0
    for line in lines:
        offsets.append(acc)
        acc += len(line)
    fence_at = dict(code_spans(segment))
    n = 0
    while n < len(lines):
        line, local = lines[n], offsets[n]
        pos = start + local
        if local in fence_at:  # a code fence: one block, however many blank lines it holds
            if block_start is not None:
                out.append((block_start, pos))
                block_start = None
            stop = fence_at[local]
            out.append((pos, start + stop))
            while n < len(lines) and offsets[n] < stop:
                n += 1
            continue
        if not line.strip():
            if block_start is not None:
                out.append((block_start, pos))
                block_start = None
        elif _HEADING.match(line):
            if block_start is not None:
                out.append((block_start, pos))
            out.append((pos, pos + len(line.rstrip("\n"))))
            block_start = None
        elif block_start is None:
            block_start = pos
        n += 1
    if block_start is not None:
        out.append((block_start, end))
    return [(a, _rstrip_end(text, a, b)) for a, b in out if text[a:b].strip()]


def _rstrip_end(text: str, a: int, b: int) -> int:
    while b > a and text[b - 1].isspace():
        b -= 1
    return b


# -- display text ------------------------------------------------------------------------------------------------
_INCLUDE = re.compile(r"^[ \t]*\{\*.*?\*\}[ \t]*\n?", re.MULTILINE)
_INLINE_INCLUDE = re.compile(r"\{\*.*?\*\}")
_ADMONITION = re.compile(r"^[ \t]*(/{3,}|!{3}|\?{3}\+?|:{3,})[ \t]*([^\n]*)$", re.MULTILINE)
_MKDOCSTRINGS = re.compile(r"^[ \t]*:::[ \t]+([\w.]+)[ \t]*$", re.MULTILINE)
_DROP_ELEMENT = re.compile(r"<(style|script)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_IMG_TAG = re.compile(r"<img\b[^>]*?\balt\s*=\s*(\"[^\"]*\"|'[^']*')[^>]*>", re.IGNORECASE)
_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][\w.:-]*(?:\s+[^<>]*?)?\s*/?>")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\((?:[^()\n]|\([^)\n]*\))*\)")
_REF_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\[[^\]\n]*\]")
_LINK_DEFINITION = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]+\S+.*\n?", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$\n?", re.MULTILINE)
_BLANKS = re.compile(r"\n{3,}")
_INLINE_CODE = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_LABELS = {
    word: word.capitalize()
    for word in ("note", "tip", "warning", "danger", "info", "check", "important", "caution", "example", "details",
                 "question", "quote", "success", "bug", "hint", "attention", "error", "failure", "todo")
}  # fmt: skip
_LABELS["abstract"] = "Summary"


def display(text: str) -> str:
    """``text`` (Markdown or MDX) as a reader sees it (see the module doc); code is kept verbatim."""
    parts: list[str] = []
    pos = 0
    for start, end in code_spans(text):
        parts.append(_prose(text[pos:start]))
        parts.append(_code(text[start:end]))
        pos = end
    parts.append(_prose(text[pos:]))
    return _BLANKS.sub("\n\n", "".join(parts)).strip()


_MARKUP_LANGUAGES = re.compile(r"^[`~]+\s*\{?\.?(html|xml|jinja|jinja2|vue|jsx|tsx|svelte|markdown|md|svg)\b", re.I)
_STYLE_TAG = re.compile(r"</?(?:font|span|u|b|i|strong|em)\b[^<>\n]*>", re.IGNORECASE)


def _code(fence: str) -> str:
    """A code fence as written, except the colouring tags of a terminal recording (``<font color=…>``,
    ``<span style=…>``) in a fence that is not itself markup (HTML, XML, templates)."""
    if _MARKUP_LANGUAGES.match(fence):
        return fence
    return _STYLE_TAG.sub("", fence)


def _prose(text: str) -> str:
    """Text outside code fences; inline code spans are set aside and put back unchanged."""
    kept: list[str] = []

    def hold(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _INLINE_CODE.sub(hold, text)
    text = _COMMENT.sub("", text)
    text = _DROP_ELEMENT.sub("", text)
    text = _INCLUDE.sub("", text)
    text = _INLINE_INCLUDE.sub("", text)
    text = _ANCHOR.sub("", text)
    text = _MKDOCSTRINGS.sub(lambda m: m.group(1), text)
    text = _ADMONITION.sub(_admonition, text)
    text = _LINK_DEFINITION.sub("", text)
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _IMG_TAG.sub(lambda m: m.group(1)[1:-1], text)
    text = _BREAK_TAG.sub("\n", text)
    text = _TAG.sub("", text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _REF_LINK.sub(lambda m: m.group(1), text)
    text = _BOLD.sub(lambda m: m.group(1) or m.group(2), text)
    text = _TABLE_RULE.sub("", text)
    text = html.unescape(text)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)


def _admonition(match: re.Match[str]) -> str:
    """``/// note | Technical Details`` -> "Note: Technical Details"; a closing ``///`` -> nothing."""
    rest = match.group(2).strip()
    if not rest:
        return ""
    kind, _, title = rest.partition("|")
    kind = kind.strip().strip('"').strip()
    title = title.strip().strip('"')
    if match.group(1).startswith("!") or match.group(1).startswith("?"):  # !!! note "Title"
        kind, _, quoted = kind.partition(" ")
        title = title or quoted.strip().strip('"')
    word = kind.split()[0].lower() if kind else ""
    if word == "tab":  # //// tab | Python 3.10+
        return f"{title}:" if title else ""
    label = _LABELS.get(word, kind.capitalize() if kind else "")
    if not label:
        return title
    return f"{label}: {title}" if title else f"{label}:"
