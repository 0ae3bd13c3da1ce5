"""Retrieval over one index snapshot: dense (FAISS), lexical (FTS5 BM25) and their reciprocal-rank fusion."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rag.filters import Filters
from rag.types import Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from rag.index.folder import Snapshot


def rrf(rankings: list[tuple[list[int], float]], k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: score(id) = sum of weight / (k + rank) over the rankings (rank from 1)."""
    scores: dict[int, float] = {}
    for ids, weight in rankings:
        for rank, cid in enumerate(ids, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def retrieve(
    snapshot: Snapshot,
    query_vector: NDArray[np.float32],
    query: str,
    k: int,
    *,
    mode: str = "hybrid",
    rrf_k: int = 60,
    dense_weight: float = 1.0,
    lexical_weight: float = 1.0,
    filters: Filters | None = None,
    candidates: int | None = None,
) -> list[Hit]:
    """Top-k hits; ``filters`` restrict both searches before their top-k is taken, so k matching chunks
    are returned whenever k exist. ``candidates``: how many each side contributes to the fusion."""
    candidates = candidates or max(4 * k, 20)
    ranked: list[tuple[int, float]]
    dense_ids: list[int] = []
    allowed = snapshot.store.filtered_ids(filters) if filters else None
    if mode in ("dense", "hybrid"):
        scores, ids = snapshot.vectors.search(query_vector, candidates, allowed)
        dense = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        dense_ids = [i for i, _ in dense]
    if mode == "dense":
        ranked = dense
    else:
        lexical = snapshot.store.lexical_search(query, candidates, filters)
        if mode == "lexical":
            ranked = lexical
        else:
            ranked = rrf([(dense_ids, dense_weight), ([i for i, _ in lexical], lexical_weight)], k=rrf_k)
    top = ranked[:k]
    chunks = snapshot.store.chunks_by_ids(i for i, _ in top)
    similarities = _similarities(snapshot, query_vector, [i for i, _ in top])
    hits = []
    for cid, score in top:
        if cid in chunks:
            hits.append(Hit(chunk=chunks[cid], score=score, similarity=similarities[cid], rank=len(hits) + 1))
    return hits


def _similarities(snapshot: Snapshot, query_vector: NDArray[np.float32], ids: list[int]) -> dict[int, float]:
    """Cosine between the query and each chunk's stored vector (vectors are normalised)."""
    out: dict[int, float] = {}
    for cid in ids:
        try:
            vec = snapshot.vectors.reconstruct(cid)
        except RuntimeError:  # id not in the index (should not happen in a consistent index)
            out[cid] = 0.0
            continue
        out[cid] = float(np.dot(vec, query_vector))
    return out


def fuse(rankings: list[list[Hit]], k: int, rrf_k: int = 60) -> list[Hit]:
    """Hits of several searches (the question and its translation) fused by reciprocal rank; a chunk found by
    both keeps its higher similarity. Top ``k``, ranks from 1."""
    best: dict[int, Hit] = {}
    for hits in rankings:
        for hit in hits:
            key = hit.chunk.id if hit.chunk.id is not None else id(hit.chunk)
            if key not in best or hit.similarity > best[key].similarity:
                best[key] = hit
    fused = rrf(
        [([h.chunk.id if h.chunk.id is not None else id(h.chunk) for h in hits], 1.0) for hits in rankings], rrf_k
    )
    return [
        Hit(best[key].chunk, score, best[key].similarity, rank) for rank, (key, score) in enumerate(fused[:k], start=1)
    ]
