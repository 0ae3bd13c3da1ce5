"""The HTTP server (rag.serve.app) through FastAPI's TestClient, on the fakes: every endpoint, status code and error
path, the limits, authentication, uploads and their jobs, and the OpenAI-compatible routes."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.answer.generators.base import GenerationRequest
from rag.cli.main import main
from rag.config import RagConfig
from rag.errors import ConfigError, GeneratorError, IndexLockedError, RagError
from rag.ingest.loaders import load
from rag.pipeline import RagPipeline
from rag.serve.app import ServerSettings, check_bind, create_app, is_loopback
from rag.serve.jobs import UploadError, document_id, safe_filename
from rag.serve.routes.openai import conversation
from rag.serve.schemas import ChatMessage
from rag.testing import EchoGenerator, HashEmbedder

Factory = Callable[..., RagPipeline]
QUESTION = "When was the Transformer architecture introduced?"
WAIT_S = 10.0  # upper bound on any wait in these tests


@pytest.fixture(autouse=True)
def _no_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_API_KEY", raising=False)


@pytest.fixture
def pipeline(fake_pipeline: Factory, corpus_dir: Path) -> RagPipeline:
    p = fake_pipeline()
    p.ingest([corpus_dir])
    return p


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    """``client_for(pipeline, **settings)``: a TestClient (lifespan started) over ``create_app``; server errors
    come back as responses, as a real client would see them."""
    opened: list[TestClient] = []

    def make(p: RagPipeline, **settings: Any) -> TestClient:
        settings.setdefault("warm_up", False)
        client = TestClient(create_app(p, ServerSettings(**settings)), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(pipeline: RagPipeline, client_for: Callable[..., TestClient]) -> TestClient:
    return client_for(pipeline)


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event name, data) of each server-sent event in ``text``."""
    events: list[tuple[str, str]] = []
    for block in text.strip().split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, "\n".join(data)))
    return events


def assert_error(response: Any, status: int, *words: str) -> dict[str, Any]:
    """``response`` is a JSON error with ``status`` whose message contains ``words``; no traceback leaks."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == status
    assert isinstance(error["type"], str) and error["type"]
    for word in words:
        assert word in error["message"], error["message"]
    assert "Traceback" not in response.text
    return error


def wait_for_job(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish within {WAIT_S} s")


class GatedGenerator(EchoGenerator):
    """Blocks in ``generate`` until the test releases it (to hold a request in flight)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def generate(self, request: GenerationRequest) -> str:
        self.entered.set()
        if not self.release.wait(WAIT_S):
            raise AssertionError("the test never released the generator")
        return super().generate(request)


# --- health and info ------------------------------------------------------------------------------------


def test_health_before_and_after_an_index(fake_pipeline: Factory, corpus_dir: Path, client_for: Any) -> None:
    p = fake_pipeline()
    client = client_for(p)
    before = client.get("/health")
    assert before.status_code == 200
    assert before.json()["index_loaded"] is False and before.json()["documents"] == 0
    p.ingest([corpus_dir])
    after = client.get("/health").json()
    assert after["status"] == "ok"
    assert after["index_loaded"] is True
    assert after["documents"] == 12
    assert after["models_loaded"] is True  # the fakes were passed in


def test_warm_up_loads_the_models_at_start(tmp_path: Path, corpus_dir: Path, client_for: Any) -> None:
    fakes = {"embedder": "rag.testing:HashEmbedder", "generator": "rag.testing:EchoGenerator"}  # named, as a user would
    p = RagPipeline(RagConfig(index=tmp_path / "idx", quiet=True, **fakes))
    p.ingest([corpus_dir])
    p2 = RagPipeline(RagConfig(index=tmp_path / "idx", generator="rag.testing:EchoGenerator", quiet=True))
    assert p2.models_loaded is False
    client = client_for(p2, warm_up=True)
    deadline = time.monotonic() + WAIT_S
    while not client.get("/health").json()["models_loaded"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.get("/health").json()["models_loaded"] is True
    p.close()
    p2.close()


def test_info(client: TestClient) -> None:
    info = client.get("/info").json()
    assert info["documents"] == 12
    assert info["embedder"] == "rag.testing:HashEmbedder"
    assert info["chunks"] == info["vectors"] > 12


def test_without_an_index_answers_are_503_with_a_hint(fake_pipeline: Factory, client_for: Any) -> None:
    client = client_for(fake_pipeline())
    assert_error(client.get("/info"), 503, "no index", "POST /documents")
    assert_error(client.post("/ask", json={"question": QUESTION}), 503, "no index")
    assert_error(client.post("/ask", json={"question": QUESTION, "stream": True}), 503, "no index")
    assert_error(client.post("/search", json={"query": "x"}), 503, "no index")
    assert client.get("/documents").json() == {"documents": []}


# --- /ask -----------------------------------------------------------------------------------------------


def test_ask_answers_with_citations(client: TestClient, corpus_dir: Path) -> None:
    r = client.post("/ask", json={"question": QUESTION})
    assert r.status_code == 200
    body = r.json()
    assert body["refused"] is False
    assert body["answer"].strip()
    assert body["generator"] == "echo"
    first = body["citations"][0]
    assert f"[{first['number']}]" in body["answer"]
    assert Path(first["source"]).name == "transformer-architecture.md"
    source_text = load(corpus_dir / "transformer-architecture.md").text
    assert first["text"] == source_text[first["start"] : first["end"]]  # the span points into the source
    assert 0.0 < first["score"] <= 1.0
    assert first["location"].startswith("line")


def test_ask_k_and_filters(client: TestClient) -> None:
    zh = client.post("/ask", json={"question": "FAISS 是什么？", "k": 2, "filters": {"language": ["zh"]}}).json()
    assert zh["citations"] and all(c["source"].endswith(".md") for c in zh["citations"])
    search = client.post("/search", json={"query": "FAISS 向量", "k": 3, "filters": {"language": ["zh"]}}).json()
    assert 0 < len(search["passages"]) <= 3
    names = {Path(p["source"]).name for p in search["passages"]}
    assert names <= {"xiangliang-jiansuo.md", "jiansuo-zengqiang-shengcheng.md", "ciqianru-yu-juziqianru.md",
                     "weitiao-yu-tishi.md", "zhongwen-fenci.md", "xiaoxing-yuyan-moxing.txt"}  # fmt: skip
    one = client.post("/search", json={"query": "retrieval", "k": 10, "filters": {"path": "*bm25-lexical-search.txt"}})
    assert {Path(p["source"]).name for p in one.json()["passages"]} == {"bm25-lexical-search.txt"}


def test_ask_refuses_when_nothing_is_relevant(fake_pipeline: Factory, corpus_dir: Path, client_for: Any) -> None:
    p = fake_pipeline(min_score=0.99, lexical_relevance=0)
    p.ingest([corpus_dir])
    body = client_for(p).post("/ask", json={"question": QUESTION}).json()
    assert body["refused"] is True
    assert body["citations"] == []
    assert "don't know" in body["answer"]


def test_ask_history_rewrites_a_follow_up(client: TestClient) -> None:
    first = client.post("/ask", json={"question": "What is the Transformer architecture?"}).json()
    follow = client.post(
        "/ask",
        json={
            "question": "When was it introduced?",
            "history": [{"question": "What is the Transformer architecture?", "answer": first["answer"]}],
        },
    ).json()
    assert "Transformer" in follow["standalone_question"]
    assert follow["citations"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"question": ""}, 422, ("question",)),
        ({"question": 5}, 422, ("question",)),
        ({}, 422, ("question",)),
        ({"question": "x", "k": 0}, 422, ("k",)),
        ({"question": "x", "k": 10_000}, 422, ("k",)),
        ({"question": "x", "filters": {"colour": "red"}}, 422, ("filters",)),
        ({"question": "x", "surprise": True}, 422, ("surprise",)),
        ({"question": "   "}, 400, ("empty",)),
        ({"question": "x", "filters": {"meta": {"bad key!": "v"}}}, 400, ("bad key!",)),
    ],
)
def test_ask_rejects_bad_requests(client: TestClient, body: dict[str, Any], status: int, words: tuple[str]) -> None:
    error = assert_error(client.post("/ask", json=body), status, *words)
    if status == 422:
        assert error["details"] and all("loc" in d and "msg" in d for d in error["details"])


def test_ask_rejects_invalid_json(client: TestClient) -> None:
    r = client.post("/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 422, "JSON")


def test_ask_stream_sends_passages_then_tokens_then_the_answer(client: TestClient) -> None:
    plain = client.post("/ask", json={"question": QUESTION}).json()
    with client.stream("POST", "/ask", json={"question": QUESTION, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    names = [name for name, _ in events]
    assert names[0] == "passages" and names[-1] == "done"
    assert set(names[1:-1]) == {"token"} and len(names) > 3
    passages = json.loads(events[0][1])["passages"]
    assert passages[0]["number"] == 1 and passages[0]["text"]
    tokens = "".join(json.loads(data)["text"] for name, data in events if name == "token")
    done = json.loads(events[-1][1])
    assert " ".join(tokens.split()) == " ".join(done["answer"].split())
    assert done["answer"] == plain["answer"]
    assert [c["source"] for c in done["citations"]] == [c["source"] for c in plain["citations"]]


def test_a_failure_mid_stream_is_an_error_event(
    fake_pipeline: Factory, corpus_dir: Path, client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(EchoGenerator):
        def stream(self, request: GenerationRequest) -> Iterator[str]:
            yield "The "
            raise RuntimeError("secret internals")

    p = RagPipeline(
        RagConfig(index=fake_pipeline().index_path, quiet=True), embedder=HashEmbedder(), generator=Broken()
    )
    p.ingest([corpus_dir])
    client = client_for(p)
    with (
        caplog.at_level(logging.ERROR, logger="rag.serve.app"),
        client.stream("POST", "/ask", json={"question": QUESTION, "stream": True}) as r,
    ):
        events = sse_events(r.read().decode())
    assert [name for name, _ in events] == ["passages", "token", "error"]
    error = json.loads(events[-1][1])["error"]
    assert error["code"] == 500 and "secret internals" not in error["message"]
    assert any(rec.exc_info and "secret internals" in str(rec.exc_info[1]) for rec in caplog.records)
    p.close()


# --- errors -----------------------------------------------------------------------------------------------


def test_unexpected_errors_are_500_json_and_logged(
    pipeline: RagPipeline, client_for: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("secret internals")

    client = client_for(pipeline)
    monkeypatch.setattr(pipeline, "retrieve", boom)
    with caplog.at_level(logging.ERROR, logger="rag.serve.app"):
        error = assert_error(client.post("/search", json={"query": "x"}), 500, "internal server error")
    assert "secret internals" not in error["message"] and "ZeroDivisionError" not in error["message"]
    logged = [rec for rec in caplog.records if rec.exc_info]
    assert logged and isinstance(logged[0].exc_info[1], ZeroDivisionError)  # type: ignore[index]


@pytest.mark.parametrize(
    ("exc", "status", "retry_after"),
    [
        (GeneratorError("http://llm/v1 answered 500"), 502, False),
        (IndexLockedError("another process (pid 1) is writing"), 503, True),
        (RagError("bad thing: fix it"), 400, False),
    ],
)
def test_pipeline_errors_map_to_status_codes(
    pipeline: RagPipeline,
    client_for: Any,
    monkeypatch: pytest.MonkeyPatch,
    exc: RagError,
    status: int,
    retry_after: bool,
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(pipeline, "ask", fail)
    r = client_for(pipeline).post("/ask", json={"question": QUESTION})
    assert_error(r, status, str(exc))
    assert ("retry-after" in r.headers) is retry_after


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    assert_error(client.get("/nowhere"), 404)
    assert_error(client.get("/ask"), 405)


# --- limits -----------------------------------------------------------------------------------------------


def test_request_body_limit(pipeline: RagPipeline, client_for: Any) -> None:
    client = client_for(pipeline, max_body_bytes=200)
    assert client.post("/ask", json={"question": QUESTION}).status_code == 200
    assert_error(client.post("/ask", json={"question": "x" * 500}), 413, "200 bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield b'{"question": "'
        yield b"x" * 500
        yield b'"}'

    r = client.post("/ask", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413, "too large")


def test_upload_limit(pipeline: RagPipeline, client_for: Any) -> None:
    client = client_for(pipeline, max_upload_bytes=1000)
    r = client.post("/documents", files=[("files", ("big.txt", b"word " * 400, "text/plain"))])
    assert_error(r, 413, "1000 bytes")
    small = client.post("/documents", files=[("files", ("small.txt", b"A small note about otters.", "text/plain"))])
    assert small.status_code == 202
    assert wait_for_job(client, small.json()["id"])["status"] == "done"


def test_mcp_tool_calls_count_against_the_limit_and_its_event_stream_does_not() -> None:
    from rag.serve.middleware import limited

    assert limited("POST", "/mcp") and limited("POST", "/mcp/") and limited("POST", "/ask")
    assert not limited("GET", "/mcp")  # a session's long-lived event stream would hold a slot for good
    assert not limited("DELETE", "/mcp") and not limited("GET", "/health")


def test_concurrency_limit_answers_503_with_retry_after(
    fake_pipeline: Factory, corpus_dir: Path, client_for: Any
) -> None:
    gated = GatedGenerator()
    p = RagPipeline(RagConfig(index=fake_pipeline().index_path, quiet=True), embedder=HashEmbedder(), generator=gated)
    p.ingest([corpus_dir])
    client = client_for(p, max_concurrency=1, retry_after_s=3)
    results: list[int] = []
    first = threading.Thread(
        target=lambda: results.append(client.post("/ask", json={"question": QUESTION}).status_code)
    )
    first.start()
    try:
        assert gated.entered.wait(WAIT_S), "the first request never reached the generator"
        busy = client.post("/ask", json={"question": QUESTION})
        assert_error(busy, 503, "busy")
        assert busy.headers["retry-after"] == "3"
        assert client.get("/health").status_code == 200  # health is never limited
        mcp_headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        assert_error(client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=mcp_headers), 503)
    finally:
        gated.release.set()
        first.join(WAIT_S)
    assert results == [200]
    assert client.post("/ask", json={"question": QUESTION}).status_code == 200  # the slot was given back
    p.close()


# --- auth -------------------------------------------------------------------------------------------------


def test_bearer_token(pipeline: RagPipeline, client_for: Any) -> None:
    client = client_for(pipeline, api_key="s3cret")
    missing = client.post("/ask", json={"question": QUESTION})
    assert_error(missing, 401, "missing API key")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_error(client.get("/documents", headers={"Authorization": "Bearer nope"}), 401, "invalid API key")
    assert_error(client.get("/v1/models", headers={"Authorization": "Basic s3cret"}), 401)
    ok = client.post("/ask", json={"question": QUESTION}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["citations"]
    assert client.get("/health").status_code == 200  # liveness needs no key
    schema = client.get("/openapi.json").json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_api_key_from_the_environment(pipeline: RagPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_API_KEY", "from-env")
    assert ServerSettings.from_env().api_key == "from-env"
    assert ServerSettings.from_env(api_key="explicit").api_key == "explicit"
    with TestClient(create_app(pipeline)) as client:  # no settings: the environment's key applies
        assert client.get("/info").status_code == 401
        assert client.get("/info", headers={"Authorization": "Bearer from-env"}).status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="API key"):
        check_bind("0.0.0.0", ServerSettings())
    check_bind("0.0.0.0", ServerSettings(api_key="k"))  # no error
    check_bind("127.0.0.1", ServerSettings())
    with pytest.raises(ConfigError, match="empty"):
        ServerSettings(api_key="  ")
    with pytest.raises(ConfigError, match="max_concurrency"):
        ServerSettings(max_concurrency=0)


def test_cli_serve_refuses_a_public_address_without_a_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr("rag.serve.app.serve", never)
    assert main(["serve", "--host", "0.0.0.0", "--index", str(tmp_path / "idx")]) == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in capsys.readouterr().err


def test_cli_serve_passes_its_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_serve(pipeline: RagPipeline, **kwargs: Any) -> None:
        seen.update(kwargs, index=pipeline.index_path, generator=pipeline.config.generator)

    monkeypatch.setattr("rag.serve.app.serve", fake_serve)
    argv = ["serve", "--index", str(tmp_path / "i"), "--host", "0.0.0.0", "--port", "9123", "--api-key", "k"]
    argv += ["--max-concurrency", "3", "--max-body-kb", "4", "--max-upload-mb", "2", "--generator", "echo", "-q"]
    assert main(argv) == 0
    settings = seen["settings"]
    assert (seen["host"], seen["port"], seen["index"], seen["generator"]) == ("0.0.0.0", 9123, tmp_path / "i", "echo")
    assert (settings.api_key, settings.max_concurrency) == ("k", 3)
    assert (settings.max_body_bytes, settings.max_upload_bytes) == (4096, 2 * 1024 * 1024)


# --- documents and jobs -------------------------------------------------------------------------------------


def test_upload_update_delete_a_document(client: TestClient, pipeline: RagPipeline) -> None:
    assert len(client.get("/documents").json()["documents"]) == 12
    note = b"The okapi protocol was designed in 1987 by the Zanzibar committee."
    r = client.post(
        "/documents",
        files=[("files", ("okapi.md", note, "text/markdown"))],
        data={"metadata": json.dumps({"team": "zoo"})},
    )
    assert r.status_code == 202
    job = r.json()
    assert r.headers["location"] == f"/jobs/{job['id']}"
    assert job["status"] in ("queued", "running", "done") and job["files"] == ["okapi.md"]
    done = wait_for_job(client, job["id"])
    assert done["status"] == "done", done
    assert done["report"]["files_added"] == 1 and done["finished"] >= done["started"] >= done["created"]
    docs = {Path(d["path"]).name: d for d in client.get("/documents").json()["documents"]}
    okapi = docs["okapi.md"]
    assert okapi["uploaded"] is True and docs["bm25-lexical-search.txt"]["uploaded"] is False
    uploaded_file = pipeline.index_path / "uploads" / "okapi.md"
    assert uploaded_file.read_bytes() == note
    hits = client.post("/search", json={"query": "okapi protocol Zanzibar", "filters": {"meta": {"team": "zoo"}}})
    assert [Path(p["source"]).name for p in hits.json()["passages"]] == ["okapi.md"]

    # the same name again, other content: the document is replaced, its id stays
    again = client.post("/documents", files=[("files", ("okapi.md", b"Okapis live in the Ituri forest.", "text/x"))])
    report = wait_for_job(client, again.json()["id"])["report"]
    assert (report["files_added"], report["files_updated"]) == (0, 1)
    assert {d["id"] for d in client.get("/documents").json()["documents"]} >= {okapi["id"]}

    deleted = client.delete(f"/documents/{okapi['id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert not uploaded_file.exists()
    assert len(client.get("/documents").json()["documents"]) == 12
    assert_error(client.delete(f"/documents/{okapi['id']}"), 404, okapi["id"])


def test_delete_a_document_that_was_not_uploaded(client: TestClient, corpus_dir: Path) -> None:
    doc = next(d for d in client.get("/documents").json()["documents"] if d["path"].endswith("zhongwen-fenci.md"))
    assert doc["id"] == document_id(str((corpus_dir / "zhongwen-fenci.md").resolve()))
    assert client.delete(f"/documents/{doc['id']}").status_code == 200
    assert (corpus_dir / "zhongwen-fenci.md").is_file()  # the user's own file is never touched
    assert doc["id"] not in {d["id"] for d in client.get("/documents").json()["documents"]}


def test_first_upload_creates_the_index(fake_pipeline: Factory, client_for: Any) -> None:
    client = client_for(fake_pipeline())
    files = [
        ("files", ("a.txt", b"Alpacas are domesticated South American camelids.", "text/plain")),
        ("files", ("b.md", b"# Bees\n\nBees make honey from nectar.", "text/markdown")),
    ]
    job = wait_for_job(client, client.post("/documents", files=files).json()["id"])
    assert job["status"] == "done" and job["report"]["files_added"] == 2
    assert client.get("/health").json()["index_loaded"] is True
    answer = client.post("/ask", json={"question": "What do bees make?"}).json()
    assert Path(answer["citations"][0]["source"]).name == "b.md"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("/etc/shadow.md", "shadow.md"),
        ("..\\..\\windows\\system.ini.txt", "system.ini.txt"),
        ("C:\\Users\\x\\notes.md", "notes.md"),
        (".hidden.txt", "hidden.txt"),
        ("report 2024 (final).pdf", "report 2024 _final_.pdf"),
        ("笔记.md", "笔记.md"),
        ("a\x00b.txt", "a_b.txt"),
        ("trailing.txt. ", "trailing.txt"),
    ],
)
def test_safe_filename(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe


@pytest.mark.parametrize("raw", ["", "..", "../..", "/", "???", " . "])
def test_safe_filename_refuses_names_with_nothing_left(raw: str) -> None:
    with pytest.raises(UploadError, match="no usable characters"):
        safe_filename(raw)


def test_safe_filename_keeps_long_names_short() -> None:
    name = safe_filename("x" * 500 + ".md")
    assert name.endswith(".md") and len(name.encode()) <= 200


def test_uploaded_names_never_escape_the_upload_folder(pipeline: RagPipeline, client_for: Any, tmp_path: Path) -> None:
    uploads = tmp_path / "up" / "inner"
    client = client_for(pipeline, upload_dir=uploads)

    def outside() -> set[Path]:  # everything under tmp_path but the upload folder and the index's own files
        return {p for p in tmp_path.rglob("*") if "up" not in p.parts and "idx" not in p.parts}

    before = outside()
    # no suffix left after sanitizing: refused, nothing written anywhere
    assert_error(
        client.post("/documents", files=[("files", ("../../etc/passwd", b"root:x:0:0", "text/plain"))]),
        400,
        "'passwd'",
        "unsupported file type",
    )
    names = ["../../etc/passwd.txt", "/tmp/evil.md", "..\\..\\win.txt", "../inner/../../x.txt"]
    files = [("files", (n, f"Text number {i} about lynxes.".encode(), "text/plain")) for i, n in enumerate(names)]
    job = wait_for_job(client, client.post("/documents", files=files).json()["id"])
    assert job["status"] == "done" and job["files"] == ["passwd.txt", "evil.md", "win.txt", "x.txt"]
    assert sorted(p.name for p in uploads.iterdir() if not p.name.startswith(".")) == sorted(job["files"])
    assert outside() == before  # nothing was written outside the upload folder
    stray = [p for p in tmp_path.rglob("*") if p.name in job["files"] and p.parent != uploads]
    assert stray == []
    assert not Path("/etc/passwd.txt").exists()
    assert not Path("/tmp/evil.md").exists() or Path("/tmp/evil.md").read_text() != "Text number 1 about lynxes."
    assert list((uploads / ".staging").iterdir()) == []  # staging is cleaned up


@pytest.mark.parametrize(
    ("files", "data", "words"),
    [
        ([("files", ("a.exe", b"MZ", "application/octet-stream"))], None, ("'a.exe'", "unsupported")),
        ([("files", ("a.txt", b"x y z", "text/plain")), ("files", ("../a.txt", b"p q", "text/plain"))], None,
         ("both named 'a.txt'",)),
        ([("files", ("a.txt", b"x y z", "text/plain"))], {"metadata": "{nope"}, ("not JSON",)),
        ([("files", ("a.txt", b"x y z", "text/plain"))], {"metadata": "[1, 2]"}, ("JSON object",)),
        ([("files", ("???", b"x y z", "text/plain"))], None, ("no usable characters",)),
    ],
)  # fmt: skip
def test_upload_rejects_bad_files(
    client: TestClient, pipeline: RagPipeline, files: list[Any], data: dict[str, str] | None, words: tuple[str]
) -> None:
    assert_error(client.post("/documents", files=files, data=data), 400, *words)
    uploads = pipeline.index_path / "uploads"
    assert not uploads.exists() or [p for p in uploads.iterdir() if p.name != ".staging"] == []


def test_upload_without_files_is_422(client: TestClient) -> None:
    assert_error(client.post("/documents", data={"metadata": "{}"}), 422, "files")


def test_a_failed_ingest_marks_the_job_failed(
    pipeline: RagPipeline, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise IndexLockedError("another process (pid 42) is writing to the index")

    client = client_for(pipeline)
    monkeypatch.setattr(pipeline, "ingest", fail)
    job = wait_for_job(
        client, client.post("/documents", files=[("files", ("a.txt", b"a b", "text/plain"))]).json()["id"]
    )
    assert job["status"] == "failed"
    assert "pid 42" in job["error"] and job["report"] is None


def test_jobs_not_found_and_bad_ids(client: TestClient) -> None:
    assert_error(client.get("/jobs/" + "0" * 32), 404, "no upload job")
    assert_error(client.get("/jobs/not-a-job"), 422)
    assert_error(client.delete("/documents/not-an-id"), 422)
    assert_error(client.delete("/documents/" + "0" * 16), 404)


# --- OpenAI-compatible ------------------------------------------------------------------------------------


def test_models_list(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list" and body["data"][0]["id"] == "rag" and body["data"][0]["object"] == "model"


def test_chat_completion(client: TestClient) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
            ],
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-4o-mini"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert "[1]" in content
    assert "\n\nSources:\n[1] " in content and "transformer-architecture.md" in content
    assert body["citations"][0]["number"] == 1 and body["citations"][0]["text"]
    assert body["refused"] is False


def test_chat_completion_stream(client: TestClient) -> None:
    body = {"model": "rag", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    assert all(name == "message" for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[0]["passages"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "Sources:\n[1]" in text and "transformer-architecture.md" in text
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"] == {}
    assert last["citations"][0]["number"] == 1
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


@pytest.mark.parametrize(
    ("messages", "status", "words"),
    [
        ([{"role": "system", "content": "hi"}], 400, ("no user message",)),
        ([{"role": "user", "content": "  "}], 400, ("no text",)),
        ([], 422, ("messages",)),
        ([{"role": "wizard", "content": "hi"}], 422, ("role",)),
    ],
)
def test_chat_completion_rejects_bad_messages(
    client: TestClient, messages: list[Any], status: int, words: tuple[str]
) -> None:
    assert_error(client.post("/v1/chat/completions", json={"model": "rag", "messages": messages}), status, *words)


def test_conversation_takes_the_last_user_message_and_earlier_turns() -> None:
    msgs = [
        ChatMessage(role="system", content="rules"),
        ChatMessage(role="user", content="What is the Transformer?"),
        ChatMessage(role="assistant", content="A network design. [1]\n\nSources:\n[1] a.md (line 1, chars 0-9)"),
        ChatMessage(role="user", content="When was it introduced?"),
    ]
    question, history = conversation(msgs)
    assert question == "When was it introduced?"
    assert history == [("What is the Transformer?", "A network design. [1]")]


def test_openapi_documents_every_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    expected = {
        ("/ask", "post"), ("/feedback", "post"), ("/search", "post"), ("/documents", "get"), ("/documents", "post"),
        ("/documents/{doc_id}", "delete"), ("/jobs/{job_id}", "get"), ("/health", "get"), ("/info", "get"),
        ("/v1/chat/completions", "post"), ("/v1/models", "get"),
    }  # fmt: skip
    assert {(p, m) for p, ops in paths.items() for m in ops} == expected
    ask = paths["/ask"]["post"]
    assert ask["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/AskRequest")
    assert "text/event-stream" in ask["responses"]["200"]["content"]
    assert ask["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert {"AskResponse", "CitationModel", "ChatCompletionResponse", "JobModel"} <= set(
        schema["components"]["schemas"]
    )


def test_openapi_documents_the_api_key_only_when_there_is_one(pipeline: RagPipeline, client_for: Any) -> None:
    keyless = client_for(pipeline).get("/openapi.json").json()
    keyed = client_for(pipeline, api_key="k").get("/openapi.json").json()
    assert "securitySchemes" not in keyless["components"]
    assert keyed["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert keyed["components"]["schemas"] == keyless["components"]["schemas"]
    assert keyed["paths"].keys() == keyless["paths"].keys()
    for path, operations in keyed["paths"].items():
        for method, op in operations.items():
            without = keyless["paths"][path][method]
            assert "401" not in without["responses"] and "security" not in without
            if path == "/health":  # liveness needs no key
                assert op == without
                continue
            # the key adds the bearer scheme and the 401 answer to the operation, nothing else
            assert op["security"] == [{"HTTPBearer": []}]
            assert op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
            assert {c: r for c, r in op["responses"].items() if c != "401"} == without["responses"]
            rest = {k: v for k, v in op.items() if k not in ("security", "responses")}
            assert rest == {k: v for k, v in without.items() if k != "responses"}


def test_uploads_after_shutdown_are_503(client: TestClient) -> None:
    client.app.state.uploads.close()  # type: ignore[attr-defined]
    r = client.post("/documents", files=[("files", ("late.txt", b"too late", "text/plain"))])
    assert_error(r, 503, "shutting down")
    staging = client.app.state.uploads.folder / ".staging"  # type: ignore[attr-defined]
    assert list(staging.iterdir()) == []


def test_a_document_that_is_not_a_file_cannot_be_deleted(client: TestClient, pipeline: RagPipeline) -> None:
    from rag.types import Document

    pipeline.ingest_documents([Document(path="note:1", text="Narwhals have one long tusk.", file_type="text")])
    doc = next(d for d in client.get("/documents").json()["documents"] if d["path"] == "note:1")
    assert_error(client.delete(f"/documents/{doc['id']}"), 400, "not a file")
    assert doc["id"] in {d["id"] for d in client.get("/documents").json()["documents"]}
