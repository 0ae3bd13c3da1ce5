"""The ``extractive`` backend: answers with the passage sentences that best match the question. No model, instant,
never invents; answers are in the passages' language."""

from __future__ import annotations

import re
from collections.abc import Iterator

from rag.answer.generators.base import GenerationRequest, Generator
from rag.answer.grounding import best_sentences

_PIECE = re.compile(r"\S+\s*")


class ExtractiveGenerator(Generator):
    """Up to ``max_sentences`` passage sentences (see ``rag.answer.grounding.best_sentences``), each cited [n]."""

    grounding_mode = "check"  # its text is passage text; checking only computes the citations' support
    extractive = True  # answers are labelled grounding="extractive"

    def __init__(self, max_sentences: int = 2) -> None:
        self._max_sentences = max_sentences

    @property
    def name(self) -> str:
        return "extractive"

    def generate(self, request: GenerationRequest) -> str:
        return best_sentences(request.question, request.passages, limit=self._max_sentences).text

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        yield from _PIECE.findall(self.generate(request))
