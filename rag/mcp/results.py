"""What the MCP tools return: dataclasses, which the SDK turns into each tool's output schema (structured
content) and a JSON text fallback.

``IndexInfo`` and ``IngestReport`` (``rag.types``) are returned unchanged, and an answer's citations are
``rag.types.Citation``s. The shapes below exist where the tools differ from the pipeline's dataclasses: a
``Passage`` is a ``Hit`` with its ``Chunk`` flattened into it (plus the document's id and the location as
text), an ``AskResult`` is the part of an ``Answer`` an agent needs, and the document tools have their own
records (the pipeline's document records belong to the index stage, which this layer does not import).
Sources are display paths (relative to the server's working folder when under it), as in the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rag.text.paths import display_path, document_id
from rag.types import Answer, Citation, Hit


@dataclass(frozen=True)
class Passage:
    """A retrieved passage: ``text == document[start:end]`` of the document ``document_id`` (``source``)."""

    rank: int
    document_id: str
    source: str
    location: str
    start: int
    end: int
    start_line: int
    end_line: int
    page: int | None
    score: float
    similarity: float
    text: str

    @classmethod
    def of(cls, hit: Hit) -> Passage:
        c = hit.chunk
        return cls(
            rank=hit.rank,
            document_id=document_id(c.source),
            source=display_path(c.source),
            location=c.location(),
            start=c.start,
            end=c.end,
            start_line=c.start_line,
            end_line=c.end_line,
            page=c.page,
            score=hit.score,
            similarity=hit.similarity,
            text=c.shown,
        )


@dataclass(frozen=True)
class SearchResult:
    """The passages found for ``query``, best first."""

    query: str
    passages: list[Passage]


@dataclass(frozen=True)
class AskResult:
    """An answer: ``[n]`` markers in ``answer`` refer to ``citations[n-1]``. ``refused``: no passage was relevant
    (``answer`` says so; nothing is cited). ``grounding``: generated, snapped, extractive or refused.
    ``unsupported``: sentences of the answer that no passage supports. ``question_id``: the id the question was
    recorded under when the server records questions (setting ``record_questions``), else ""."""

    question: str
    answer: str
    refused: bool
    citations: list[Citation]
    grounding: str
    language: str
    unsupported: list[str]
    question_id: str = ""

    @classmethod
    def of(cls, answer: Answer) -> AskResult:
        return cls(
            question=answer.question,
            answer=answer.text,
            refused=answer.refused,
            citations=[replace(c, source=display_path(c.source)) for c in answer.citations],
            grounding=answer.grounding,
            language=answer.language,
            unsupported=list(answer.unsupported),
            question_id=answer.question_id,
        )


@dataclass(frozen=True)
class DocumentEntry:
    """A stored document. ``size``: bytes of the file; ``chunks``: passages it was split into."""

    document_id: str
    path: str
    file_type: str
    language: str
    size: int
    chunks: int


@dataclass(frozen=True)
class DocumentList:
    """``documents[offset : offset + limit]`` of the ``total`` that match, ordered by path."""

    total: int
    offset: int
    documents: list[DocumentEntry]


@dataclass(frozen=True)
class DocumentText:
    """A stretch of a document: ``text`` is characters ``start``..``end`` (lines ``start_line``..``end_line``),
    the offsets passages and citations use. ``truncated``: the range asked for was longer than ``max_chars``;
    ask again from ``end``."""

    document_id: str
    path: str
    file_type: str
    language: str
    start: int
    end: int
    start_line: int
    end_line: int
    total_chars: int
    total_lines: int
    truncated: bool
    text: str


@dataclass(frozen=True)
class RemovedDocument:
    """The document deleted from the index (its file on disk is left alone)."""

    document_id: str
    path: str
    removed: bool
