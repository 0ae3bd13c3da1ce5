"""The server's protection, as ASGI middleware (it runs before FastAPI parses anything):

- ``BearerAuth``: ``Authorization: Bearer <key>`` on every path but the public ones (401 otherwise).
- ``BodyLimit``: request bodies over the limit are refused with 413 (uploads get their own, larger limit).
- ``ConcurrencyLimit``: at most N model or index requests at once; more are answered 503 with Retry-After.

``add_protection`` installs all three in that order.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.serve.errors import error_response
from rag.serve.settings import ServerSettings

log = logging.getLogger("rag.serve.app")  # the HTTP layer's one logger

# The web page ("/" and its files under /web/, rag.serve.routes.page) loads without the key; it then asks for it.
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/"})
PUBLIC_PREFIXES = ("/web/",)
# Requests that run models or touch the index count against the concurrency limit; the rest are cheap.
LIMITED_PREFIXES = ("/ask", "/search", "/documents", "/info", "/v1/chat/completions")
LIMITED_POSTS = ("/mcp",)  # MCP tool calls (POST); a session's long-lived GET event stream is not counted


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
    """Requires ``Authorization: Bearer <key>`` on every path but the public ones (health, the API docs and the
    web page's files)."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.key = api_key.encode("utf-8") if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.key is None or is_public(scope["path"]):
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


def is_public(path: str) -> bool:
    """Whether ``path`` is served without the API key (health, the API docs, the web page)."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def limited(method: str, path: str) -> bool:
    """Whether a request counts against ``max_concurrency``: the routes that run models or touch the index, and
    MCP messages (its tools do the same)."""
    return path.startswith(LIMITED_PREFIXES) or (method == "POST" and path.rstrip("/") in LIMITED_POSTS)


class ConcurrencyLimit:
    """At most ``limit`` limited requests at once (a streamed answer counts until its last byte); more are
    answered 503 with Retry-After right away instead of queueing behind slow model calls."""

    def __init__(self, app: ASGIApp, limit: int, retry_after_s: int) -> None:
        self.app = app
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.active = 0  # only touched on the event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not limited(scope["method"], scope["path"]):
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


def add_protection(app: FastAPI, settings: ServerSettings) -> None:
    """Install the three middlewares. The last added runs first: auth, then body size, then the concurrency
    limit (so an unauthenticated or oversized request never takes a slot)."""
    app.add_middleware(ConcurrencyLimit, limit=settings.max_concurrency, retry_after_s=settings.retry_after_s)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(BearerAuth, api_key=settings.api_key)
