"""The HTTP API's request and response models (pydantic): what the generated OpenAPI schema documents.

Requests are plain pydantic models (they carry the API's limits). Responses that show one of the pipeline's
dataclasses (``rag.types``: Answer, Citation, Hit and Chunk, IndexInfo, IngestReport, SkippedFile; and the
upload ``Job``) are derived from it by ``rag.serve.derive.derive``: their fields are the dataclass's fields, with
the same names and types, and each model states only where the HTTP shape differs. All of those differences:

- ``AskResponse`` (Answer): ``text`` is called ``answer``; the retrieved ``passages`` (as Hits) and the
  per-sentence ``supported`` are left out.
- ``PassageModel`` (a Hit with its Chunk flattened into it): the chunk's ``id`` is ``chunk_id``, its
  ``metadata`` and ``section`` are left out, ``location`` (``Chunk.location()``, which names the section) is added,
  and ``source`` is the display path.
- ``IngestReportModel`` (IngestReport): the ``index`` path is left out.
- ``JobModel`` (Job): ``status`` is one of queued/running/done/failed (and required); the staged files and
  the metadata are left out; the fields that default to None in the dataclass (started, finished, report,
  error) are optional.

``CitationModel``, ``SkippedModel`` and ``InfoResponse`` are their dataclasses unchanged. A nested dataclass
(an Answer's Citations, an IngestReport's SkippedFiles, a Job's IngestReport) is shown as its derived model.
``DocumentModel`` is written out: the pipeline's document records live in the index stage, which the server
does not import. The other models (errors, health, the OpenAI shapes) have no dataclass behind them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from rag.filters import Filters
from rag.serve.derive import derive
from rag.serve.jobs import Job
from rag.types import Answer, Chunk, Citation, Feedback, Hit, IndexInfo, IngestReport, SkippedFile

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


def filters_of(model: FiltersModel | None) -> Filters | None:
    """The pipeline's Filters (checked here, so a bad filter is a 400 before anything runs); None: no filters."""
    return Filters.from_mapping(model.as_mapping()) if model is not None else None


class HistoryTurn(_Strict):
    """One earlier turn of a conversation."""

    question: str = Field(max_length=MAX_QUESTION_CHARS)
    answer: str = Field(max_length=4 * MAX_QUESTION_CHARS)


CitationModel = derive(
    "CitationModel",
    Citation,
    doc="""A numbered passage: ``[number]`` in the answer text refers to it. ``start``/``end``: character span in
    the source; ``score``: cosine similarity to the question.""",
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


AskResponse = derive(
    "AskResponse",
    Answer,
    rename={"text": "answer"},
    omit={"passages", "supported"},
    doc="""The answer, its citations, and how it was checked against the passages (``grounding``: generated,
    snapped, extractive or refused).""",
)


class FeedbackRequest(_Strict):
    """Feedback on an answer: ``question_id`` is the answer's own (``question_id`` of ``POST /ask``, set when the
    server records questions, setting ``record_questions``); ``helpful``: true or false. The latest feedback on a
    question counts; ``rag tune --from-use`` trains on the questions whose answers helped."""

    question_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")
    helpful: StrictBool


FeedbackResponse = derive("FeedbackResponse", Feedback, doc="The feedback as recorded, with the question it is about.")


class SearchRequest(_Strict):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    filters: FiltersModel | None = None


PassageModel = derive(
    "PassageModel",
    Hit,
    Chunk,
    omit={"chunk", "metadata", "section"},  # the Hit's chunk is flattened into the passage; section is in location
    rename={"id": "chunk_id"},
    add={"location": str},
    doc="""A retrieved passage. ``score`` ranks (fused score in hybrid retrieval); ``similarity`` is the cosine
    between question and passage; ``start``/``end`` the character span in the source.""",
)


def passage_of(hit: Hit, source: str) -> BaseModel:
    """A Hit as a passage, ``source`` (its display path) in place of the stored path."""
    return PassageModel.of(hit, hit.chunk, source=source, location=hit.chunk.location())


class SearchResponse(BaseModel):
    query: str
    passages: list[PassageModel]  # type: ignore[valid-type]


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


SkippedModel = derive("SkippedModel", SkippedFile)
IngestReportModel = derive("IngestReportModel", IngestReport, omit={"index"})

JobStatus = Literal["queued", "running", "done", "failed"]
JobModel = derive(
    "JobModel",
    Job,
    omit={"staged", "metadata"},
    retype={"status": JobStatus},
    required=False,
    doc="An upload being ingested in the background. Poll ``GET /jobs/{id}`` until ``status`` is done or failed.",
)


# -- service ------------------------------------------------------------------------------------------


class HealthResponse(BaseModel):
    """Liveness (always ``ok`` when the process answers) and readiness: ``index_loaded`` (an index exists and
    opens), ``models_loaded`` (embedder and generator set up)."""

    status: Literal["ok"]
    index_loaded: bool
    models_loaded: bool
    documents: int
    version: str


InfoResponse = derive("InfoResponse", IndexInfo)


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
    citations: list[CitationModel]  # type: ignore[valid-type]
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
