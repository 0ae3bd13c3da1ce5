"""Documents: ``GET /documents`` (what the index holds), ``POST /documents`` (multipart upload, ingested by a
background job: 202 and ``Location: /jobs/{id}``), ``DELETE /documents/{id}``, and ``GET /jobs/{id}`` (the
state of an upload job). Uploads go through ``rag.serve.jobs.Uploads``; a file type is accepted when
``RagPipeline.accepts`` says the ingest can read it."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from rag.errors import IndexNotFoundError, RagError
from rag.serve.deps import PipelineDep, SettingsDep, UploadsDep
from rag.serve.errors import COMMON_ERRORS, error_responses
from rag.serve.jobs import UploadError, document_id, safe_filename
from rag.serve.schemas import DeletedResponse, DocumentList, DocumentModel, JobModel
from rag.serve.streaming import run_blocking
from rag.text.paths import display_path

router = APIRouter(tags=["documents"])


@router.get("/documents", response_model=DocumentList, responses=error_responses(*COMMON_ERRORS))
async def list_documents(pipeline: PipelineDep, uploads: UploadsDep) -> BaseModel:
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

    return DocumentList(documents=await run_blocking(docs))


@router.post("/documents", status_code=202, response_model=JobModel, responses=error_responses(*COMMON_ERRORS, 400))
async def upload_documents(
    files: Annotated[list[UploadFile], File(description="files to add or update (same name: replaced)")],
    pipeline: PipelineDep,
    uploads: UploadsDep,
    metadata: Annotated[
        str | None, Form(description='JSON object of strings stored with the files, e.g. {"team": "legal"}')
    ] = None,
) -> JSONResponse:
    """Upload files; they are ingested in the background (poll `GET /jobs/{id}`) by the same incremental
    ingest as `rag ingest`: new files are added, changed ones replaced, unchanged ones skipped."""
    meta = parse_metadata(metadata)
    names: list[str] = []
    for f in files:
        name = safe_filename(f.filename or "")
        if not pipeline.accepts(name):
            raise UploadError(
                f"{name!r}: unsupported file type; upload txt, md, html, pdf, docx, csv/tsv, json/jsonl or source code"
            )
        if name in names:
            raise UploadError(f"two uploaded files are both named {name!r}; upload them under different names")
        names.append(name)
    job_id, staged = await run_blocking(uploads.stage, [(n, f.file) for n, f in zip(names, files, strict=True)])
    job = uploads.submit(job_id, names, staged, meta)
    return JSONResponse(jsonable_encoder(JobModel.of(job)), status_code=202, headers={"Location": f"/jobs/{job.id}"})


@router.delete("/documents/{doc_id}", response_model=DeletedResponse, responses=error_responses(*COMMON_ERRORS, 404))
async def delete_document(
    doc_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$", description="a document id from GET /documents")],
    uploads: UploadsDep,
    settings: SettingsDep,
) -> BaseModel:
    """Delete a document from the index (and its file, when it was uploaded)."""
    path = await run_blocking(uploads.remove, doc_id, settings.write_wait_s)
    if path is None:
        raise HTTPException(404, f"no document with id {doc_id}; list them with GET /documents")
    return DeletedResponse(id=doc_id, path=display_path(path), deleted=True)


@router.get("/jobs/{job_id}", response_model=JobModel, responses=error_responses(*COMMON_ERRORS, 404))
async def get_job(
    job_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="the id POST /documents returned")],
    uploads: UploadsDep,
) -> BaseModel:
    """The state of an upload job: queued, running, done (with the ingest report) or failed (with the error)."""
    job = uploads.get(job_id)
    if job is None:
        raise HTTPException(404, f"no upload job with id {job_id} (jobs are kept in memory until a restart)")
    return JobModel.of(job)


def parse_metadata(raw: str | None) -> dict[str, str]:
    """The upload's ``metadata`` form field: a JSON object whose values are stored as strings."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RagError(f'metadata is not JSON ({exc.msg}); send an object such as {{"team": "legal"}}') from exc
    if not isinstance(data, dict) or not all(isinstance(v, str | int | float | bool) for v in data.values()):
        raise RagError('metadata must be a JSON object of strings, such as {"team": "legal"}')
    return {str(k): str(v) for k, v in data.items()}
