"""Property-based tests of the HTTP API against its own OpenAPI schema (schemathesis, in-process over ASGI):
whatever schemathesis generates, valid or not, the server never answers 500, every status code and content type
it answers is documented, and JSON bodies match the documented schemas. Bounded: a few examples per route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rag.config import RagConfig
from rag.pipeline import RagPipeline
from rag.serve.app import ServerSettings, create_app
from rag.testing import EchoGenerator, HashEmbedder

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CORPUS = Path(__file__).resolve().parents[2] / "corpora"
OPERATIONS = [
    ("POST", "/ask"),
    ("POST", "/feedback"),
    ("POST", "/search"),
    ("GET", "/documents"),
    ("POST", "/documents"),
    ("DELETE", "/documents/{doc_id}"),
    ("GET", "/jobs/{job_id}"),
    ("GET", "/health"),
    ("GET", "/info"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
]
# Invalid inputs (negative mode) only exist for operations that take some.
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if m != "GET" or "{" in p
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    index = tmp_path_factory.mktemp("schema") / "idx"
    pipeline = RagPipeline(RagConfig(index=index, quiet=True), embedder=HashEmbedder(), generator=EchoGenerator())
    pipeline.ingest([CORPUS])
    app = create_app(pipeline, ServerSettings(warm_up=False, max_upload_bytes=64 * 1024))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.uploads.close()
    pipeline.close()


def test_every_operation_is_covered(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_api_conforms_to_its_schema(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def check(case: schemathesis.Case) -> None:
        response = case.call()
        assert response.status_code < 500, (response.status_code, response.text[:500])
        case.validate_response(response, checks=CHECKS)

    check()
