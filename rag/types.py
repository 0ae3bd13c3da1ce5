"""Dataclasses passed between the stages: Document, Chunk, Hit, Citation, Answer, IngestReport."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A loaded source file: its text and where pages start (for PDFs)."""

    path: str
    text: str
    file_type: str
    # Character offset where each page starts (page 1 at index 0); empty when the format has no pages.
    page_offsets: tuple[int, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def page_at(self, offset: int) -> int | None:
        """1-based page number that contains character ``offset``, or None when there are no pages."""
        if not self.page_offsets:
            return None
        page = 0
        for i, start in enumerate(self.page_offsets):
            if start <= offset:
                page = i
            else:
                break
        return page + 1


@dataclass(frozen=True)
class Chunk:
    """A passage of a document with its character span (``text == document.text[start:end]``)."""

    text: str
    start: int
    end: int
    start_line: int
    end_line: int
    page: int | None = None
    id: int | None = None
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def location(self) -> str:
        """Human-readable place in the source: page for paged formats, otherwise line range."""
        if self.page is not None:
            return f"p. {self.page}"
        if self.start_line == self.end_line:
            return f"line {self.start_line}"
        return f"lines {self.start_line}-{self.end_line}"


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk. ``score`` ranks hits (fused score in hybrid mode); ``similarity`` is the cosine
    between the question and the chunk vectors, which the relevance threshold is applied to."""

    chunk: Chunk
    score: float
    similarity: float
    rank: int


@dataclass(frozen=True)
class Citation:
    """A numbered passage cited by an answer: ``[number]`` in the answer text refers to it."""

    number: int
    source: str
    start: int
    end: int
    location: str
    score: float
    text: str


@dataclass(frozen=True)
class SentenceSupport:
    """One sentence of an answer: the passages it cites with [n] and those whose words support it."""

    text: str
    cited: list[int]  # valid [n] markers in the sentence
    passages: list[int]  # passages that contain most of the sentence's words (token overlap)

    @property
    def grounded(self) -> bool:
        return bool(self.cited or self.passages)


@dataclass(frozen=True)
class Answer:
    """What ``RagPipeline.ask`` returns.

    ``invalid_citations``: [n] markers the model wrote that name no passage (removed from ``text``).
    ``supported``: each sentence of ``text`` with the passages it cites and the passages that support it.
    ``unsupported``: sentences the model wrote that cite nothing and no passage supports; with the
    ``check`` grounding they stay in ``text`` (when other sentences are grounded) or, when nothing the model
    wrote is grounded, ``text`` is replaced by an extractive answer and they are listed here.
    ``standalone_question``: the question actually searched for when ``history`` made it a follow-up.
    """

    question: str
    text: str
    citations: list[Citation]
    refused: bool
    language: str
    passages: list[Hit]
    timings: dict[str, float]
    grounding: str = ""  # generated | snapped | extractive | refused (see rag.answer.grounding)
    generator: str = ""
    invalid_citations: list[int] = field(default_factory=list)
    supported: list[SentenceSupport] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    standalone_question: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PassagesEvent:
    """First event of ``RagPipeline.ask_stream``: the numbered passages the answer may cite ([n] = number)."""

    passages: list[Citation]
    kind: str = field(default="passages", init=False)


@dataclass(frozen=True)
class TokenEvent:
    """A piece of the answer text as the generator writes it."""

    text: str
    kind: str = field(default="token", init=False)


@dataclass(frozen=True)
class DoneEvent:
    """Last event: the full, checked Answer. Its ``text`` is authoritative: with the ``snap`` grounding (small
    local models) it can differ from the streamed tokens, which were the model's raw words."""

    answer: Answer
    kind: str = field(default="done", init=False)


StreamEvent = PassagesEvent | TokenEvent | DoneEvent


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class IngestReport:
    """Summary of one ingest: what was read, skipped (and why), added, replaced and removed."""

    index: str
    files_seen: int
    files_added: int
    files_updated: int
    files_unchanged: int
    files_removed: int
    skipped: list[SkippedFile]
    chunks_added: int
    chunks_removed: int
    seconds: float
    model: str
    chunks_embedded: int = 0  # chunks_added minus those whose identical text reused an existing vector

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IndexInfo:
    """What ``rag info`` shows."""

    path: str
    format_version: int
    generation: int
    embedder: str
    dimension: int
    index_type: str
    documents: int
    chunks: int
    vectors: int
    size_bytes: int
    chunk_size: int
    chunk_overlap: int
    created: str
    updated: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
