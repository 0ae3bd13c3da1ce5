"""Answers: ``POST /ask`` (an answer with citations, or with ``"stream": true`` server-sent events: ``passages``,
``token``s, ``done`` with the whole checked answer, ``error`` if it fails midway), ``POST /search``
(passages only) and ``POST /feedback`` (whether an answer helped)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from rag.serve.deps import PipelineDep
from rag.serve.errors import COMMON_ERRORS, error_responses, stream_error
from rag.serve.schemas import (
    AskRequest,
    AskResponse,
    CitationModel,
    FeedbackRequest,
    FeedbackResponse,
    SearchRequest,
    SearchResponse,
    filters_of,
    passage_of,
)
from rag.serve.streaming import (
    SSE_HEADERS,
    SSE_MEDIA_TYPE,
    close_quietly,
    drain,
    first_event,
    run_blocking,
    sse,
    sse_schema,
)
from rag.text.paths import display_path
from rag.types import DoneEvent, PassagesEvent, StreamEvent, TokenEvent

router = APIRouter(tags=["answers"])


@router.post(
    "/ask",
    response_model=AskResponse,
    responses={
        200: {
            "description": "The answer (JSON), or with `stream: true` server-sent events: `passages` "
            "(the numbered passages), `token` ({text}), `done` (the whole answer, as the JSON answer), "
            "`error` ({error}) if the stream fails",
            "content": {SSE_MEDIA_TYPE: {"schema": sse_schema(["passages", "token", "done", "error"])}},
        },
        **error_responses(*COMMON_ERRORS, 400, 502),
    },
)
async def ask(body: AskRequest, pipeline: PipelineDep) -> Any:
    """Answer a question from the documents, with numbered citations; refuses when nothing is relevant."""
    filters = filters_of(body.filters)
    history = [(t.question, t.answer) for t in body.history or []] or None
    if not body.stream:
        answer = await run_blocking(lambda: pipeline.ask(body.question, body.k, history, filters=filters))
        return AskResponse.of(answer)
    events = pipeline.ask_stream(body.question, body.k, history, filters=filters)
    first = await first_event(events)
    return StreamingResponse(_ask_events(first, events), media_type=SSE_MEDIA_TYPE, headers=SSE_HEADERS)


async def _ask_events(first: StreamEvent, events: Iterator[StreamEvent]) -> AsyncIterator[bytes]:
    try:
        yield _event_bytes(first)
        async for event in drain(events):
            yield _event_bytes(event)
    except Exception as exc:  # noqa: BLE001 -- the response has started: report in-band, log here
        yield sse("error", {"error": stream_error(exc)})
    finally:
        close_quietly(events)


def _event_bytes(event: StreamEvent) -> bytes:
    if isinstance(event, PassagesEvent):
        return sse("passages", {"passages": [CitationModel.of(c) for c in event.passages]})
    if isinstance(event, TokenEvent):
        return sse("token", {"text": event.text})
    if isinstance(event, DoneEvent):
        return sse("done", AskResponse.of(event.answer))
    raise TypeError(f"unknown stream event {event!r}")


@router.post("/feedback", response_model=FeedbackResponse, responses=error_responses(*COMMON_ERRORS, 400, 404))
async def feedback(body: FeedbackRequest, pipeline: PipelineDep) -> BaseModel:
    """Say whether an answer helped (``question_id``: the answer's, given when the server records questions);
    404 when no question was recorded under that id."""
    recorded = await run_blocking(lambda: pipeline.feedback(body.question_id, body.helpful))
    return FeedbackResponse.of(recorded)


@router.post("/search", response_model=SearchResponse, responses=error_responses(*COMMON_ERRORS, 400))
async def search(body: SearchRequest, pipeline: PipelineDep) -> BaseModel:
    """The top passages for a query, with scores and sources; no answer."""
    filters = filters_of(body.filters)
    hits = await run_blocking(lambda: pipeline.retrieve(body.query, body.k, filters=filters))
    return SearchResponse(query=body.query, passages=[passage_of(h, display_path(h.chunk.source)) for h in hits])
