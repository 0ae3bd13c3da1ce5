"""Query vectors, cached per embedder (LRU): a repeated question skips the model; evaluations embed many
questions in batches ahead of time (``prime``)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from rag.embed.base import Embedder

QUERY_CACHE_SIZE = 4096


class QueryCache:
    """At most ``size`` (model id, question) -> vector entries; safe from several threads."""

    def __init__(self, size: int = QUERY_CACHE_SIZE) -> None:
        self.size = size
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def clear(self) -> None:
        """Forget every vector (benchmarks time new questions this way)."""
        with self._lock:
            self._vectors.clear()

    def vector(self, embedder: Embedder, question: str) -> np.ndarray:
        key = (embedder.model_id, question)
        with self._lock:
            cached = self._vectors.get(key)
            if cached is not None:
                self._vectors.move_to_end(key)
                return cached
        vector = embedder.embed_query(question)
        self._put([(key, vector)])
        return vector

    def prime(self, embedder: Embedder, questions: list[str], batch_size: int = 64) -> None:
        """Embed the questions not cached yet, in batches (at most the cache's size of them)."""
        todo = [q for q in dict.fromkeys(questions) if (embedder.model_id, q) not in self._vectors]
        todo = todo[-self.size :]
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            vectors = embedder.embed_queries(batch)
            self._put([((embedder.model_id, q), v) for q, v in zip(batch, vectors, strict=True)])

    def _put(self, items: list[tuple[tuple[str, str], np.ndarray]]) -> None:
        with self._lock:
            for key, vector in items:
                self._vectors[key] = vector
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
