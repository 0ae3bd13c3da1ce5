"""Optional cross-encoder reranking of the fused candidates (any local folder or hub id).

No reranker weights ship on PyPI, so there is no default: ``--rerank MODEL`` names one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from rag.errors import ModelLoadError
from rag.models.locations import model_location
from rag.types import Hit

log = logging.getLogger(__name__)


class CrossEncoderReranker:
    """Scores (question, passage) pairs with a sentence-transformers CrossEncoder and re-sorts hits."""

    def __init__(self, spec: str, batch_size: int = 32) -> None:
        self.spec = spec
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                try:
                    where = model_location(self.spec)
                    self._model = CrossEncoder(where.path, device="cpu", **where.kwargs())
                except Exception as exc:
                    raise ModelLoadError(
                        f"could not load reranker {self.spec!r}: {exc}. Name a local cross-encoder folder "
                        "(hub ids need a network)"
                    ) from exc
            return self._model

    def rerank(self, question: str, hits: list[Hit], k: int) -> list[Hit]:
        """The best ``k`` of ``hits`` by cross-encoder score (``score`` becomes that score)."""
        if not hits:
            return []
        scores = self._load().predict(
            [(question, h.chunk.indexed) for h in hits], batch_size=self.batch_size, show_progress_bar=False
        )
        order = sorted(range(len(hits)), key=lambda i: -float(scores[i]))[:k]
        return [dataclasses.replace(hits[i], score=float(scores[i]), rank=r) for r, i in enumerate(order, start=1)]
