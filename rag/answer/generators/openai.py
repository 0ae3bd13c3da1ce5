"""The ``openai`` backend: any OpenAI-compatible chat-completions server (Ollama, vLLM, llama.cpp server, LM Studio,
a hosted API) over httpx.

``--generator openai --base-url URL --model NAME``; the API key comes from ``RAG_API_KEY_OPENAI`` or
``OPENAI_API_KEY`` (never from rag.toml). Non-streaming and streaming (server-sent events: ``data:`` lines,
ended by ``data: [DONE]``) requests, a timeout per request, and retries with exponential backoff (or the
server's ``Retry-After``) on 429, 5xx and connection errors. A streamed answer is retried only until its
first byte arrives. Failures raise ``GeneratorError`` with the URL, the HTTP status and what to check.

A capable model writes its own sentences, so its answers are kept as written and their citations checked
(grounding mode ``check``), not snapped to passage text.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from rag.answer.generators.base import GenerationRequest, Generator
from rag.answer.prompting import approx_tokens, chat_messages, fit_passages, render_chat
from rag.errors import ConfigError, GeneratorError

if TYPE_CHECKING:
    import httpx

    from rag.config import AnswerSettings

log = logging.getLogger(__name__)

API_KEY_VARIABLES = ("RAG_API_KEY_OPENAI", "OPENAI_API_KEY")
DEFAULT_CONTEXT_TOKENS = 8192
DEFAULT_MAX_NEW_TOKENS = 512
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_STREAM_CHARS_PER_TOKEN = 32  # a stream longer than this many characters per requested token is cut off

REWRITE_SYSTEM = (
    "You rewrite follow-up questions. Given a conversation and a follow-up question, write one standalone "
    "question that means the same and can be understood without the conversation. Keep the language of the "
    "follow-up question. Do not answer it. Reply with the question only."
)
MAX_HISTORY_TURNS = 4
MAX_TURN_CHARS = 600

T = TypeVar("T")


class _Retryable(Exception):
    """A failure worth another attempt; ``error`` is what is raised when attempts run out."""

    def __init__(self, error: GeneratorError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def api_key_from_env() -> str | None:
    for name in API_KEY_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return None


def chat_url(base_url: str) -> str:
    """The chat-completions endpoint under ``base_url`` (given either as the API root or the endpoint itself)."""
    base = base_url.strip().rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


class OpenAIGenerator(Generator):
    """Chat completions over HTTP. Constructing is cheap; the HTTP client opens on the first request."""

    grounding_mode = "check"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        temperature: float = 0.0,
        context_tokens: int = 0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        if not base_url:
            raise ConfigError(
                "the openai generator needs the server's address: --base-url URL (or base_url in rag.toml, "
                "RAG_BASE_URL), e.g. http://localhost:11434/v1 for Ollama or http://localhost:8000/v1 for vLLM"
            )
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigError(f"base_url={base_url!r} is not an http(s) URL, e.g. http://localhost:11434/v1")
        if not model:
            raise ConfigError("the openai generator needs a model name: --model NAME (or llm_model, RAG_LLM_MODEL)")
        self.url = chat_url(base_url)
        self.model = model
        self._api_key = api_key
        self._timeout = timeout
        self._max_retries = max_retries
        self._temperature = temperature
        self._context_tokens = context_tokens or DEFAULT_CONTEXT_TOKENS
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, config: AnswerSettings) -> OpenAIGenerator:
        return cls(
            config.base_url,
            config.llm_model,
            api_key=api_key_from_env(),
            timeout=config.request_timeout,
            max_retries=config.max_retries,
            temperature=config.temperature,
            context_tokens=config.context_tokens,
        )

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    # -- prompts ----------------------------------------------------------------------------------
    def fit(self, request: GenerationRequest) -> GenerationRequest:
        """Default answer length filled in; passages cut (lowest rank first) to fit the context budget."""
        max_new = request.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        passages = fit_passages(
            request.passages,
            lambda kept: render_chat(chat_messages(request.question, kept, request.language)),
            approx_tokens,
            budget=self._context_tokens - max_new - 16,
        )
        return replace(request, passages=passages, max_new_tokens=max_new)

    def messages(self, request: GenerationRequest) -> list[dict[str, str]]:
        return chat_messages(request.question, request.passages, request.language)

    def generate(self, request: GenerationRequest) -> str:
        request = self.prepare(request)
        return self.complete(self.messages(request), request.max_new_tokens)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        request = self.prepare(request)
        yield from self.complete_stream(self.messages(request), request.max_new_tokens)

    def rewrite_question(self, question: str, history: list[tuple[str, str]]) -> str:
        """A standalone version of the follow-up ``question``, written by the model (one short request)."""
        turns = []
        for user, assistant in history[-MAX_HISTORY_TURNS:]:
            turns.append(f"User: {user[:MAX_TURN_CHARS]}\nAssistant: {assistant[:MAX_TURN_CHARS]}")
        prompt = "Conversation:\n" + "\n".join(turns) + f"\n\nFollow-up question: {question}\nStandalone question:"
        messages = [{"role": "system", "content": REWRITE_SYSTEM}, {"role": "user", "content": prompt}]
        return self.complete(messages, max_tokens=96)

    # -- HTTP -------------------------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx

                host = urlsplit(self.url).hostname or ""
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self._timeout),
                    trust_env=host not in ("localhost", "127.0.0.1", "::1"),  # no proxy for a local server
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _payload(self, messages: list[dict[str, str]], max_tokens: int, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": messages,
            "temperature": self._temperature,
            "max_tokens": max_tokens,
            "stream": stream,
        }

    def chat(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        return self.complete(messages, max_new_tokens)

    def complete(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        """One non-streamed chat completion: the assistant message's text."""
        import httpx

        payload = self._payload(messages, max_tokens, stream=False)

        def attempt() -> str:
            try:
                response = self._http().post(self.url, json=payload, headers=self._headers(stream=False))
            except httpx.TimeoutException as exc:
                raise _Retryable(self._timeout_error()) from exc
            except httpx.TransportError as exc:
                raise _Retryable(self._connect_error(exc)) from exc
            self._raise_for_status(response.status_code, response.text, response.headers)
            return self._message_text(response)

        return self._with_retries(attempt)

    def complete_stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        """A streamed chat completion: the pieces of the assistant message as they arrive."""
        import httpx

        payload = self._payload(messages, max_tokens, stream=True)
        client = self._http()

        def attempt() -> httpx.Response:
            request = client.build_request("POST", self.url, json=payload, headers=self._headers(stream=True))
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise _Retryable(self._timeout_error()) from exc
            except httpx.TransportError as exc:
                raise _Retryable(self._connect_error(exc)) from exc
            if response.status_code >= 400:
                try:
                    body = response.read().decode("utf-8", "replace")
                except httpx.HTTPError:
                    body = ""
                finally:
                    response.close()
                self._raise_for_status(response.status_code, body, response.headers)
            return response

        response = self._with_retries(attempt)
        limit = max(1, max_tokens) * MAX_STREAM_CHARS_PER_TOKEN
        written = 0
        try:
            for line in response.iter_lines():
                piece = self._sse_piece(line)
                if piece is None:
                    return
                written += len(piece)
                if written > limit:
                    log.warning("stream from %s ran past %d characters; cut off", self.url, limit)
                    return
                if piece:
                    yield piece
        except httpx.TimeoutException as exc:
            raise GeneratorError(
                f"the stream from {self.url} stalled: no data for {self._timeout:g} s "
                "(raise --timeout / request_timeout)"
            ) from exc
        except httpx.TransportError as exc:
            raise GeneratorError(f"the stream from {self.url} broke off: {exc}") from exc
        finally:
            response.close()

    def _sse_piece(self, line: str) -> str | None:
        """The text carried by one server-sent-events line: '' for lines without any, None at the end."""
        line = line.strip()
        if not line.startswith("data:"):
            return ""  # blank separators, ': keep-alive' comments, 'event:' lines
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return None
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise GeneratorError(f"unreadable stream event from {self.url}: {data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            raise GeneratorError(f"unexpected stream event from {self.url}: {data[:200]!r}")
        if chunk.get("error"):
            raise GeneratorError(f"{self.url} reported an error mid-stream: {_error_detail(chunk)}")
        pieces = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str):
                pieces.append(content)
        return "".join(pieces)

    def _message_text(self, response: httpx.Response) -> str:
        try:
            body = response.json()
            content = body["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise GeneratorError(
                f"unexpected answer from {self.url} (not a chat completion): {response.text[:200]!r}"
            ) from exc
        return content if isinstance(content, str) else ""

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        tries = self._max_retries + 1
        for number in range(1, tries + 1):
            try:
                return attempt()
            except _Retryable as exc:
                if number == tries:
                    suffix = f" (after {tries} attempts)" if tries > 1 else ""
                    raise GeneratorError(str(exc.error) + suffix) from exc
                delay = exc.retry_after if exc.retry_after is not None else self._backoff * 2 ** (number - 1)
                delay = min(max(delay, 0.0), self._max_backoff)
                log.warning("%s; retrying in %.1f s (attempt %d of %d)", exc.error, delay, number + 1, tries)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _timeout_error(self) -> GeneratorError:
        return GeneratorError(
            f"the request to {self.url} timed out after {self._timeout:g} s (raise --timeout / request_timeout, "
            "or check that the server is not overloaded)"
        )

    def _connect_error(self, exc: Exception) -> GeneratorError:
        return GeneratorError(f"cannot reach {self.url}: {exc}. Is the server running, and is --base-url right?")

    def _raise_for_status(self, status: int, body: str, headers: Any) -> None:
        if status < 400:
            return
        detail = _error_detail(_json_or_none(body)) or body.strip()[:200]
        detail = f": {detail}" if detail else ""
        if status in (401, 403):
            raise GeneratorError(
                f"{self.url} refused the request (HTTP {status}): check the API key in "
                f"{' or '.join(API_KEY_VARIABLES)}{detail}"
            )
        if status == 404:
            raise GeneratorError(
                f"{self.url} answered HTTP 404: check --base-url (OpenAI-compatible APIs usually end in /v1) and "
                f"that the server has model {self.model!r}{detail}"
            )
        error = GeneratorError(f"{self.url} answered HTTP {status}{detail}")
        if status in RETRY_STATUSES:
            raise _Retryable(error, _retry_after(headers))
        raise error


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return None


def _error_detail(body: Any) -> str:
    """The message of an OpenAI-style error body ({"error": {"message": ...}} or {"error": "..."})."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    if isinstance(error, str):
        return error[:300]
    return ""


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to exponential backoff
