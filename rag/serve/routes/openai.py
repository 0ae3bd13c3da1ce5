"""OpenAI-compatible routes, so OpenAI clients work unchanged: ``GET /v1/models`` (the one model this server
offers) and ``POST /v1/chat/completions``: the last user message is answered from the documents, earlier
turns are the conversation; citations are ``[n]`` in the text with a sources list at its end, and the extra
``citations`` field. With ``stream: true``: ``chat.completion.chunk`` events ending with ``data: [DONE]``."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from rag.errors import RagError
from rag.serve.deps import PipelineDep, SettingsDep, StartedDep
from rag.serve.errors import COMMON_ERRORS, error_responses, stream_error
from rag.serve.schemas import (
    ChatChoice,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    CitationModel,
    ModelCard,
    ModelList,
    filters_of,
)
from rag.serve.streaming import (
    SSE_HEADERS,
    SSE_MEDIA_TYPE,
    close_quietly,
    drain,
    first_event,
    run_blocking,
    sse_data,
    sse_schema,
)
from rag.types import Answer, PassagesEvent, StreamEvent, TokenEvent

MAX_HISTORY_TURNS = 6
SOURCES_HEADER = "\n\nSources:\n"

router = APIRouter(tags=["openai"])


@router.get("/v1/models", response_model=ModelList, responses=error_responses(*COMMON_ERRORS))
async def models(settings: SettingsDep, started: StartedDep) -> BaseModel:
    """The one model this server offers (any model name is accepted by chat completions)."""
    return ModelList(data=[ModelCard(id=settings.model_name, created=started, owned_by="rag")])


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletionResponse,
    responses={
        200: {
            "description": "A chat completion, or with `stream: true` OpenAI `chat.completion.chunk` "
            "server-sent events ending with `data: [DONE]`",
            "content": {SSE_MEDIA_TYPE: {"schema": sse_schema(None)}},
        },
        **error_responses(*COMMON_ERRORS, 400, 502),
    },
)
async def chat_completions(body: ChatCompletionRequest, pipeline: PipelineDep) -> Any:
    """OpenAI chat completions: the last user message is answered from the documents, citations as [n] in
    the text with a sources list at its end, and in the extra `citations` field."""
    question, history = conversation(body.messages)
    filters = filters_of(body.filters)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        answer = await run_blocking(lambda: pipeline.ask(question, body.k, history or None, filters=filters))
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
    first = await first_event(events)
    chunks = _openai_chunks(first, events, completion_id, created, body.model)
    return StreamingResponse(chunks, media_type=SSE_MEDIA_TYPE, headers=SSE_HEADERS)


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


def _normalized(text: str) -> str:
    return " ".join(text.split())


async def _openai_chunks(
    first: StreamEvent, events: Iterator[StreamEvent], completion_id: str, created: int, model: str
) -> AsyncIterator[bytes]:
    """OpenAI ``chat.completion.chunk`` events: the role (and, as an extension, the numbered passages), the
    answer's tokens, then -- when checking the answer against the passages changed it -- the checked answer,
    the sources, and a last chunk with ``finish_reason`` and ``citations``; then ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return sse_data(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra,
            }
        )

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
        async for event in drain(events):
            for data in convert(event):
                yield data
        yield b"data: [DONE]\n\n"
    except Exception as exc:  # noqa: BLE001 -- the response has started: report in-band (OpenAI's shape), log here
        yield sse_data({"error": stream_error(exc)})
    finally:
        close_quietly(events)
