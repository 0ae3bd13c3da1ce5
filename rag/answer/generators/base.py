"""What every generator is: ``GenerationRequest`` in, answer text out, and the optional capabilities a backend may
have, as members of ``Generator`` with defaults (a minimal backend implements ``name`` and ``generate``).

- ``stream``: the answer in pieces as it is written (default: the whole answer as one piece);
- ``supports_language``: whether it writes answers in a language (default: any; else answers are extractive);
- ``load``: load weights now rather than on the first question (default: nothing to load);
- ``warm_up``: what a server does before its first question: load, and read what every prompt starts with, and
  the other stages' prompts it is given (the shortening one: ``rag.answer.turn.warm_up``) (default: ``load``);
- ``fit`` (through ``prepare``): the request cut to fit the model's context (default: unchanged);
- ``chat``: one raw chat completion (``rag tune`` writes questions with it; default: None, no chat model);
- ``rewrite_question``: a standalone question for a follow-up (default: None, the deterministic rewrite is used);
- ``grounding_mode``: how the pipeline checks its answers, ``snap`` or ``check`` (see ``rag.answer.grounding``);
- ``extractive``: its text is passage text (answers are labelled ``extractive``);
- ``trims_echo``: its factoid answers restate the question (small models): ``rag.answer.echo.trim_echo`` cuts them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar


@dataclass(frozen=True)
class GenerationRequest:
    """What a generator answers: the question, the passages (rank order, numbered from 1), the language.
    ``max_new_tokens`` 0 takes the backend's default. ``prepared``: already fitted to the model's context by its
    ``prepare`` (the pipeline prepares once; ``generate`` then uses the request as it is)."""

    question: str
    passages: list[str]
    language: str
    max_new_tokens: int = 0
    prepared: bool = False


class Generator(ABC):
    """A backend that writes answers from numbered passages."""

    grounding_mode: ClassVar[str] = "snap"
    extractive: ClassVar[bool] = False
    trims_echo: ClassVar[bool] = False

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def generate(self, request: GenerationRequest) -> str: ...

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        yield self.generate(request)

    def supports_language(self, language: str) -> bool:
        return True

    def load(self) -> None:
        """Load the weights now; a no-op for backends without any."""
        return None

    def warm_up(self, prompts: Sequence[list[dict[str, str]]] = ()) -> None:
        """Get ready for the first question (the server's warm-up): by default, ``load``. ``prompts``: chat prompts
        other stages will send through ``chat`` (a backend with a prompt cache reads their common start now)."""
        self.load()

    def prepare(self, request: GenerationRequest) -> GenerationRequest:
        """The request as the model will see it: passages cut to fit its context, defaults filled in. Backends
        with a context limit override ``fit``; this wrapper makes preparing twice a no-op."""
        return request if request.prepared else replace(self.fit(request), prepared=True)

    def fit(self, request: GenerationRequest) -> GenerationRequest:
        """``request`` cut to the model's context (default: unchanged)."""
        return request

    def chat(self, messages: list[dict[str, str]], max_new_tokens: int) -> str | None:
        """The model's reply to chat ``messages`` (role/content dicts), or None when the backend has no chat model."""
        return None

    def rewrite_question(self, question: str, history: Sequence[tuple[str, str]]) -> str | None:
        """A standalone version of a follow-up ``question``, or None to use the deterministic rewrite."""
        return None
