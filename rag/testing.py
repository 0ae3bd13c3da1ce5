"""Fakes for fast unit tests: a hashing embedder and an echo generator. Not for real use.

Pass them to ``RagPipeline(config, embedder=HashEmbedder(), generator=EchoGenerator())`` as objects; a CLI or a
subprocess names them by class path (``RAG_EMBEDDER=rag.testing:HashEmbedder``,
``RAG_GENERATOR=rag.testing:EchoGenerator``), like any backend that lives outside rag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from rag.answer.generators.base import GenerationRequest, Generator
from rag.embed.base import Embedder
from rag.text.lexical import tokenize
from rag.text.sentences import split_sentences

if TYPE_CHECKING:
    from numpy.typing import NDArray

HASH_EMBEDDER = "rag.testing:HashEmbedder"


class HashEmbedder(Embedder):
    """Bag of words hashed into ``dimension`` buckets (signed), L2-normalised. Deterministic and instant.

    Its ``model_id`` is its class path (with the dimension when it is not 256), so an index it built reopens
    with ``embedder=rag.testing:HashEmbedder``."""

    def __init__(self, dimension: int = 256) -> None:
        self._dimension = dimension

    @property
    def model_id(self) -> str:
        return HASH_EMBEDDER if self._dimension == 256 else f"{HASH_EMBEDDER}/{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return 10_000

    def default_min_score(self, language: str) -> float:
        return 0.1

    def count_tokens(self, text: str) -> int:
        return len(tokenize(text))

    def _vector(self, text: str) -> NDArray[np.float32]:
        vec = np.zeros(self._dimension, dtype=np.float32)
        for token in tokenize(text):
            digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self._dimension
            vec[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def embed_documents(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)


class EchoGenerator(Generator):
    """Answers with the first sentence of passage 1 (a heading line skipped), cited as [1]."""

    @property
    def name(self) -> str:
        return "echo"

    def generate(self, request: GenerationRequest) -> str:
        if not request.passages:
            return ""
        passage = request.passages[0]
        lines = passage.splitlines()
        if lines and lines[0].startswith("(") and lines[0].endswith(")"):  # the heading path (``turn.reading``)
            lines = lines[1:]
        body = "\n".join(line for line in lines if not line.lstrip().startswith("#"))  # heading lines
        return split_sentences(body.strip() or passage)[0] + " [1]"

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        for word in self.generate(request).split(" "):
            yield word + " "
