"""What every embedder is: passages and queries in, L2-normalised float32 vectors out (inner product = cosine).

Batch-first: a backend implements ``embed_documents`` (and ``embed_queries`` when queries are embedded
differently, as E5's "query:" prefix); single-item wrappers come from the base class, as do the defaults of the
optional members (``max_tokens``, ``default_min_score``, ``load``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


class Embedder(ABC):
    """Turns passages and queries into normalised vectors."""

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Stable identity recorded in the index manifest (the spec that recreates this embedder)."""

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input (in the model's tokens, special tokens excluded) that is embedded whole."""
        return 512

    def default_min_score(self, language: str) -> float:
        """Cosine similarity under which a passage is treated as not relevant to a question in ``language``
        (calibrated per model: similarity levels differ between models and between query scripts)."""
        return 0.35

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abstractmethod
    def embed_documents(self, texts: list[str]) -> NDArray[np.float32]: ...

    def embed_queries(self, texts: list[str]) -> NDArray[np.float32]:
        """Many queries at once (much faster than one by one)."""
        return self.embed_documents(texts)

    def embed_query(self, text: str) -> NDArray[np.float32]:
        return self.embed_queries([text])[0]

    def load(self) -> None:
        """Load the weights now rather than on first use (a no-op when there are none)."""
        return None

    def trainable(self) -> Any | None:
        """A fresh float32 ``sentence_transformers.SentenceTransformer`` copy of this model that ``rag tune`` may
        train (the embedder itself is untouched), or None when this backend has none (a quantized C engine, a
        fake). A copy must embed as this embedder does (same prefixes or prompts) so tuned vectors are comparable."""
        return None

    def untrainable_reason(self) -> str:
        """Why ``trainable`` is None, for the error ``rag tune`` prints."""
        return f"the embedder {self.model_id!r} has no trainable copy"


def normalise(vectors: Any) -> NDArray[np.float32]:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(arr / norms, dtype=np.float32)
