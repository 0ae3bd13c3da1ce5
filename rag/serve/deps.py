"""What the routes share, kept on ``app.state`` and handed to them as FastAPI dependencies.

``attach`` stores the pipeline, the settings, the uploads (folder and ingest jobs) and the start time on the
app; a route asks for them with ``PipelineDep``, ``SettingsDep``, ``UploadsDep`` or ``StartedDep`` in its
signature, so the routes need no closure over the app factory and tests can reach them on ``app.state``. The getters are
``async`` so FastAPI calls them on the event loop (a plain ``def`` would take a worker thread per request).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from rag.pipeline import RagPipeline
from rag.serve.jobs import Uploads
from rag.serve.settings import ServerSettings


def attach(app: FastAPI, pipeline: RagPipeline, settings: ServerSettings, uploads: Uploads, started: int) -> None:
    """Make the app serve ``pipeline`` with ``settings``; ``started``: Unix time (the model card's ``created``)."""
    app.state.pipeline = pipeline
    app.state.settings = settings
    app.state.uploads = uploads
    app.state.started = started


async def get_pipeline(request: Request) -> RagPipeline:
    return request.app.state.pipeline


async def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


async def get_uploads(request: Request) -> Uploads:
    return request.app.state.uploads


async def get_started(request: Request) -> int:
    return request.app.state.started


PipelineDep = Annotated[RagPipeline, Depends(get_pipeline)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
UploadsDep = Annotated[Uploads, Depends(get_uploads)]
StartedDep = Annotated[int, Depends(get_started)]
