"""The one sentence splitter: answers, passages and prompts are cut into sentences the same way everywhere.

A sentence ends at ``. ! ? ;`` followed by whitespace (so "3.5" stays whole), at CJK end punctuation (no space
needed), or at a line break. Citation markers right after the punctuation (``... in 2017. [1]``) belong to the
sentence before them. ``split_sentences`` also drops list and heading markup at the start of a sentence.
"""

from __future__ import annotations

import re

# [3], [1, 2], [1,2], and full-width digits [１]; at most 3 digits keeps "[2017]" out.
MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,，]\s*\d{1,3})*)\s*\]")
_END = re.compile(r"(?:[.!?;](?:\s*" + MARKER.pattern + r")*(?=\s|$)|[。！？；](?:\s*" + MARKER.pattern + r")*|\n+)")
SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+(?=[.,;:!?。，；：！？])")
MARKUP = re.compile(r"^\s*(#+|[-*>]|\d+[.)])\s+")


def strip_markers(text: str) -> str:
    """``text`` without citation markers (and the spaces they leave before punctuation)."""
    return SPACE_BEFORE_PUNCT.sub("", MARKER.sub("", text)).strip()


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` as written, each with the citation markers that follow it."""
    out: list[str] = []
    start = 0
    for match in _END.finditer(text):
        piece = text[start : match.end()].strip()
        start = match.end()
        if piece:
            out.append(piece)
    tail = text[start:].strip()
    if tail:
        if out and not strip_markers(tail):  # markers alone on the last line belong to the sentence before
            out[-1] = out[-1] + " " + tail
        else:
            out.append(tail)
    return out


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` with list and heading markup (``- ``, ``# ``, ``1. ``) removed."""
    out = []
    for piece in sentences(text):
        piece = MARKUP.sub("", piece).strip()
        if piece:
            out.append(piece)
    return out
