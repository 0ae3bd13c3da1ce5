"""Split documents into passages with langchain-text-splitters, keeping each chunk's character span.

Chunk size is counted in tokens of the embedder's own tokenizer (when it has one), so no passage is
silently cut off at the embedder's window. Separators also split Chinese text at 。！？；，.

A piece much smaller than a chunk (a title or heading line that the splitter cut off because the paragraph under
it did not fit beside it) is joined to the chunk after it (the last one to the chunk before): a passage that is
only "Upgrading" or "零食物语" ranks high for questions about its topic and holds no answer.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import replace

from rag.ingest import markdown
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


SMALL = 8  # a piece under 1/8 of the chunk size is joined to its neighbour


def _span(document: Document, start: int, end: int, line_starts: list[int]) -> Chunk:
    return Chunk(
        text=document.text[start:end],
        start=start,
        end=end,
        start_line=bisect.bisect_right(line_starts, start),
        end_line=bisect.bisect_right(line_starts, max(start, end - 1)),
        page=document.page_at(start),
        source=document.path,
        section=document.section_at(start, end),
    )


class Chunker:
    """Splits a Document into Chunks of at most ``chunk_size`` units of ``length_function``."""

    def __init__(
        self,
        chunk_size: int,
        chunk_overlap: int,
        length_function: Callable[[str], int] = len,
        max_size: int | None = None,
    ) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._length = length_function
        self._max_size = max_size  # a joined chunk never grows past this (the embedder's window)
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
        section, so that no chunk spans two of them and each citation names one slide, sheet or chapter. Markdown
        is packed from its blocks (``split_markdown``)."""
        text = document.text
        line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        if document.file_type == "markdown":
            return self.split_markdown(document, line_starts)
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
            chunks.append(_span(document, start, start + len(piece), line_starts))
            # the next chunk starts after this one's start (chunks may overlap)
            cursor = start + 1
        return self._join_small(document, chunks, line_starts)

    def _join_small(self, document: Document, chunks: list[Chunk], line_starts: list[int]) -> list[Chunk]:
        """Pieces under ``chunk_size / SMALL`` joined to their neighbour (see the module doc), while the result
        stays within ``chunk_size * (1 + 1 / SMALL)`` and ``max_size``."""
        small, limit = self.chunk_size / SMALL, self.chunk_size * (1 + 1 / SMALL)
        if self._max_size is not None:
            limit = min(limit, self._max_size)
        out = list(chunks)
        i = 0
        while len(out) > 1 and i < len(out):
            if self._length(out[i].text) < small:
                j = i + 1 if i + 1 < len(out) else i - 1
                first, second = (out[i], out[j]) if j > i else (out[j], out[i])
                text = document.text[first.start : second.end]
                if second.start >= first.end and self._length(text) <= limit:
                    out[min(i, j)] = _span(document, first.start, second.end, line_starts)
                    del out[max(i, j)]
                    continue
            i += 1
        return out

    def split_markdown(self, document: Document, line_starts: list[int]) -> list[Chunk]:
        """Markdown packed into chunks from its blocks (``rag.ingest.markdown.blocks``: paragraphs, lists, tables,
        whole code fences), in order, up to ``chunk_size``; a heading starts a new chunk (a run of headings stays
        together with what follows), and a block longer than a chunk is split as plain text (a code fence at its
        lines). Front matter is left out. Each chunk gets its display text and heading path."""
        text = document.text
        body, _ = markdown.front_matter(text)
        code = markdown.code_spans(text)
        found = markdown.headings(text, code)
        title = str(document.metadata.get("title") or "")
        pieces: list[tuple[int, int]] = []
        current: list[tuple[int, int, bool]] = []  # (start, end, is a heading)
        used = 0

        def flush() -> None:
            nonlocal used
            if current:
                pieces.append((current[0][0], current[-1][1]))
            current.clear()
            used = 0

        for start, end in markdown.blocks(text, body, len(text)):
            size = self._length(text[start:end])
            heading = any(h.offset == start for h in found)
            if current and heading and not all(h for _, _, h in current):
                flush()
            if size > self.chunk_size:
                flush()
                sub = Document(document.path, text[:end], document.file_type)
                pieces.extend((c.start, c.end) for c in self._split_span(sub, start, end, line_starts))
                continue
            if current and used + size > self.chunk_size:
                flush()
            current.append((start, end, heading))
            used += size + 1
        flush()
        chunks = self._join_small(document, [_span(document, a, b, line_starts) for a, b in pieces], line_starts)
        return [
            replace(
                chunk,
                display=shown if (shown := markdown.display(chunk.text)) != chunk.text else "",
                heading=markdown.heading_path(found, chunk.start, title),
            )
            for chunk in chunks
            if markdown.display(chunk.text).strip()
        ]
