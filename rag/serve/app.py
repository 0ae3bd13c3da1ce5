"""`rag serve`: a thin HTTP layer (FastAPI) over one RagPipeline. Build the app first (``create_app``), run last
(``serve``), so tests drive the app without a socket.

Routes (documented in the generated OpenAPI schema at ``/openapi.json``, browsable at ``/docs``):

- ``POST /ask``: an answer with citations; ``"stream": true`` answers as server-sent events: ``passages`` (the
  numbered passages), ``token`` (pieces of the answer as written), ``done`` (the whole checked answer).
- ``POST /search``: passages only.
- ``GET /documents``, ``POST /documents`` (multipart upload; ingested by a background job, ``GET /jobs/{id}``),
  ``DELETE /documents/{id}``.
- ``GET /health`` (liveness; whether the index and the models are loaded), ``GET /info``.
- ``POST /v1/chat/completions`` and ``GET /v1/models``: OpenAI-compatible, so OpenAI clients work unchanged.

Protection: an optional bearer token (required when binding beyond loopback), request body and upload size
limits, a bound on concurrent model requests (503 with Retry-After beyond it), JSON errors everywhere (a
catch-all logs the traceback and answers 500 without it). Model calls run in worker threads, never on the
event loop.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.errors import (
    ConfigError,
    GeneratorError,
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    ModelLoadError,
    ModelMismatchError,
    RagError,
)
from rag.filters import Filters
from rag.serve.jobs import Job, ShuttingDownError, UploadError, Uploads, document_id, safe_filename
from rag.serve.schemas import (
    AskRequest,
    AskResponse,
    ChatChoice,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    CitationModel,
    DeletedResponse,
    DocumentList,
    DocumentModel,
    ErrorResponse,
    FiltersModel,
    HealthResponse,
    InfoResponse,
    IngestReportModel,
    JobModel,
    ModelCard,
    ModelList,
    SearchRequest,
    SearchResponse,
    passage_of,
)
from rag.text.paths import display_path
from rag.types import Answer, DoneEvent, PassagesEvent, StreamEvent, TokenEvent

if TYPE_CHECKING:
    from rag.pipeline import RagPipeline

log = logging.getLogger(__name__)

T = TypeVar("T")

API_KEY_ENV = "RAG_API_KEY"
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# Requests that run models or touch the index count against the concurrency limit; the rest are cheap.
LIMITED_PREFIXES = ("/ask", "/search", "/documents", "/info", "/v1/chat/completions")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MAX_HISTORY_TURNS = 6
SOURCES_HEADER = "\n\nSources:\n"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
}


@dataclass(frozen=True)
class ServerSettings:
    """How the HTTP layer protects itself. Sizes in bytes; ``api_key`` None: no authentication.

    ``max_concurrency``: requests that run models or touch the index at once; more get 503 + Retry-After.
    ``upload_dir``: where uploads are kept (default ``<index>/uploads``). ``write_wait_s``: how long a delete
    waits for a running upload job. ``warm_up``: load the models when the server starts (in the background).
    """

    api_key: str | None = None
    max_concurrency: int = 16
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    retry_after_s: int = 1
    upload_dir: Path | None = None
    write_wait_s: float = 30.0
    shutdown_timeout_s: float = 30.0
    warm_up: bool = True
    model_name: str = "rag"
    max_jobs: int = 1000

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency={self.max_concurrency} must be at least 1")
        if self.max_body_bytes < 1 or self.max_upload_bytes < 1:
            raise ConfigError(
                f"max_body_bytes={self.max_body_bytes} and max_upload_bytes={self.max_upload_bytes} must be positive"
            )
        if self.retry_after_s < 0 or self.write_wait_s < 0 or self.shutdown_timeout_s < 0:
            raise ConfigError("retry_after_s, write_wait_s and shutdown_timeout_s must be >= 0")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("the API key is empty; set a non-empty key or none at all")

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Settings with the API key from ``$RAG_API_KEY`` unless ``api_key`` is given (None values ignored)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        if "api_key" not in values:
            values["api_key"] = os.environ.get(API_KEY_ENV) or None
        return cls(**values)


# -- errors -------------------------------------------------------------------------------------------------


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"message": message, "type": ERROR_TYPES.get(status, "error"), "code": status}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _status_for(exc: RagError) -> int:
    if isinstance(exc, IndexNotFoundError | IndexLockedError | IndexFormatError | ModelMismatchError):
        return 503
    if isinstance(exc, ModelLoadError | ShuttingDownError):
        return 503
    if isinstance(exc, GeneratorError):
        return 502
    return 400


def _rag_error(exc: RagError, retry_after_s: int) -> JSONResponse:
    status = _status_for(exc)
    message = str(exc)
    headers: dict[str, str] | None = None
    if isinstance(exc, IndexNotFoundError):
        message = f"{message}; or upload documents with POST /documents"
    if isinstance(exc, IndexLockedError):
        headers = {"Retry-After": str(max(retry_after_s, 1))}
    if status >= 500:  # the operator's to fix (or transient): say so in the log too
        log.log(logging.ERROR if status != 503 else logging.WARNING, "%s: %s", type(exc).__name__, message)
    return error_response(status, message, headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()[:20]
    ]


def _install_error_handlers(app: FastAPI, settings: ServerSettings) -> None:
    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        return _rag_error(exc, settings.retry_after_s)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"]) or "request"
        return error_response(422, f"invalid request: {where}: {first['msg']}", details=details)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.error(
            "unhandled error %s in %s %s", incident, request.method, request.url.path, exc_info=exc
        )  # the traceback stays here, in the server's log
        return error_response(500, f"internal server error (incident {incident}; details are in the server log)")


# -- middleware ---------------------------------------------------------------------------------------------


class _BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large: the limit is {limit} bytes")


class BodyLimit:
    """Refuses bodies over the limit with 413: at once when Content-Length says so, else while reading.
    Uploads (``POST /documents``) get ``max_upload_bytes``, everything else ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"].rstrip("/") == "/documents"
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await error_response(413, str(_BodyTooLarge(limit).detail))(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge as exc:
            if started:
                raise
            await error_response(413, str(exc.detail))(scope, receive, send)


class BearerAuth:
    """Requires ``Authorization: Bearer <key>`` on every path but the public ones (health and the API docs)."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.key = api_key.encode("utf-8") if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.key is None or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode("utf-8"), self.key):
            await self.app(scope, receive, send)
            return
        message = (
            "missing API key: send 'Authorization: Bearer <key>'"
            if not token
            else "invalid API key: check the key the server was started with"
        )
        await error_response(401, message, {"WWW-Authenticate": "Bearer"})(scope, receive, send)


class ConcurrencyLimit:
    """At most ``limit`` limited requests at once (a streamed answer counts until its last byte); more are
    answered 503 with Retry-After right away instead of queueing behind slow model calls."""

    def __init__(self, app: ASGIApp, limit: int, retry_after_s: int) -> None:
        self.app = app
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.active = 0  # only touched on the event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            log.warning("busy: %d requests in progress, refusing %s %s", self.active, scope["method"], scope["path"])
            response = error_response(
                503,
                f"the server is busy ({self.active} requests in progress); retry after {self.retry_after_s} s",
                {"Retry-After": str(self.retry_after_s)},
            )
            await response(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


# -- helpers ------------------------------------------------------------------------------------------------


async def _run(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (model, index, disk) in a worker thread, off the event loop."""
    return await anyio.to_thread.run_sync(fn, *args)


_END = object()


async def _drain(events: Iterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """The events of a synchronous stream, each ``next`` in a worker thread."""
    while True:
        event = await _run(next, events, _END)
        if event is _END:
            return
        yield event  # type: ignore[misc]


async def _first_event(events: Iterator[StreamEvent]) -> StreamEvent:
    """Start a stream (retrieval runs here), so its errors still get a proper status code."""
    event = await _run(next, events, _END)
    if event is _END:
        raise RuntimeError("the answer stream ended before its first event")
    return event  # type: ignore[return-value]


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(jsonable_encoder(data), ensure_ascii=False)}\n\n".encode()


def _stream_error(exc: Exception) -> tuple[str, dict[str, Any]]:
    """A failure after the response started: logged here, told to the client as an error event."""
    if isinstance(exc, RagError):
        status = _status_for(exc)
        log.warning("stream failed: %s", exc)
        message = str(exc)
    else:
        status = 500
        incident = uuid.uuid4().hex[:12]
        log.error("unhandled error %s while streaming", incident, exc_info=exc)
        message = f"internal server error (incident {incident}; details are in the server log)"
    return message, {"message": message, "type": ERROR_TYPES.get(status, "error"), "code": status}


def _filters(model: FiltersModel | None) -> Filters | None:
    return Filters.from_mapping(model.as_mapping()) if model is not None else None


def _normalized(text: str) -> str:
    return " ".join(text.split())


def sources_block(answer: Answer) -> str:
    """The numbered sources cited by ``answer``, as plain text (empty when it cites none)."""
    if not answer.citations:
        return ""
    lines = [f"[{c.number}] {c.source} ({c.location}, chars {c.start}-{c.end})" for c in answer.citations]
    return SOURCES_HEADER + "\n".join(lines)


def conversation(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message, and the (user, assistant) turns before it (sources blocks removed)."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise RagError("no user message: the last message with role 'user' is the question")
    question = messages[last].text().strip()
    if not question:
        raise RagError("the last user message has no text; ask something")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages[:last]:
        if m.role == "user":
            pending = m.text().strip() or None
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.text().split(SOURCES_HEADER, 1)[0].strip()))
            pending = None
    return question, history[-MAX_HISTORY_TURNS:]


def _job_model(job: Job) -> JobModel:
    return JobModel(
        id=job.id,
        status=job.status,  # type: ignore[arg-type]
        files=job.files,
        created=job.created,
        started=job.started,
        finished=job.finished,
        report=IngestReportModel.of(job.report) if job.report is not None else None,
        error=job.error,
    )


def _sse_schema(events: list[str] | None) -> dict[str, Any]:
    """One server-sent event (OpenAPI 3.1: the schema of an event stream describes each event): its name, when
    it has one, and its data, a JSON document (or ``[DONE]``)."""
    props: dict[str, Any] = {"data": {"type": "string", "description": "JSON (OpenAI streams end with [DONE])"}}
    if events:
        props["event"] = {"type": "string", "enum": events}
    return {"type": "object", "properties": props, "required": ["data", *(["event"] if events else [])]}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Bad request (the message says what to fix)",
        401: "Missing or wrong API key",
        404: "No such resource",
        413: "Request body or upload too large",
        422: "Request does not match the schema",
        500: "Internal error (details in the server log)",
        502: "The generator's upstream server failed",
        503: "Busy (Retry-After), no index yet, or models unavailable",
    }
    return {c: {"model": ErrorResponse, "description": descriptions[c]} for c in codes}


# -- the app ------------------------------------------------------------------------------------------------


def create_app(pipeline: RagPipeline, settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI app over ``pipeline``. ``settings`` default: ``ServerSettings.from_env()`` (API key from
    ``$RAG_API_KEY``, if set)."""
    import rag

    settings = settings or ServerSettings.from_env()
    uploads = Uploads(
        pipeline, (settings.upload_dir or pipeline.index_path / "uploads").resolve(), max_jobs=settings.max_jobs
    )
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, settings.max_concurrency + 8)
        if settings.warm_up:
            threading.Thread(target=_warm_up, args=(pipeline,), name="rag-warm-up", daemon=True).start()
        yield
        await _run(uploads.close)  # the running ingest job finishes; queued ones are dropped

    # Documents the bearer scheme in the OpenAPI schema; BearerAuth enforces it before anything else runs.
    auth = [Depends(HTTPBearer(auto_error=False, description="the server's API key"))] if settings.api_key else []
    common = (401, 413, 422, 500, 503) if settings.api_key else (413, 422, 500, 503)
    app = FastAPI(
        title="rag",
        version=rag.__version__,
        description="Answers questions over your documents, with citations. OpenAI-compatible under /v1.",
        lifespan=lifespan,
    )
    app.state.pipeline = pipeline
    app.state.settings = settings
    app.state.uploads = uploads
    _install_error_handlers(app, settings)
    # Last added runs first: auth, then body size, then the concurrency limit.
    app.add_middleware(ConcurrencyLimit, limit=settings.max_concurrency, retry_after_s=settings.retry_after_s)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(BearerAuth, api_key=settings.api_key)

    # -- answers ------------------------------------------------------------------------------------------
    @app.post(
        "/ask",
        response_model=AskResponse,
        responses={
            200: {
                "description": "The answer (JSON), or with `stream: true` server-sent events: `passages` "
                "(the numbered passages), `token` ({text}), `done` (the whole answer, as the JSON answer), "
                "`error` ({error}) if the stream fails",
                "content": {"text/event-stream": {"schema": _sse_schema(["passages", "token", "done", "error"])}},
            },
            **_errors(*common, 400, 502),
        },
        dependencies=auth,
        tags=["answers"],
    )
    async def ask(body: AskRequest) -> Any:
        """Answer a question from the documents, with numbered citations; refuses when nothing is relevant."""
        filters = _filters(body.filters)
        history = [(t.question, t.answer) for t in body.history or []] or None
        if not body.stream:
            answer = await _run(lambda: pipeline.ask(body.question, body.k, history, filters=filters))
            return AskResponse.of(answer)
        events = pipeline.ask_stream(body.question, body.k, history, filters=filters)
        first = await _first_event(events)
        return StreamingResponse(_ask_events(first, events), media_type="text/event-stream", headers=SSE_HEADERS)

    async def _ask_events(first: StreamEvent, events: Iterator[StreamEvent]) -> AsyncIterator[bytes]:
        try:
            yield _event_bytes(first)
            async for event in _drain(events):
                yield _event_bytes(event)
        except Exception as exc:  # noqa: BLE001 -- the response has started: report in-band, log here
            _, body = _stream_error(exc)
            yield _sse("error", {"error": body})
        finally:
            with contextlib.suppress(Exception):
                events.close()  # type: ignore[attr-defined]

    @app.post(
        "/search", response_model=SearchResponse, responses=_errors(*common, 400), dependencies=auth, tags=["answers"]
    )
    async def search(body: SearchRequest) -> SearchResponse:
        """The top passages for a query, with scores and sources; no answer."""
        filters = _filters(body.filters)
        hits = await _run(lambda: pipeline.retrieve(body.query, body.k, filters=filters))
        return SearchResponse(
            query=body.query, passages=[passage_of(h, display_path(h.chunk.source)) for h in hits]
        )

    # -- documents ----------------------------------------------------------------------------------------
    @app.get(
        "/documents", response_model=DocumentList, responses=_errors(*common), dependencies=auth, tags=["documents"]
    )
    async def list_documents() -> DocumentList:
        """Every document in the index (empty before the first upload or ingest)."""

        def docs() -> list[DocumentModel]:
            try:
                stored = pipeline.documents()
            except IndexNotFoundError:
                return []
            return [
                DocumentModel(
                    id=document_id(d.path),
                    path=display_path(d.path),
                    file_type=d.file_type,
                    language=d.language,
                    size=d.size,
                    chunks=d.n_chunks,
                    content_hash=d.content_hash,
                    uploaded=uploads.contains(d.path),
                )
                for d in stored
            ]

        return DocumentList(documents=await _run(docs))

    @app.post(
        "/documents",
        status_code=202,
        response_model=JobModel,
        responses=_errors(*common, 400),
        dependencies=auth,
        tags=["documents"],
    )
    async def upload_documents(
        files: Annotated[list[UploadFile], File(description="files to add or update (same name: replaced)")],
        metadata: Annotated[
            str | None, Form(description='JSON object of strings stored with the files, e.g. {"team": "legal"}')
        ] = None,
    ) -> JSONResponse:
        """Upload files; they are ingested in the background (poll `GET /jobs/{id}`) by the same incremental
        ingest as `rag ingest`: new files are added, changed ones replaced, unchanged ones skipped."""
        meta = _parse_metadata(metadata)
        names: list[str] = []
        for f in files:
            name = safe_filename(f.filename or "")
            if not pipeline.accepts(name):
                raise UploadError(
                    f"{name!r}: unsupported file type; upload txt, md, html, pdf, docx, csv/tsv, json/jsonl or "
                    "source code"
                )
            if name in names:
                raise UploadError(f"two uploaded files are both named {name!r}; upload them under different names")
            names.append(name)
        job_id, staged = await _run(uploads.stage, [(n, f.file) for n, f in zip(names, files, strict=True)])
        job = uploads.submit(job_id, names, staged, meta)
        return JSONResponse(jsonable_encoder(_job_model(job)), status_code=202, headers={"Location": f"/jobs/{job.id}"})

    @app.delete(
        "/documents/{doc_id}",
        response_model=DeletedResponse,
        responses=_errors(*common, 404),
        dependencies=auth,
        tags=["documents"],
    )
    async def delete_document(
        doc_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$", description="a document id from GET /documents")],
    ) -> DeletedResponse:
        """Delete a document from the index (and its file, when it was uploaded)."""
        path = await _run(uploads.remove, doc_id, settings.write_wait_s)
        if path is None:
            raise HTTPException(404, f"no document with id {doc_id}; list them with GET /documents")
        return DeletedResponse(id=doc_id, path=display_path(path), deleted=True)

    @app.get(
        "/jobs/{job_id}",
        response_model=JobModel,
        responses=_errors(*common, 404),
        dependencies=auth,
        tags=["documents"],
    )
    async def get_job(
        job_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="the id POST /documents returned")],
    ) -> JobModel:
        """The state of an upload job: queued, running, done (with the ingest report) or failed (with the error)."""
        job = uploads.get(job_id)
        if job is None:
            raise HTTPException(404, f"no upload job with id {job_id} (jobs are kept in memory until a restart)")
        return _job_model(job)

    # -- service ------------------------------------------------------------------------------------------
    @app.get("/health", response_model=HealthResponse, responses=_errors(500), tags=["service"])
    async def health() -> HealthResponse:
        """Liveness (no API key needed), and whether the index and the models are loaded."""

        def state() -> tuple[bool, int]:
            try:
                return True, pipeline.info().documents
            except RagError:
                return False, 0

        loaded, documents = await _run(state)
        return HealthResponse(
            status="ok",
            index_loaded=loaded,
            models_loaded=pipeline.models_loaded,
            documents=documents,
            version=rag.__version__,
        )

    @app.get("/info", response_model=InfoResponse, responses=_errors(*common), dependencies=auth, tags=["service"])
    async def info() -> InfoResponse:
        """The index: model, dimension, documents, chunks, size on disk."""
        return InfoResponse.of(await _run(pipeline.info))

    # -- OpenAI-compatible --------------------------------------------------------------------------------
    @app.get("/v1/models", response_model=ModelList, responses=_errors(*common), dependencies=auth, tags=["openai"])
    async def models() -> ModelList:
        """The one model this server offers (any model name is accepted by chat completions)."""
        return ModelList(data=[ModelCard(id=settings.model_name, created=started, owned_by="rag")])

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletionResponse,
        responses={
            200: {
                "description": "A chat completion, or with `stream: true` OpenAI `chat.completion.chunk` "
                "server-sent events ending with `data: [DONE]`",
                "content": {"text/event-stream": {"schema": _sse_schema(None)}},
            },
            **_errors(*common, 400, 502),
        },
        dependencies=auth,
        tags=["openai"],
    )
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        """OpenAI chat completions: the last user message is answered from the documents, citations as [n] in
        the text with a sources list at its end, and in the extra `citations` field."""
        question, history = conversation(body.messages)
        filters = _filters(body.filters)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.stream:
            answer = await _run(lambda: pipeline.ask(question, body.k, history or None, filters=filters))
            return ChatCompletionResponse(
                id=completion_id,
                created=created,
                model=body.model,
                choices=[
                    ChatChoice(
                        index=0,
                        message=ChatCompletionMessage(content=answer.text + sources_block(answer)),
                        finish_reason="stop",
                    )
                ],
                citations=[CitationModel.of(c) for c in answer.citations],
                refused=answer.refused,
                grounding=answer.grounding,
            )
        events = pipeline.ask_stream(question, body.k, history or None, filters=filters)
        first = await _first_event(events)
        chunks = _openai_chunks(first, events, completion_id, created, body.model)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)

    return app


def _event_bytes(event: StreamEvent) -> bytes:
    if isinstance(event, PassagesEvent):
        return _sse("passages", {"passages": [CitationModel.of(c) for c in event.passages]})
    if isinstance(event, TokenEvent):
        return _sse("token", {"text": event.text})
    if isinstance(event, DoneEvent):
        return _sse("done", AskResponse.of(event.answer))
    raise TypeError(f"unknown stream event {event!r}")


async def _openai_chunks(
    first: StreamEvent, events: Iterator[StreamEvent], completion_id: str, created: int, model: str
) -> AsyncIterator[bytes]:
    """OpenAI ``chat.completion.chunk`` events: the role (and, as an extension, the numbered passages), the
    answer's tokens, then -- when checking the answer against the passages changed it -- the checked answer,
    the sources, and a last chunk with ``finish_reason`` and ``citations``; then ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(jsonable_encoder(data), ensure_ascii=False)}\n\n".encode()

    streamed: list[str] = []

    def convert(event: StreamEvent) -> list[bytes]:
        if isinstance(event, PassagesEvent):
            passages = [CitationModel.of(c) for c in event.passages]
            return [chunk({"role": "assistant", "content": ""}, passages=passages)]
        if isinstance(event, TokenEvent):
            streamed.append(event.text)
            return [chunk({"content": event.text})] if event.text else []
        answer = event.answer
        out: list[bytes] = []
        if _normalized("".join(streamed)) != _normalized(answer.text):
            out.append(chunk({"content": f"\n\nChecked against the passages, the answer is:\n{answer.text}"}))
        if sources := sources_block(answer):
            out.append(chunk({"content": sources}))
        citations = [CitationModel.of(c) for c in answer.citations]
        out.append(chunk({}, "stop", citations=citations, refused=answer.refused, grounding=answer.grounding))
        return out

    try:
        for data in convert(first):
            yield data
        async for event in _drain(events):
            for data in convert(event):
                yield data
        yield b"data: [DONE]\n\n"
    except Exception as exc:  # noqa: BLE001 -- the response has started: report in-band (OpenAI's shape), log here
        _, body = _stream_error(exc)
        yield f"data: {json.dumps({'error': body}, ensure_ascii=False)}\n\n".encode()
    finally:
        with contextlib.suppress(Exception):
            events.close()  # type: ignore[attr-defined]


def _parse_metadata(raw: str | None) -> dict[str, str]:
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RagError(f'metadata is not JSON ({exc.msg}); send an object such as {{"team": "legal"}}') from exc
    if not isinstance(data, dict) or not all(isinstance(v, str | int | float | bool) for v in data.values()):
        raise RagError('metadata must be a JSON object of strings, such as {"team": "legal"}')
    return {str(k): str(v) for k, v in data.items()}


def _warm_up(pipeline: RagPipeline) -> None:
    t0 = time.perf_counter()
    try:
        pipeline.warm_up()
    except RagError as exc:
        log.warning("models not loaded at start (they load on the first request): %s", exc)
    except Exception:
        log.exception("loading the models at start failed (they load on the first request)")
    else:
        log.info("models loaded in %.1f s", time.perf_counter() - t0)


# -- running ------------------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): only this machine can connect."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: ServerSettings) -> None:
    """Refuse to serve beyond this machine without an API key."""
    if not is_loopback(host) and not settings.api_key:
        raise ConfigError(
            f"refusing to listen on {host} without an API key: anyone who can reach this machine could use the "
            f"server. Set one with --api-key KEY or ${API_KEY_ENV} (clients send 'Authorization: Bearer KEY'), or "
            "listen on 127.0.0.1"
        )


def serve(
    pipeline: RagPipeline,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServerSettings | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``pipeline`` over HTTP with uvicorn until interrupted (Ctrl-C / SIGTERM: in-flight requests finish,
    for up to ``settings.shutdown_timeout_s``)."""
    import uvicorn

    settings = settings or ServerSettings.from_env()
    check_bind(host, settings)
    app = create_app(pipeline, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        server_header=False,
    )
    log.info(
        "serving %s on http://%s:%d (%s)",
        pipeline.index_path,
        host,
        port,
        "API key required" if settings.api_key else "no API key",
    )
    uvicorn.Server(config).run()


__all__ = ["ServerSettings", "check_bind", "create_app", "is_loopback", "serve"]
