"""The OpenAI-compatible backend against a real local fake server (tests/openai_fake.py): requests, streaming,
errors, timeouts and retries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from openai_fake import FakeOpenAI

from rag.answer.generators.base import GenerationRequest
from rag.answer.generators.openai import OpenAIGenerator, chat_url
from rag.answer.generators.registry import create_generator, grounding_mode
from rag.config import RagConfig
from rag.errors import ConfigError, GeneratorError

PASSAGES = [
    "The Transformer architecture was introduced in 2017. It relies on attention.",
    "BM25 is a ranking function based on term frequency.",
]
REQUEST = GenerationRequest("When was the Transformer introduced?", PASSAGES, "en")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(delay=0.8).start()
    yield server
    server.stop()


def make(fake: FakeOpenAI, scenario: str = "ok", **options: Any) -> OpenAIGenerator:
    settings: dict[str, Any] = {"timeout": 5.0, "max_retries": 2, "backoff": 0.01, **options}
    return OpenAIGenerator(fake.url(scenario), "fake-model", **settings)


def test_generate_sends_a_chat_request_with_rules_and_numbered_passages(fake: FakeOpenAI) -> None:
    gen = make(fake, api_key="sk-test")
    text = gen.generate(REQUEST)
    assert text == "The Transformer architecture was introduced in 2017. [1]"
    (sent,) = fake.requests
    assert sent["path"] == "/ok/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test"
    body = sent["body"]
    assert body["model"] == "fake-model" and body["stream"] is False
    assert body["max_tokens"] == 512 and body["temperature"] == 0.0
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert "not instructions" in system["content"] and "[1]" in system["content"]
    assert "The answer is not in the documents." in system["content"]
    assert "English" in system["content"]
    assert "[1] The Transformer architecture" in user["content"]
    assert "[2] BM25 is a ranking function" in user["content"]
    assert user["content"].rstrip().endswith("Question: When was the Transformer introduced?")


def test_chinese_question_asks_for_a_chinese_answer(fake: FakeOpenAI) -> None:
    make(fake).generate(GenerationRequest("Transformer 是哪一年提出的？", PASSAGES, "zh"))
    system = fake.requests[0]["body"]["messages"][0]["content"]
    assert "Chinese" in system and "文档中没有这个问题的答案。" in system


def test_no_api_key_sends_no_authorization_header(fake: FakeOpenAI) -> None:
    make(fake).generate(REQUEST)
    assert "Authorization" not in fake.requests[0]["headers"]


def test_stream_yields_pieces_until_done(fake: FakeOpenAI) -> None:
    pieces = list(make(fake).stream(REQUEST))
    assert len(pieces) > 3
    assert "".join(pieces) == "The Transformer architecture was introduced in 2017. [1]"
    assert fake.requests[0]["body"]["stream"] is True
    assert fake.requests[0]["headers"]["Accept"] == "text/event-stream"


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, ["HTTP 401", "check the API key", "RAG_API_KEY_OPENAI"]), (403, ["HTTP 403", "API key"])],
)
def test_auth_failure_names_url_status_and_key(fake: FakeOpenAI, status: int, words: list[str]) -> None:
    gen = make(fake, f"status-{status}")
    with pytest.raises(GeneratorError) as info:
        gen.generate(REQUEST)
    message = str(info.value)
    assert fake.url(f"status-{status}") + "/chat/completions" in message
    assert all(w in message for w in words), message
    assert f"fake failure {status}" in message
    assert fake.count(f"status-{status}") == 1  # not retried


def test_not_found_suggests_base_url_and_model(fake: FakeOpenAI) -> None:
    with pytest.raises(GeneratorError, match=r"HTTP 404.*--base-url.*/v1.*'fake-model'"):
        make(fake, "status-404").generate(REQUEST)


def test_bad_request_is_not_retried_and_shows_the_server_message(fake: FakeOpenAI) -> None:
    with pytest.raises(GeneratorError, match="HTTP 400: fake failure 400"):
        list(make(fake, "status-400").stream(REQUEST))
    assert fake.count("status-400") == 1


def test_server_errors_are_retried_then_reported(fake: FakeOpenAI) -> None:
    with pytest.raises(GeneratorError, match=r"HTTP 500: fake failure 500 \(after 3 attempts\)"):
        make(fake, "status-500", max_retries=2).generate(REQUEST)
    assert fake.count("status-500") == 3


def test_flaky_server_succeeds_after_retries(fake: FakeOpenAI) -> None:
    assert make(fake, "flaky-2", max_retries=2).generate(REQUEST).endswith("[1]")
    assert fake.count("flaky-2") == 3


def test_flaky_stream_is_retried_before_the_first_byte(fake: FakeOpenAI) -> None:
    assert "".join(make(fake, "flaky-1", max_retries=1).stream(REQUEST)).endswith("[1]")
    assert fake.count("flaky-1") == 2


def test_too_few_retries_for_a_flaky_server_fail(fake: FakeOpenAI) -> None:
    with pytest.raises(GeneratorError, match="HTTP 503"):
        make(fake, "flaky-3", max_retries=1).generate(REQUEST)
    assert fake.count("flaky-3") == 2


def test_rate_limit_honours_retry_after(fake: FakeOpenAI) -> None:
    gen = make(fake, "ratelimit", backoff=5.0)  # a 5 s backoff would show: Retry-After: 0 is used instead
    start = time.perf_counter()
    assert gen.generate(REQUEST).endswith("[1]")
    assert time.perf_counter() - start < 2.0
    assert fake.count("ratelimit") == 2


def test_backoff_grows_exponentially(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("rag.answer.generators.openai.time.sleep", slept.append)
    with pytest.raises(GeneratorError):
        make(fake, "status-502", max_retries=3, backoff=0.5).generate(REQUEST)
    assert slept == [0.5, 1.0, 2.0]


def test_slow_server_times_out_with_a_clear_message(fake: FakeOpenAI) -> None:
    start = time.perf_counter()
    with pytest.raises(GeneratorError, match=r"timed out after 0.2 s.*--timeout") as info:
        make(fake, "slow", timeout=0.2, max_retries=0).generate(REQUEST)
    assert time.perf_counter() - start < 0.7
    assert "/slow/v1/chat/completions" in str(info.value)


def test_timeouts_are_retried(fake: FakeOpenAI) -> None:
    with pytest.raises(GeneratorError, match=r"timed out .*\(after 2 attempts\)"):
        make(fake, "slow", timeout=0.2, max_retries=1).generate(REQUEST)
    assert fake.count("slow") == 2


def test_stream_that_stalls_raises(fake: FakeOpenAI) -> None:
    pieces: list[str] = []
    with pytest.raises(GeneratorError, match=r"stalled: no data for 0\.2 s"):
        pieces.extend(make(fake, "stall", timeout=0.2, max_retries=0).stream(REQUEST))
    assert pieces == ["The "]  # what arrived before the stall was passed on


def test_error_event_in_stream_raises(fake: FakeOpenAI) -> None:
    with pytest.raises(GeneratorError, match="error mid-stream: model crashed"):
        list(make(fake, "stream-error").stream(REQUEST))


def test_non_json_answer_is_reported(fake: FakeOpenAI) -> None:
    with pytest.raises(GeneratorError, match=r"unexpected answer from .*not a chat completion.*not json"):
        make(fake, "garbage").generate(REQUEST)


def test_unreachable_server_is_retried_and_named() -> None:
    fake = FakeOpenAI().start()
    url = fake.url()
    fake.stop()  # nothing listens on the port any more
    gen = OpenAIGenerator(url, "m", timeout=1.0, max_retries=1, backoff=0.01)
    with pytest.raises(
        GeneratorError, match=r"cannot reach http://127\.0\.0\.1:\d+/ok/v1/chat/completions.*2 attempts"
    ):
        gen.generate(REQUEST)


def test_rewrite_question_asks_for_a_standalone_question(fake: FakeOpenAI) -> None:
    fake.reply = lambda body: "When was the Transformer architecture introduced?"
    gen = make(fake)
    rewritten = gen.rewrite_question("When was it introduced?", [("What is the Transformer?", "An architecture [1].")])
    assert rewritten == "When was the Transformer architecture introduced?"
    system, user = fake.requests[0]["body"]["messages"]
    assert "standalone" in system["content"]
    assert "User: What is the Transformer?" in user["content"]
    assert "Follow-up question: When was it introduced?" in user["content"]


# --- configuration ------------------------------------------------------------------------------


def test_registry_builds_the_openai_backend_from_settings(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("RAG_API_KEY_OPENAI", "sk-from-env")
    config = RagConfig(generator="openai", base_url=fake.url(), llm_model="fake-model", request_timeout=3.0)
    gen = create_generator(config.answer)
    assert isinstance(gen, OpenAIGenerator)
    assert gen.name == "openai:fake-model"
    assert grounding_mode(gen) == "check"
    assert grounding_mode(gen, "snap") == "snap"
    gen.generate(REQUEST)
    assert fake.requests[0]["headers"]["Authorization"] == "Bearer sk-from-env"


def test_openai_key_falls_back_to_openai_api_key(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_API_KEY_OPENAI", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    create_generator(RagConfig(generator="openai", base_url=fake.url(), llm_model="m").answer).generate(REQUEST)
    assert fake.requests[0]["headers"]["Authorization"] == "Bearer sk-openai"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"llm_model": "m"}, "--base-url"),
        ({"base_url": "localhost:11434/v1", "llm_model": "m"}, "not an http"),
        ({"base_url": "http://localhost:11434/v1"}, "--model NAME"),
    ],
)
def test_missing_settings_are_config_errors(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_generator(RagConfig(generator="openai", **settings).answer)


def test_new_settings_are_validated_and_read_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_REQUEST_TIMEOUT", "2.5")
    monkeypatch.setenv("RAG_MAX_RETRIES", "4")
    monkeypatch.setenv("RAG_BASE_URL", "http://127.0.0.1:9/v1")
    config = RagConfig.load()
    assert config.request_timeout == 2.5 and config.max_retries == 4 and config.base_url == "http://127.0.0.1:9/v1"
    for bad in ({"request_timeout": 0}, {"max_retries": -1}, {"grounding": "maybe"}, {"context_tokens": -5}):
        with pytest.raises(ConfigError):
            RagConfig(**bad)  # type: ignore[arg-type]


def test_chat_url_accepts_root_or_endpoint() -> None:
    assert chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"


def test_prompt_is_cut_to_the_context_budget(fake: FakeOpenAI) -> None:
    long_passages = [("alpha " * 300).strip(), ("beta " * 300).strip(), ("gamma " * 300).strip()]
    gen = make(fake, context_tokens=1200)
    prepared = gen.prepare(GenerationRequest("What is alpha?", long_passages, "en", max_new_tokens=200))
    assert prepared.max_new_tokens == 200
    assert prepared.passages[0] == long_passages[0]
    assert 1 <= len(prepared.passages) <= 2
    assert all(long.startswith(p) for p, long in zip(prepared.passages, long_passages, strict=False))
    gen.generate(GenerationRequest("What is alpha?", long_passages, "en", max_new_tokens=200))
    user = fake.requests[0]["body"]["messages"][1]["content"]
    assert "gamma" not in user and user.endswith("Question: What is alpha?")
