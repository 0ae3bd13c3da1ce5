"""Dataclasses passed between the stages: Document, Chunk, Hit, Citation, Answer, IngestReport."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Section:
    """A stretch of a document's text that a citation names: a slide, a sheet, a chapter, a message.

    It starts at ``start`` in ``Document.text`` and runs to the next section's start. ``rows``, for spreadsheet
    sheets, gives the sheet row number of each line of the section, in order (a citation says which rows)."""

    start: int
    label: str
    rows: tuple[int, ...] = ()


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class Document:
    """A loaded source file: its text, where pages start (for PDFs) and where named sections start (slides, sheets,
    chapters, messages). ``attachments``: documents that came inside this one (e-mail attachments of supported
    types), each under its own ``path`` key; ``skipped``: the attachments that could not be read, with the reason."""

    path: str
    text: str
    file_type: str
    # Character offset where each page starts (page 1 at index 0); empty when the format has no pages.
    page_offsets: tuple[int, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()
    attachments: tuple[Document, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()

    def section_at(self, start: int, end: int) -> str | None:
        """The location of ``text[start:end]`` by section ("slide 3", "sheet Sales rows 2-9", "slides 2-3"), or
        None when the format has no sections."""
        if not self.sections:
            return None
        starts = [s.start for s in self.sections]
        first = max(bisect.bisect_right(starts, start) - 1, 0)
        last = max(bisect.bisect_right(starts, max(start, end - 1)) - 1, 0)
        if first == last:
            return self._place(first, start, end)
        a, b = self.sections[first], self.sections[last]
        if a.rows or b.rows:
            return f"{self._place(first, start, end)} to {self._place(last, start, end)}"
        return _label_range(a.label, b.label)

    def _place(self, index: int, start: int, end: int) -> str:
        section = self.sections[index]
        if not section.rows:
            return section.label
        stop = self.sections[index + 1].start if index + 1 < len(self.sections) else len(self.text)
        lo, hi = max(start, section.start), min(max(start + 1, end), stop)
        first = self.text.count("\n", section.start, lo)
        last = first + self.text.count("\n", lo, max(lo, hi - 1))
        rows = section.rows
        a, b = rows[min(first, len(rows) - 1)], rows[min(last, len(rows) - 1)]
        return f"{section.label} row {a}" if a == b else f"{section.label} rows {a}-{b}"

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


def _label_range(first: str, last: str) -> str:
    """ "slide 2" and "slide 4" -> "slides 2-4"; other pairs -> "first to last"."""
    word_a, _, number_a = first.partition(" ")
    word_b, _, number_b = last.partition(" ")
    if word_a == word_b and number_a.isdigit() and number_b.isdigit():
        return f"{word_a}s {number_a}-{number_b}"
    return f"{first} to {last}"


@dataclass(frozen=True)
class Chunk:
    """A passage of a document with its character span (``text == document.text[start:end]``: offsets, lines and
    highlights point into the original file; ``display`` and ``heading`` are what is read and searched)."""

    text: str
    start: int
    end: int
    start_line: int
    end_line: int
    page: int | None = None
    id: int | None = None
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    section: str | None = None  # the named place for formats with sections ("slide 3", "sheet Sales rows 2-9")
    # What a reader sees of ``text`` when it differs (Markdown: markup reduced, ``rag.ingest.markdown.display``);
    # "" when ``text`` is shown as it is.
    display: str = ""
    heading: str = ""  # the section it is in: "Title › Section › Subsection" ("" when the format has none)

    @property
    def shown(self) -> str:
        """The passage as the model and the user read it: the display text, else the text."""
        return self.display or self.text

    @property
    def indexed(self) -> str:
        """What is embedded and indexed lexically: the heading path on its own line, then the shown text."""
        return f"{self.heading}\n{self.shown}" if self.heading else self.shown

    def location(self) -> str:
        """Human-readable place in the source: the section (slide, sheet and rows, chapter, message) for formats
        that have them, the page for paged formats, otherwise the line range."""
        if self.section:
            return self.section
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
    ``question_id``: the id this question was recorded under (setting ``record_questions``; "" when it is off),
    which feedback on the answer names (``RagPipeline.feedback``, ``POST /feedback``).
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
    question_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Feedback:
    """Feedback recorded on an answer (``RagPipeline.feedback``): whether the answer to the recorded question
    ``question_id`` helped. ``rag tune --from-use`` trains on the questions whose answers helped."""

    question_id: str
    question: str
    helpful: bool


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
    ocr_pages: int = 0  # pages and images whose text came from OCR
    truncated: list[SkippedFile] = field(default_factory=list)  # files read only up to a bound, and which bound

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
    tuned: dict[str, Any] | None = None  # `rag tune --apply`: base model, pairs hash, settings, scores

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TuneScores:
    """Retrieval of held-out pairs (documents ranked by their best chunk): dense and hybrid nDCG@10, Recall@10."""

    ndcg_at_10: float
    recall_at_10: float
    hybrid_ndcg_at_10: float
    hybrid_recall_at_10: float
    queries: int


@dataclass(frozen=True)
class TuneReport:
    """What ``rag tune`` did: the pairs, the training, the held-out scores before and after, and whether the
    tuned model now serves the index (``applied``) or why not (``reason``)."""

    base_model: str
    pairs_source: str  # given, recorded, generated or cloze
    pairs: int  # training pairs used
    held_out: int  # evaluation queries
    questions_written: int  # generated: questions the generator wrote (before the retrieval filter)
    steps: int
    epochs: float
    train_seconds: float
    seconds: float
    before: TuneScores
    after: TuneScores
    better: bool
    applied: bool
    reason: str
    model: str = ""  # the tuned model's id in the manifest, when applied
    generation: int = 0  # the index generation that serves it, when applied
    learning_rate: float = 0.0  # the one it trained at (the recipe's, unless asked for)
    held_out_source: str = ""  # the kind of the held-out pairs: given, dev, recorded, or a proxy (generated/cloze)
    proxy_gate: bool = False  # the held-out pairs were only a proxy: never applied without accept_proxy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
