"""The service itself: ``GET /health`` (liveness, no API key needed, and readiness: whether the index and the
models are loaded) on ``public``, and ``GET /info`` (the index: model, dimension, documents, size) on
``router``, which like the other routers needs the API key when the server has one."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

import rag
from rag.errors import RagError
from rag.serve.deps import PipelineDep
from rag.serve.errors import COMMON_ERRORS, error_responses
from rag.serve.schemas import HealthResponse, InfoResponse
from rag.serve.streaming import run_blocking

public = APIRouter(tags=["service"])
router = APIRouter(tags=["service"])


@public.get("/health", response_model=HealthResponse, responses=error_responses(500))
async def health(pipeline: PipelineDep) -> BaseModel:
    """Liveness (no API key needed), and whether the index and the models are loaded."""

    def state() -> tuple[bool, int]:
        try:
            return True, pipeline.info().documents
        except RagError:
            return False, 0

    loaded, documents = await run_blocking(state)
    return HealthResponse(
        status="ok",
        index_loaded=loaded,
        models_loaded=pipeline.models_loaded,
        documents=documents,
        version=rag.__version__,
    )


@router.get("/info", response_model=InfoResponse, responses=error_responses(*COMMON_ERRORS))
async def info(pipeline: PipelineDep) -> BaseModel:
    """The index: model, dimension, documents, chunks, size on disk."""
    return InfoResponse.of(await run_blocking(pipeline.info))
