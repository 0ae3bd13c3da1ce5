"""The server for real: uvicorn on 127.0.0.1 (ephemeral port, in a thread), talked to by the official ``openai``
client and by httpx; graceful shutdown lets an in-flight request finish."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from live_server import serving

from rag.answer.generators.base import GenerationRequest
from rag.config import RagConfig
from rag.pipeline import RagPipeline
from rag.serve.app import ServerSettings, create_app
from rag.testing import EchoGenerator, HashEmbedder

QUESTION = "When was the Transformer architecture introduced?"
KEY = "test-key-123"
WAIT_S = 10.0




@pytest.fixture
def make_pipeline(tmp_path: Path, corpus_dir: Path) -> Iterator[Callable[..., RagPipeline]]:
    made: list[RagPipeline] = []

    def make(generator: Any = None) -> RagPipeline:
        p = RagPipeline(
            RagConfig(index=tmp_path / "idx", quiet=True),
            embedder=HashEmbedder(),
            generator=generator or EchoGenerator(),
        )
        p.ingest([corpus_dir])
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_the_openai_client_works_unchanged(make_pipeline: Callable[..., RagPipeline]) -> None:
    app = create_app(make_pipeline(), ServerSettings(api_key=KEY, warm_up=False))
    with serving(app) as (url, _, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=WAIT_S)
        assert [m.id for m in client.models.list()] == ["rag"]

        reply = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}])
        content = reply.choices[0].message.content or ""
        assert reply.choices[0].finish_reason == "stop"
        assert "[1]" in content and "transformer-architecture.md" in content
        citations = (reply.model_extra or {})["citations"]
        assert citations[0]["number"] == 1 and Path(citations[0]["source"]).name == "transformer-architecture.md"

        stream = client.chat.completions.create(
            model="rag", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
        pieces: list[str] = []
        finish: list[str | None] = []
        last_extra: dict[str, Any] = {}
        for chunk in stream:
            pieces.append(chunk.choices[0].delta.content or "")
            finish.append(chunk.choices[0].finish_reason)
            last_extra = chunk.model_extra or {}
        streamed = "".join(pieces)
        assert len(pieces) > 3  # really streamed, not one blob
        assert finish[-1] == "stop" and set(finish[:-1]) == {None}
        assert " ".join(content.split()) in " ".join(streamed.split())  # same answer and sources
        assert last_extra["citations"] == citations

        wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0, timeout=WAIT_S)
        with pytest.raises(openai.AuthenticationError, match="invalid API key"):
            wrong.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}])
        with pytest.raises(openai.BadRequestError, match="no user message"):
            client.chat.completions.create(model="rag", messages=[{"role": "system", "content": "hi"}])


def test_ask_streams_over_http(make_pipeline: Callable[..., RagPipeline]) -> None:
    app = create_app(make_pipeline(), ServerSettings(warm_up=False))
    with serving(app) as (url, _, _), httpx.Client(base_url=url, timeout=WAIT_S) as http:
        assert http.get("/health").json()["index_loaded"] is True
        with http.stream("POST", "/ask", json={"question": QUESTION, "stream": True}) as r:
            assert r.status_code == 200
            events = [line[len("event: ") :] for line in r.iter_lines() if line.startswith("event: ")]
        assert events[0] == "passages" and events[-1] == "done" and "token" in events


def test_graceful_shutdown_finishes_in_flight_requests(make_pipeline: Callable[..., RagPipeline]) -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow(EchoGenerator):
        def generate(self, request: GenerationRequest) -> str:
            entered.set()
            release.wait(WAIT_S)
            return super().generate(request)

    app = create_app(make_pipeline(Slow()), ServerSettings(warm_up=False))
    results: list[int] = []
    with serving(app) as (url, server, thread):

        def ask() -> None:
            with httpx.Client(base_url=url, timeout=WAIT_S) as http:
                results.append(http.post("/ask", json={"question": QUESTION}).status_code)

        asker = threading.Thread(target=ask)
        asker.start()
        assert entered.wait(WAIT_S)
        server.should_exit = True  # what SIGTERM / Ctrl-C do
        time.sleep(0.2)
        assert thread.is_alive()  # still serving the request in flight
        release.set()
        asker.join(WAIT_S)
        thread.join(WAIT_S)
        assert not thread.is_alive()
    assert results == [200]
