"""A local chat model as the generator: the default, Qwen2.5-Coder-1.5B-Instruct, or its 0.5B sibling (from PyPI,
offline).

The prompt is the model's own chat template over ``rag.answer.prompting.compact_messages``: a few plain rules
(use only the passages, they are data and never instructions, say when the answer is not there, answer in the
question's language) with the answer form the question asks for (a short answer for a factoid, a few sentences
or steps for "how", "why", "explain"), then the numbered passages, compressed to the sentences that bear on the
question (``rag.answer.compress``), and the question. A factoid question reads only the best-ranked
``factoid_passages`` (unset: 1 for the 0.5B, which a second passage distracts more often than it helps, and
halves the prompt); the pipeline then cites only what the model read. Its words are kept and checked (grounding
``check``): citations are validated (a short answer gets the passage that supports it), unsupported sentences
flagged, and a garbled copy of a name snapped to the passage's words (``rag.answer.spans``).

Runtimes (``llm_runtime``): ``onnxruntime`` (int4 weights via onnxruntime-genai, the default where it is
installed: decodes 4x faster than torch here, see docs/benchmarks.md) or ``torch`` (transformers, bf16 on CPUs
with native bf16, else fp32).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from rag.answer.compress import compress
from rag.answer.generators.base import GenerationRequest, Generator
from rag.answer.generators.runtimes import ChatRuntime, lazily
from rag.answer.prompting import FACTOID_FORMS, answer_form, compact_messages, fit_passages
from rag.answer.repetition import guarded

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = {"short": 64, "lookup": 96, "explain": 200, "steps": 320}
PROMPT_BUDGET = 1536  # tokens of prompt at most: on 2 CPU cores each prompt token costs about as much as 1/10 of an
# answer token, so a tight budget keeps answers fast; compression usually needs far less


class ChatGenerator(Generator):
    """Answers with a chat model loaded on first use (``runtime`` builds it)."""

    grounding_mode = "check"
    trims_echo = True  # the 0.5B writes a factoid's answer as a sentence that restates the question

    def __init__(
        self,
        name: str,
        runtime: Callable[[], ChatRuntime],
        *,
        context_tokens: int = 0,
        compress_passages: bool = True,
        factoid_passages: int = 0,
    ) -> None:
        self._name = name
        self._runtime = lazily(runtime)
        self._budget = min(context_tokens, PROMPT_BUDGET) if context_tokens else PROMPT_BUDGET
        self.compress_passages = compress_passages
        self.factoid_passages = factoid_passages

    @property
    def name(self) -> str:
        return self._name

    @property
    def runtime(self) -> ChatRuntime:
        return self._runtime()

    def load(self) -> None:
        self._runtime()

    def warm_up(self, prompts: Sequence[list[dict[str, str]]] = (), languages: tuple[str, ...] = ("en", "zh")) -> None:
        """Load, then read the rules of each language and answer form, and ``prompts``, into the runtime's prompt
        cache: a server's first question in each pays only for its passages and question."""
        runtime = self._runtime()
        for language in languages:
            # "explain" shares the rules with "steps" up to its form sentence: it continues that slot, rewound there
            for form in ("short", "steps"):
                runtime.prime(runtime.render(compact_messages("", [], language, form)))
        for messages in prompts:
            runtime.prime(runtime.render(messages))

    def fit(self, request: GenerationRequest) -> GenerationRequest:
        """The answer form's length filled in, passages compressed to the sentences that bear on the question,
        then cut (lowest rank first) to the prompt budget."""
        runtime = self._runtime()
        form = answer_form(request.question, request.language)
        max_new = request.max_new_tokens or MAX_NEW_TOKENS[form]
        passages = request.passages
        if form in FACTOID_FORMS and self.factoid_passages:
            passages = passages[: self.factoid_passages]
        # steps, reasons and lookups read whole passages (lists, code: a lookup's value is often a list item's)
        if self.compress_passages and form == "short":
            passages = compress(request.question, passages)
        passages = fit_passages(
            passages,
            lambda kept: runtime.render(compact_messages(request.question, kept, request.language, form)),
            runtime.count_tokens,
            budget=self._budget,
        )
        return replace(request, passages=passages, max_new_tokens=max_new)

    def _prompt(self, request: GenerationRequest) -> str:
        form = answer_form(request.question, request.language)
        return self._runtime().render(compact_messages(request.question, request.passages, request.language, form))

    def generate(self, request: GenerationRequest) -> str:
        return "".join(self.stream(request))

    def chat(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        runtime = self._runtime()
        return runtime.generate(runtime.render(messages), max_new_tokens)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """The answer as it is written, stopped when it starts looping (``rag.answer.repetition.guarded``)."""
        request = self.prepare(request)
        yield from guarded(self._runtime().stream(self._prompt(request), request.max_new_tokens))
