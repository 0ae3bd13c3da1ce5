"""Fakes for fast unit tests: a hashing embedder and an echo generator. Not for real use."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from rag.text.lexical import tokenize

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rag.answer.generators.local import GenerationRequest


class HashEmbedder:
    """Bag of words hashed into ``dimension`` buckets (signed), L2-normalised. Deterministic and instant."""

    def __init__(self, dimension: int = 256) -> None:
        self._dimension = dimension

    @property
    def model_id(self) -> str:
        return f"hash:{self._dimension}"

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

    def embed_query(self, text: str) -> NDArray[np.float32]:
        return self._vector(text)

    def embed_queries(self, texts: list[str]) -> NDArray[np.float32]:
        return self.embed_documents(texts)


class EchoGenerator:
    """Answers with the first sentence of passage 1, cited as [1]."""

    @property
    def name(self) -> str:
        return "echo"

    def supports_language(self, language: str) -> bool:
        return True

    def generate(self, request: GenerationRequest) -> str:
        from rag.answer.grounding import split_sentences

        if not request.passages:
            return ""
        return split_sentences(request.passages[0])[0] + " [1]"

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        for word in self.generate(request).split(" "):
            yield word + " "
