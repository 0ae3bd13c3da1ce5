"""Decoding that cannot run away: a small model that starts repeating itself is stopped, and the repeats cut.

Greedy decoding of a small model sometimes falls into a loop: the same citation to the token limit
(``[1][1][1]…``), or the same sentence or list item over and over. A penalty on repeated tokens would also punish
the copying of passage words that a grounded answer needs, so the loop is caught in the text instead: when the
end of the text is one unit written three times running (a citation marker, or any span of ``MIN_SPAN`` or more
characters that is not only whitespace, punctuation or code-fence characters), generation stops and the text keeps
one copy of the unit. ``guarded`` wraps any stream of pieces; ``without_loops`` cleans a finished text (and also
drops a line or sentence repeated later in the answer).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rag.text.sentences import MARKER

MIN_SPAN = 8  # characters of a repeated unit that is not a citation marker
REPEATS = 3  # copies in a row that make a loop
MAX_UNIT = 400  # the longest unit looked for (a repeated paragraph)
_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*+])\s+")
_SOLID = re.compile(r"[\w\u4e00-\u9fff]")  # a unit of only spaces, punctuation, "-" or "`" is not a loop (rules)


def loop_at_end(text: str) -> int | None:
    """Where the loop at the end of ``text`` starts repeating (the end of its first copy), or None."""
    n = len(text)
    for size in range(1, min(MAX_UNIT, n // REPEATS) + 1):
        unit = text[n - size :]
        if not _SOLID.search(unit):
            continue
        if size < MIN_SPAN and not MARKER.search(unit):
            continue
        if all(text[n - (k + 1) * size : n - k * size] == unit for k in range(1, REPEATS)):
            start = n - REPEATS * size
            while start >= size and text[start - size : start] == unit:  # more copies before
                start -= size
            return start + size
    return None


def guarded(pieces: Iterator[str]) -> Iterator[str]:
    """``pieces`` until the text they make ends in a loop (``loop_at_end``); the piece that completed it is the
    last one passed on. Closing the source stops the model."""
    text = ""
    try:
        for piece in pieces:
            text += piece
            yield piece
            tail = text[-REPEATS * MAX_UNIT :]
            if loop_at_end(tail) is not None:
                break
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


def without_loops(text: str) -> str:
    """``text`` with a loop at its end cut to one copy (repeatedly: a loop of loops), and lines repeated later in
    the text (the same line of ``MIN_SPAN`` or more characters, citation markers and list numbers aside, outside
    code fences) dropped after their first time."""
    while (cut := loop_at_end(text.rstrip())) is not None:
        text = text.rstrip()[:cut]
    return _drop_repeated_lines(text).strip()


def _drop_repeated_lines(text: str) -> str:
    seen: set[str] = set()
    out: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        key = _LIST_MARK.sub("", MARKER.sub("", line)).strip().casefold()
        if not in_code and len(key) >= MIN_SPAN and _SOLID.search(key):
            if key in seen:
                continue
            seen.add(key)
        out.append(line)
    return "\n".join(out)
