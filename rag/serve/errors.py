"""Errors over HTTP: every failure is a JSON ``{"error": {"message", "type", "code"}}`` (the OpenAI error shape).

- ``error_response``: that body as a response; ``status_for``: the status code of a pipeline error
  (503: no index or models; 502: the generator's upstream; 400: the client's mistake).
- ``install_error_handlers``: the app's exception handlers (pipeline errors, HTTP errors, validation errors,
  and a catch-all that logs the traceback and answers 500 without it).
- ``stream_error``: the same body for a failure after a streamed response has started.
- ``error_responses``: how routes document their error answers in the OpenAPI schema.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rag.errors import (
    GeneratorError,
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    ModelLoadError,
    ModelMismatchError,
    QuestionNotFoundError,
    RagError,
)
from rag.serve.jobs import ShuttingDownError
from rag.serve.schemas import ErrorResponse

log = logging.getLogger("rag.serve.app")  # one logger for the whole HTTP layer, as before the split

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
# The error answers every model or index route can give (401 is added when the server has an API key).
COMMON_ERRORS = (413, 422, 500, 503)
_DESCRIPTIONS = {
    400: "Bad request (the message says what to fix)",
    401: "Missing or wrong API key",
    404: "No such resource",
    413: "Request body or upload too large",
    422: "Request does not match the schema",
    500: "Internal error (details in the server log)",
    502: "The generator's upstream server failed",
    503: "Busy (Retry-After), no index yet, or models unavailable",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """The inside of an error answer: ``{"message", "type", "code"}``."""
    return {"message": message, "type": ERROR_TYPES.get(status, "error"), "code": status}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """A JSON error answer; ``details`` lists validation problems (422)."""
    body = error_body(status, message)
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of these error status codes (all of them ``ErrorResponse``)."""
    return {c: {"model": ErrorResponse, "description": _DESCRIPTIONS[c]} for c in codes}


def status_for(exc: RagError) -> int:
    """The HTTP status of a pipeline error."""
    if isinstance(exc, IndexNotFoundError | IndexLockedError | IndexFormatError | ModelMismatchError):
        return 503
    if isinstance(exc, ModelLoadError | ShuttingDownError):
        return 503
    if isinstance(exc, GeneratorError):
        return 502
    if isinstance(exc, QuestionNotFoundError):
        return 404
    return 400


def rag_error_response(exc: RagError, retry_after_s: int) -> JSONResponse:
    """A pipeline error as an answer: a hint to upload when there is no index, Retry-After when it is locked."""
    status = status_for(exc)
    message = str(exc)
    headers: dict[str, str] | None = None
    if isinstance(exc, IndexNotFoundError):
        message = f"{message}; or upload documents with POST /documents"
    if isinstance(exc, IndexLockedError):
        headers = {"Retry-After": str(max(retry_after_s, 1))}
    if status >= 500:  # the operator's to fix (or transient): say so in the log too
        log.log(logging.ERROR if status != 503 else logging.WARNING, "%s: %s", type(exc).__name__, message)
    return error_response(status, message, headers)


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The first 20 validation problems, as plain JSON (location, message, kind)."""
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()[:20]
    ]


def incident_message() -> tuple[str, str]:
    """A fresh incident id, and what the client is told about it (the traceback stays in the server's log)."""
    incident = uuid.uuid4().hex[:12]
    return incident, f"internal server error (incident {incident}; details are in the server log)"


async def _rag_error(request: Request, exc: RagError) -> JSONResponse:
    return rag_error_response(exc, request.app.state.settings.retry_after_s)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    details = validation_details(exc)
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"]) or "request"
    return error_response(422, f"invalid request: {where}: {first['msg']}", details=details)


async def _crash(request: Request, exc: Exception) -> JSONResponse:
    incident, message = incident_message()
    log.error("unhandled error %s in %s %s", incident, request.method, request.url.path, exc_info=exc)
    return error_response(500, message)


def install_error_handlers(app: FastAPI) -> None:
    """JSON errors everywhere; ``Retry-After`` of a locked index from ``app.state.settings``."""
    app.add_exception_handler(RagError, _rag_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _crash)


def stream_error(exc: Exception) -> dict[str, Any]:
    """A failure after a streamed response started: logged here; the error body to tell the client in-band."""
    if isinstance(exc, RagError):
        status = status_for(exc)
        log.warning("stream failed: %s", exc)
        message = str(exc)
    else:
        status = 500
        incident, message = incident_message()
        log.error("unhandled error %s while streaming", incident, exc_info=exc)
    return error_body(status, message)
