"""Off the event loop, and server-sent events.

- ``run_blocking``: a blocking call (model, index, disk) in a worker thread; no route runs one on the loop.
- ``first_event`` / ``drain``: a synchronous answer stream, each step in a worker thread; the first event is
  taken before the response starts, so retrieval errors still get a proper status code.
- ``sse`` / ``sse_data``: one event (named, as ``/ask`` sends them; or data only, as OpenAI streams do).
- ``sse_schema``: how an event stream is documented in the OpenAPI schema.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import anyio.to_thread
from fastapi.encoders import jsonable_encoder

from rag.types import StreamEvent

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_MEDIA_TYPE = "text/event-stream"
_END = object()


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (model, index, disk) in a worker thread, off the event loop."""
    return await anyio.to_thread.run_sync(fn, *args)


async def drain(events: Iterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """The events of a synchronous stream, each ``next`` in a worker thread."""
    while True:
        event = await run_blocking(next, events, _END)
        if event is _END:
            return
        yield event


async def first_event(events: Iterator[StreamEvent]) -> StreamEvent:
    """Start a stream (retrieval runs here), so its errors still get a proper status code."""
    event = await run_blocking(next, events, _END)
    if event is _END:
        raise RuntimeError("the answer stream ended before its first event")
    return event


def close_quietly(events: Iterator[StreamEvent]) -> None:
    """Close a stream that may have stopped early (the client left, or it failed); never raises."""
    with contextlib.suppress(Exception):
        events.close()  # type: ignore[attr-defined]


def _json(data: Any) -> str:
    return json.dumps(jsonable_encoder(data), ensure_ascii=False)


def sse(event: str, data: Any) -> bytes:
    """A named server-sent event whose data is ``data`` as JSON (pydantic models included)."""
    return f"event: {event}\ndata: {_json(data)}\n\n".encode()


def sse_data(data: Any) -> bytes:
    """An unnamed server-sent event (OpenAI streams): ``data: <JSON>``."""
    return f"data: {_json(data)}\n\n".encode()


def sse_schema(events: list[str] | None) -> dict[str, Any]:
    """One server-sent event (OpenAPI 3.1: the schema of an event stream describes each event): its name, when
    it has one, and its data, a JSON document (or ``[DONE]``)."""
    props: dict[str, Any] = {"data": {"type": "string", "description": "JSON (OpenAI streams end with [DONE])"}}
    if events:
        props["event"] = {"type": "string", "enum": events}
    return {"type": "object", "properties": props, "required": ["data", *(["event"] if events else [])]}
