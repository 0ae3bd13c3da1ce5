"""`rag serve`: a thin HTTP layer (FastAPI) over one RagPipeline. Build the app first (``create_app``), run last
(``serve``), so tests drive the app without a socket.

Routes (documented in the generated OpenAPI schema at ``/openapi.json``, browsable at ``/docs``):

- ``POST /ask``: an answer with citations; ``"stream": true`` answers as server-sent events: ``passages`` (the
  numbered passages), ``token`` (pieces of the answer as written), ``done`` (the whole checked answer).
- ``POST /search``: passages only.
- ``POST /feedback``: whether an answer helped (answers carry a ``question_id`` when ``record_questions`` is on).
- ``GET /documents``, ``POST /documents`` (multipart upload; ingested by a background job, ``GET /jobs/{id}``),
  ``DELETE /documents/{id}``.
- ``GET /health`` (liveness; whether the index and the models are loaded), ``GET /info``.
- ``POST /v1/chat/completions`` and ``GET /v1/models``: OpenAI-compatible, so OpenAI clients work unchanged.
- ``GET /``: the web page (ask with clickable sources, uploads, documents, index info), files under ``/web/``.
- ``/mcp``: the MCP tools (``rag.mcp``) over streamable HTTP, behind the same API key.

Protection: an optional bearer token (required when binding beyond loopback), request body and upload size
limits, a bound on concurrent model requests (503 with Retry-After beyond it), JSON errors everywhere (a
catch-all logs the traceback and answers 500 without it). Model calls run in worker threads, never on the
event loop.

The parts: ``settings`` (ServerSettings), ``middleware`` (auth, size and concurrency limits), ``errors`` (JSON
errors, status codes), ``streaming`` (worker threads, server-sent events), ``schemas`` (request and response
models, the responses derived from ``rag.types``), ``deps`` (what routes get from ``app.state``), ``jobs``
(uploads and their ingest jobs), and ``routes`` (answers, documents, service, openai). This module puts them
together (``create_app``: the app, its lifespan and the warm-up) and runs the result (``serve``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.security import HTTPBearer

import rag
from rag.errors import ConfigError, RagError
from rag.mcp import PATH as MCP_PATH
from rag.mcp import HttpTransport
from rag.mcp import create_server as create_mcp_server
from rag.serve.deps import attach
from rag.serve.errors import error_responses, install_error_handlers
from rag.serve.jobs import Uploads
from rag.serve.middleware import add_protection
from rag.serve.routes import answers, documents, openai, service
from rag.serve.routes import page as web_page
from rag.serve.settings import API_KEY_ENV, ServerSettings
from rag.serve.streaming import run_blocking

if TYPE_CHECKING:
    from rag.pipeline import RagPipeline

log = logging.getLogger(__name__)


def create_app(pipeline: RagPipeline, settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI app over ``pipeline``. ``settings`` default: ``ServerSettings.from_env()`` (API key from
    ``$RAG_API_KEY``, if set)."""
    settings = settings or ServerSettings.from_env()
    uploads = Uploads(
        pipeline, (settings.upload_dir or pipeline.index_path / "uploads").resolve(), max_jobs=settings.max_jobs
    )
    app = FastAPI(
        title="rag",
        version=rag.__version__,
        description="Answers questions over your documents, with citations. OpenAI-compatible under /v1.",
        lifespan=lifespan,
    )
    attach(app, pipeline, settings, uploads, started=int(time.time()))
    install_error_handlers(app)
    add_protection(app, settings)
    # With an API key, every route but /health documents the bearer scheme and its 401 in the OpenAPI schema
    # (BearerAuth enforces the key before anything else runs).
    auth = [Depends(HTTPBearer(auto_error=False, description="the server's API key"))] if settings.api_key else []
    unauthorized = error_responses(401) if settings.api_key else {}
    app.include_router(answers.router, dependencies=auth, responses=unauthorized)
    app.include_router(documents.router, dependencies=auth, responses=unauthorized)
    app.include_router(service.public)
    app.include_router(service.router, dependencies=auth, responses=unauthorized)
    app.include_router(openai.router, dependencies=auth, responses=unauthorized)
    app.include_router(web_page.router)  # the web page at / (public; its API calls need the key)
    app.state.mcp = mount_mcp(app, pipeline, settings, uploads.write_lock) if settings.mcp else None
    return app


def mount_mcp(
    app: FastAPI, pipeline: RagPipeline, settings: ServerSettings, write_lock: threading.Lock
) -> HttpTransport:
    """The MCP tools at ``/mcp`` (streamable HTTP): the SDK's ASGI app as a route of this app, so the API key
    (``BearerAuth``), the body limit and the concurrency limit apply; ``lifespan`` runs it. Its write tools take
    ``write_lock``, the upload jobs' (``Uploads.write_lock``), so they never race an upload or a watched change."""
    transport = HttpTransport(
        create_mcp_server(pipeline, allow_writes=settings.mcp_allow_writes, write_lock=write_lock),
        host=settings.host,
        allowed_hosts=settings.allowed_hosts,
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_route(MCP_PATH, transport, include_in_schema=False)
    return transport


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Enough worker threads for the concurrency limit; the models load in the background (``warm_up``); at
    shutdown the running ingest job finishes and queued ones are dropped."""
    settings: ServerSettings = app.state.settings
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, settings.max_concurrency + 8)
    if settings.warm_up:
        threading.Thread(target=warm_up, args=(app.state.pipeline,), name="rag-warm-up", daemon=True).start()
    if settings.watch:  # rag serve --watch: changes ingested through the upload jobs' writer (Uploads.watch)
        app.state.uploads.watch(settings.watch)
    mcp: HttpTransport | None = app.state.mcp
    async with mcp.run() if mcp is not None else contextlib.nullcontext():
        yield
    await run_blocking(app.state.uploads.close)


def warm_up(pipeline: RagPipeline) -> None:
    """Load the models now rather than on the first request; a failure is logged (they load on first use)."""
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
    app = create_app(pipeline, dataclasses.replace(settings, host=host))
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
