"""The HTTP API's request and response models (pydantic), and their conversion from the pipeline's dataclasses.

These models are what the generated OpenAPI schema documents; ``rag.serve.app`` uses them for every route.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.types import Answer, Citation, Hit, IndexInfo, IngestReport

MAX_QUESTION_CHARS = 8_000
MAX_K = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors -------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """What went wrong. ``type`` names the kind of error; ``details`` lists validation problems (422)."""

    message: str
    type: str
    code: int
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """Every error answer: ``{"error": {"message", "type", "code"}}`` (the OpenAI error shape)."""

    error: ErrorDetail


# -- shared pieces ------------------------------------------------------------------------------------


class FiltersModel(_Strict):
    """Metadata filters, applied inside the searches before top-k. ``path``: glob over the source path;
    ``file_type``: loader types (``markdown``, ``pdf``, ...); ``language``: chunk languages (``en``, ``zh``);
    ``meta``: exact values of metadata given at upload."""

    path: str | None = Field(default=None, max_length=1000)
    file_type: list[str] | None = Field(default=None, max_length=50)
    language: list[str] | None = Field(default=None, max_length=50)
    meta: dict[str, str] | None = None

    def as_mapping(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class HistoryTurn(_Strict):
    """One earlier turn of a conversation."""

    question: str = Field(max_length=MAX_QUESTION_CHARS)
    answer: str = Field(max_length=4 * MAX_QUESTION_CHARS)


class CitationModel(BaseModel):
    """A numbered passage: ``[number]`` in the answer text refers to it. ``start``/``end``: character span in
    the source; ``score``: cosine similarity to the question."""

    number: int
    source: str
    location: str
    start: int
    end: int
    score: float
    text: str

    @classmethod
    def of(cls, c: Citation) -> CitationModel:
        return cls(
            number=c.number,
            source=c.source,
            location=c.location,
            start=c.start,
            end=c.end,
            score=c.score,
            text=c.text,
        )


# -- /ask, /search ------------------------------------------------------------------------------------


class AskRequest(_Strict):
    """A question. ``k``: passages to retrieve (default: the server's); ``stream``: answer as server-sent
    events (``passages``, then ``token``s, then ``done`` with the whole answer); ``history``: earlier turns,
    so a follow-up question is understood."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    filters: FiltersModel | None = None
    stream: bool = False
    history: list[HistoryTurn] | None = Field(default=None, max_length=20)


class AskResponse(BaseModel):
    """The answer, its citations, and how it was checked against the passages (``grounding``: generated,
    snapped, extractive or refused)."""

    question: str
    answer: str
    citations: list[CitationModel]
    refused: bool
    language: str
    grounding: str
    generator: str
    standalone_question: str
    invalid_citations: list[int]
    unsupported: list[str]
    timings: dict[str, float]

    @classmethod
    def of(cls, a: Answer) -> AskResponse:
        return cls(
            question=a.question,
            answer=a.text,
            citations=[CitationModel.of(c) for c in a.citations],
            refused=a.refused,
            language=a.language,
            grounding=a.grounding,
            generator=a.generator,
            standalone_question=a.standalone_question,
            invalid_citations=list(a.invalid_citations),
            unsupported=list(a.unsupported),
            timings=dict(a.timings),
        )


class SearchRequest(_Strict):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    filters: FiltersModel | None = None


class PassageModel(BaseModel):
    """A retrieved passage. ``score`` ranks (fused score in hybrid retrieval); ``similarity`` is the cosine
    between question and passage; ``start``/``end`` the character span in the source."""

    rank: int
    chunk_id: int | None
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
    def of(cls, hit: Hit, source: str) -> PassageModel:
        c = hit.chunk
        return cls(
            rank=hit.rank,
            chunk_id=c.id,
            source=source,
            location=c.location(),
            start=c.start,
            end=c.end,
            start_line=c.start_line,
            end_line=c.end_line,
            page=c.page,
            score=hit.score,
            similarity=hit.similarity,
            text=c.text,
        )


class SearchResponse(BaseModel):
    query: str
    passages: list[PassageModel]


# -- documents and jobs -------------------------------------------------------------------------------


class DocumentModel(BaseModel):
    """A document in the index. ``id`` is derived from its path (stable across updates of the same file)."""

    id: str
    path: str
    file_type: str
    language: str
    size: int
    chunks: int
    content_hash: str
    uploaded: bool


class DocumentList(BaseModel):
    documents: list[DocumentModel]


class DeletedResponse(BaseModel):
    id: str
    path: str
    deleted: bool


class SkippedModel(BaseModel):
    path: str
    reason: str


class IngestReportModel(BaseModel):
    files_seen: int
    files_added: int
    files_updated: int
    files_unchanged: int
    files_removed: int
    skipped: list[SkippedModel]
    chunks_added: int
    chunks_removed: int
    chunks_embedded: int
    seconds: float
    model: str

    @classmethod
    def of(cls, r: IngestReport) -> IngestReportModel:
        return cls(
            files_seen=r.files_seen,
            files_added=r.files_added,
            files_updated=r.files_updated,
            files_unchanged=r.files_unchanged,
            files_removed=r.files_removed,
            skipped=[SkippedModel(path=s.path, reason=s.reason) for s in r.skipped],
            chunks_added=r.chunks_added,
            chunks_removed=r.chunks_removed,
            chunks_embedded=r.chunks_embedded,
            seconds=r.seconds,
            model=r.model,
        )


JobStatus = Literal["queued", "running", "done", "failed"]


class JobModel(BaseModel):
    """An upload being ingested in the background. Poll ``GET /jobs/{id}`` until ``status`` is done or failed."""

    id: str
    status: JobStatus
    files: list[str]
    created: float
    started: float | None = None
    finished: float | None = None
    report: IngestReportModel | None = None
    error: str | None = None


# -- service ------------------------------------------------------------------------------------------


class HealthResponse(BaseModel):
    """Liveness (always ``ok`` when the process answers) and readiness: ``index_loaded`` (an index exists and
    opens), ``models_loaded`` (embedder and generator set up)."""

    status: Literal["ok"]
    index_loaded: bool
    models_loaded: bool
    documents: int
    version: str


class InfoResponse(BaseModel):
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

    @classmethod
    def of(cls, info: IndexInfo) -> InfoResponse:
        return cls(**info.to_dict())


# -- OpenAI-compatible --------------------------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=64)
    text: str | None = Field(default=None, max_length=MAX_QUESTION_CHARS)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=256)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type in ("text", "input_text"))


class ChatCompletionRequest(BaseModel):
    """OpenAI chat-completions request. The last user message is answered from the documents; earlier user and
    assistant messages are the conversation. Other OpenAI parameters are accepted and ignored. ``k`` and
    ``filters`` are rag extensions."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(default="rag", max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    filters: FiltersModel | None = None


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ChatCompletionMessage
    finish_reason: Literal["stop"]
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    """OpenAI chat completion. The content ends with the sources; ``citations`` (an extension) lists them."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    citations: list[CitationModel]
    refused: bool
    grounding: str


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
