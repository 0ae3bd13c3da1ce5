"""The query-vector cache: one embedding per (model, question), LRU-bounded, primed in batches."""

from __future__ import annotations

import numpy as np

from rag.retrieve.cache import QueryCache
from rag.testing import HashEmbedder


class Counting(HashEmbedder):
    def __init__(self, dimension: int = 256) -> None:
        super().__init__(dimension)
        self.single = 0
        self.batches: list[int] = []

    def embed_query(self, text: str) -> np.ndarray:
        self.single += 1
        return super().embed_query(text)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.batches.append(len(texts))
        return super().embed_queries(texts)


def test_a_repeated_question_skips_the_model_and_models_do_not_share_entries() -> None:
    cache = QueryCache(size=8)
    a, b = Counting(), Counting(dimension=64)
    first = cache.vector(a, "what is bm25")
    assert np.array_equal(cache.vector(a, "what is bm25"), first) and a.single == 1
    assert cache.vector(b, "what is bm25").shape == (64,) and b.single == 1


def test_the_oldest_entry_is_evicted() -> None:
    cache = QueryCache(size=2)
    model = Counting()
    for q in ("one", "two", "one", "three"):  # "one" was used again, so "two" is the oldest
        cache.vector(model, q)
    assert len(cache) == 2 and model.single == 3
    cache.vector(model, "one")
    assert model.single == 3
    cache.vector(model, "two")
    assert model.single == 4


def test_prime_embeds_only_new_questions_in_batches() -> None:
    cache = QueryCache(size=100)
    model = Counting()
    cache.vector(model, "q0")
    model.batches.clear()
    cache.prime(model, [f"q{i}" for i in range(10)] + ["q3"], batch_size=4)
    assert model.batches == [4, 4, 1]  # q1..q9, deduplicated, q0 already cached
    cache.vector(model, "q7")
    assert model.single == 1
