"""PDF page text as people read it: the clean-up the PDF loader applies to every page's extracted text.

Why each step (measured on ``../shared/data/docsqa``: ``benchmarks/pdf_text.py``):

- **Characters.** pdfTeX fonts map "fi", "fl", "ffi" to the ligature code points U+FB00-FB06, so "file" reaches the
  index as "ﬁle" and a search for "file" misses it: ligatures are always expanded. The rest of NFKC (full-width
  letters and digits, no-break spaces, compatibility ideographs, math letters) is applied character by character,
  except where it changes what the text says: superscripts and subscripts ("x²" is not "x2", a footnote mark "¹⁴"
  glued to a word), fractions, circled numbers, and full-width punctuation written among CJK characters ("，" in
  Chinese prose stays a Chinese comma). Control characters that extractors leave for glyphs without a Unicode
  mapping are dropped.
- **Hyphenation.** A word broken at a line end ("inter-" / "faces") is joined when the line ends with a letter
  and "-" and the next line starts with a lower-case letter; the rest of the word moves up, so the line
  structure stays. Two guards keep real hyphens (the word is rejoined with its hyphen): the word is part of a
  URL or path ("debian-" / "faq" in ``.../manuals/debian-faq``), or the document spells the word elsewhere
  with a hyphen and never without ("camlidl-generated").
- **Running headers and footers.** Lines that recur at the top or the bottom of many pages (book title and page
  number, "Company | Form 10-Q | 12") are noise in every chunk that starts a page and make every page look
  alike to lexical search: a line within the first or last ``RUNNING_EDGE_LINES`` non-empty lines of a page
  whose shape (digits and roman page numbers replaced, case and spacing ignored) occurs at that edge on at least
  ``RUNNING_MIN_SHARE`` of the pages (and ``RUNNING_MIN_PAGES``) is dropped, and so is a bare page number there.

Every step works page by page, so page offsets (and the ``p. N`` of citations) stay those of the PDF.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["PageCleanup", "clean_pages", "normalise_characters"]

LIGATURES: dict[str, str] = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
# NFKC decomposition tags whose replacement changes what the text says.
_KEEP_TAGS = frozenset({"<super>", "<sub>", "<fraction>", "<circle>"})
# Lines looked at from each edge of a page, and how widely a line shape must recur there to be a running line.
RUNNING_EDGE_LINES = 3
RUNNING_MIN_SHARE = 0.3
RUNNING_MIN_PAGES = 3

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CJK_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")
# A letter, "-" at a line end, then the next line's first word when it starts with a lower-case letter.
_BROKEN_WORD = re.compile(r"(\S*[^\W\d_])-\n[ \t]*([a-z]\S*)[^\S\n]*")
_WORD = re.compile(r"[^\W\d_][\w]*(?:-[^\W\d_][\w]*)*")
_DIGITS = re.compile(r"\d+")
# Front-matter page numbers (i to xxxix) at the start or end of a line.
_ROMAN = r"x{0,3}(?:ix|iv|v?i{1,3}|v)|x{1,3}"
_ROMAN_EDGE = re.compile(rf"(?:(?<=\s)|^)(?:{_ROMAN})$|^(?:{_ROMAN})(?=\s|$)")
# A broken word's first part that looks like code, an option, a URL or a path keeps its hyphen.
_CODE_HEAD = re.compile(r"^-|[/\\._:=@\d]")


@dataclass
class PageCleanup:
    """What ``clean_pages`` changed, for ``Document.metadata`` and the benchmark."""

    joined: int = 0  # words broken at a line end and joined
    kept_hyphens: int = 0  # broken words rejoined with their hyphen (URL/path or hyphenated elsewhere)
    running_lines: int = 0  # header/footer/page-number lines dropped
    joins: list[tuple[str, str]] = field(default_factory=list)  # (as printed, as read), for spot checks


def normalise_characters(text: str) -> str:
    """Ligatures expanded, NFKC where it keeps the meaning, stray control characters dropped (see the module)."""
    text = _CONTROL.sub("", text)
    if not _NON_ASCII.search(text):
        return text
    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    for i, char in enumerate(text):
        if char < "\x80":
            out.append(char)
        else:
            out.append(_compatible(char, text, i))
    return unicodedata.normalize("NFC", "".join(out))


def _compatible(char: str, text: str, index: int) -> str:
    if char in LIGATURES:
        return LIGATURES[char]
    decomposition = unicodedata.decomposition(char)
    if not decomposition.startswith("<") and not ("\uf900" <= char <= "\ufaff"):
        return char
    tag = decomposition.split(" ", 1)[0]
    if tag in _KEEP_TAGS:
        return char
    replaced = unicodedata.normalize("NFKC", char)
    if tag == "<wide>" and not replaced.isalnum() and _beside_cjk(text, index):
        return char
    return replaced


def _beside_cjk(text: str, index: int) -> bool:
    """Whether the nearest character on either side, past spaces and CJK punctuation, is a CJK character."""
    for step in (-1, 1):
        i = index + step
        while 0 <= i < len(text) and (text[i].isspace() or _CJK_PUNCTUATION.match(text[i])):
            i += step
        if 0 <= i < len(text) and _CJK.match(text[i]):
            return True
    return False


def clean_pages(pages: list[str]) -> tuple[list[str], PageCleanup]:
    """Each page's text normalised, its broken words joined and the running headers/footers dropped."""
    report = PageCleanup()
    pages = [normalise_characters(page) for page in pages]
    pages = _drop_running_lines(pages, report)
    vocabulary = Counter(word.lower() for page in pages for word in _WORD.findall(page))
    pages = [_join_broken_words(page, vocabulary, report) for page in pages]
    return pages, report


def _join_broken_words(text: str, vocabulary: Counter[str], report: PageCleanup) -> str:
    def join(match: re.Match[str]) -> str:
        head, tail = match.group(1), match.group(2)
        end = match.end()
        rest_empty = end >= len(text) or text[end] == "\n"
        word_head = _WORD.findall(head)
        stem = word_head[-1] if word_head else head
        tail_word = _WORD.match(tail)
        rest = tail_word.group(0) if tail_word else tail
        joined = (stem + rest).lower()
        hyphenated = f"{stem}-{rest}".lower()
        if _looks_like_code(head) or (vocabulary[hyphenated] and not vocabulary[joined]):
            report.kept_hyphens += 1
            word = f"{head}-{tail}"
        else:
            report.joined += 1
            word = f"{head}{tail}"
        if len(report.joins) < 1000:
            report.joins.append((f"{head}-/{tail}", word))
        return word if rest_empty else word + "\n"

    return _BROKEN_WORD.sub(join, text)


def _looks_like_code(token: str) -> bool:
    return bool(_CODE_HEAD.search(token))


def _shape(line: str) -> str:
    """A line as compared across pages: digits and roman page numbers replaced, case and spacing ignored."""
    shape = _ROMAN_EDGE.sub("#", " ".join(line.split()).casefold())
    return "".join(_DIGITS.sub("#", shape).split())


def _edges(lines: list[str]) -> tuple[list[int], list[int]]:
    """Indexes of the first and of the last RUNNING_EDGE_LINES non-empty lines (at most half the page's lines each,
    so that the body of a short page is never taken for an edge)."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    size = min(RUNNING_EDGE_LINES, len(filled) // 2)
    return filled[:size], filled[::-1][:size]


def _drop_running_lines(pages: list[str], report: PageCleanup) -> list[str]:
    split = [page.split("\n") for page in pages]
    top: Counter[str] = Counter()
    bottom: Counter[str] = Counter()
    for lines in split:
        first, last = _edges(lines)
        top.update({_shape(lines[i]) for i in first})
        bottom.update({_shape(lines[i]) for i in last})
    filled = sum(1 for page in pages if page.strip())
    needed = max(RUNNING_MIN_PAGES, RUNNING_MIN_SHARE * filled)
    running_top = {shape for shape, n in top.items() if n >= needed}
    running_bottom = {shape for shape, n in bottom.items() if n >= needed}
    if filled < RUNNING_MIN_PAGES:
        return pages
    cleaned: list[str] = []
    for lines in split:
        drop = set(_edge_run(lines, _edges(lines)[0], running_top))
        drop.update(_edge_run(lines, _edges(lines)[1], running_bottom))
        report.running_lines += len(drop)
        kept = [line for i, line in enumerate(lines) if i not in drop]
        cleaned.append("\n".join(kept).strip())
    return cleaned


def _edge_run(lines: list[str], order: Iterable[int], running: set[str]) -> list[int]:
    """From a page edge inwards, the lines that are running lines or bare page numbers (stops at the first other)."""
    dropped: list[int] = []
    for i in order:
        shape = _shape(lines[i])
        if shape in running:
            dropped.append(i)
        else:
            break
    return dropped
