"""Split documents into passages with langchain-text-splitters, keeping each chunk's character span.

Chunk size is counted in tokens of the embedder's own tokenizer (when it has one), so no passage is
silently cut off at the embedder's window. Separators also split Chinese text at 。！？；，.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from rag.types import Chunk, Document

# Paragraphs first, then lines, then sentence ends (Chinese full-width and Latin), then clauses, then words.
SEPARATORS: list[str] = [
    "\n\n",
    "\n",
    "。",
    "！",
    "？",
    "；",
    ". ",
    "! ",
    "? ",
    "; ",
    "，",
    ", ",
    "、",
    " ",
    "",
]


class Chunker:
    """Splits a Document into Chunks of at most ``chunk_size`` units of ``length_function``."""

    def __init__(
        self,
        chunk_size: int,
        chunk_overlap: int,
        length_function: Callable[[str], int] = len,
    ) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            keep_separator="end",
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            length_function=length_function,
            strip_whitespace=True,
        )

    def split(self, document: Document) -> list[Chunk]:
        """Chunks in text order. A document with sections (slides, sheets, chapters, messages) is split section by
        section, so that no chunk spans two of them and each citation names one slide, sheet or chapter."""
        text = document.text
        line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        starts = [s.start for s in document.sections] or [0]
        spans = zip([0, *starts[1:]], [*starts[1:], len(text)], strict=True)
        chunks: list[Chunk] = []
        for span_start, span_end in spans:
            chunks.extend(self._split_span(document, span_start, span_end, line_starts))
        return chunks

    def _split_span(self, document: Document, span_start: int, span_end: int, line_starts: list[int]) -> list[Chunk]:
        text = document.text
        chunks: list[Chunk] = []
        cursor = span_start
        for piece in self._splitter.split_text(text[span_start:span_end]):
            start = text.find(piece, cursor, span_end)
            if start < 0:  # should not happen: pieces are stripped substrings; fall back to a search of the span
                start = text.find(piece, span_start, span_end)
                if start < 0:
                    continue
            end = start + len(piece)
            chunks.append(
                Chunk(
                    text=piece,
                    start=start,
                    end=end,
                    start_line=bisect.bisect_right(line_starts, start),
                    end_line=bisect.bisect_right(line_starts, max(start, end - 1)),
                    page=document.page_at(start),
                    source=document.path,
                    section=document.section_at(start, end),
                )
            )
            # the next chunk starts after this one's start (chunks may overlap)
            cursor = start + 1
        return chunks
