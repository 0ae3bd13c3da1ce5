"""Recorded questions and feedback over HTTP (issue 37): with record_questions on, ``POST /ask`` (JSON and streamed)
answers with a ``question_id``; ``POST /feedback`` marks it helpful or not, survives a restarted server, and its
validation errors name the field (422); an unknown id is a 404 that says how to record questions. On the fakes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.config import RagConfig
from rag.index.questions import QuestionLog
from rag.pipeline import RagPipeline
from rag.serve.app import ServerSettings, create_app
from rag.testing import EchoGenerator, HashEmbedder

QUESTION = "When was the Transformer architecture introduced?"


@pytest.fixture(autouse=True)
def _no_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_API_KEY", raising=False)


@pytest.fixture
def index(tmp_path: Path, corpus_dir: Path) -> Path:
    path = tmp_path / "idx"
    with RagPipeline(RagConfig(index=path, quiet=True), embedder=HashEmbedder(), generator=EchoGenerator()) as p:
        p.ingest([corpus_dir])
    return path


@pytest.fixture
def serve() -> Iterator[Callable[..., TestClient]]:
    """``serve(index, record=True)``: a fresh pipeline and server over ``index`` (a restart, each call)."""
    opened: list[tuple[TestClient, RagPipeline]] = []

    def make(index: Path, record: bool = True) -> TestClient:
        config = RagConfig(index=index, quiet=True, record_questions=record)
        pipeline = RagPipeline(config, embedder=HashEmbedder(), generator=EchoGenerator())
        client = TestClient(create_app(pipeline, ServerSettings(warm_up=False)), raise_server_exceptions=False)
        client.__enter__()
        opened.append((client, pipeline))
        return client

    yield make
    for client, pipeline in opened:
        client.__exit__(None, None, None)
        pipeline.close()


def _done(text: str) -> dict[str, Any]:
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        if "event: done" in lines:
            return json.loads("\n".join(line[len("data: ") :] for line in lines if line.startswith("data: ")))
    raise AssertionError(f"no done event in {text[:300]!r}")


def test_answers_carry_a_question_id_and_feedback_survives_a_restart(index: Path, serve: Any) -> None:
    client = serve(index)
    answer = client.post("/ask", json={"question": QUESTION}).json()
    streamed = _done(client.post("/ask", json={"question": QUESTION, "stream": True}).text)
    assert answer["question_id"] and streamed["question_id"] and answer["question_id"] != streamed["question_id"]
    r = client.post("/feedback", json={"question_id": answer["question_id"], "helpful": True})
    assert r.status_code == 200, r.text
    assert r.json() == {"question_id": answer["question_id"], "question": QUESTION, "helpful": True}

    restarted = serve(index)  # a new pipeline and app over the same folder: what a restarted server is
    r = restarted.post("/feedback", json={"question_id": streamed["question_id"], "helpful": False})
    assert r.status_code == 200 and r.json()["helpful"] is False
    recorded = {q.id: q for q in QuestionLog(index).all()}
    assert recorded[answer["question_id"]].helpful is True and recorded[streamed["question_id"]].helpful is False
    cited = recorded[answer["question_id"]].cited
    assert cited and set(cited) <= set(recorded[answer["question_id"]].retrieved)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question_id": "abc"}, "helpful"),
        ({"helpful": True}, "question_id"),
        ({"question_id": "abc", "helpful": "yes"}, "helpful"),
        ({"question_id": "abc", "helpful": 1}, "helpful"),
        ({"question_id": "<script>", "helpful": True}, "question_id"),
        ({"question_id": "", "helpful": True}, "question_id"),
        ({"question_id": "abc", "helpful": True, "extra": 1}, "extra"),
    ],
)
def test_feedback_validation_errors_name_the_field(index: Path, serve: Any, body: dict[str, Any], field: str) -> None:
    r = serve(index).post("/feedback", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert field in error["message"] and "Traceback" not in r.text
    assert any(field in map(str, d.get("loc", [])) for d in error["details"])


def test_feedback_on_an_unknown_id_is_a_404_that_says_how_to_record(index: Path, serve: Any) -> None:
    client = serve(index, record=False)
    answer = client.post("/ask", json={"question": QUESTION}).json()
    assert answer["question_id"] == ""  # recording is off by default
    r = client.post("/feedback", json={"question_id": "abcdef", "helpful": True})
    assert r.status_code == 404
    message = r.json()["error"]["message"]
    assert "no recorded question 'abcdef'" in message and "record_questions" in message
    assert not QuestionLog(index).path.exists()


def test_the_openapi_schema_documents_feedback(index: Path, serve: Any) -> None:
    schema = serve(index).get("/openapi.json").json()
    post = schema["paths"]["/feedback"]["post"]
    assert {"200", "404", "422"} <= set(post["responses"])
    request = schema["components"]["schemas"]["FeedbackRequest"]
    assert set(request["required"]) == {"question_id", "helpful"}
    assert "question_id" in schema["components"]["schemas"]["AskResponse"]["properties"]
