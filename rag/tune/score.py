"""Held-out scores for ``rag tune``: each query's relevant documents ranked by their best chunk, dense (FAISS) and
hybrid (dense + BM25, reciprocal-rank fusion as in retrieval), nDCG@10 and Recall@10 with binary relevance (the
metrics of ``rag.evaluation``, which sits above this layer)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rag.embed.base import Embedder
from rag.retrieve.search import rrf
from rag.types import TuneScores

if TYPE_CHECKING:
    from rag.index.folder import Snapshot
    from rag.index.store import ChunkStore
    from rag.tune.pairs import Pair

DEPTH = 100  # chunks each side contributes before documents are ranked


def chunk_documents(store: ChunkStore) -> dict[int, str]:
    """Chunk id -> its document's path, for every chunk."""
    rows = store.db.execute("SELECT c.id, d.path FROM chunks c JOIN documents d ON d.id = c.doc_id").fetchall()
    return {int(cid): str(path) for cid, path in rows}


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranked[:10]) if doc in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal if ideal else 0.0


def recall_at_10(ranked: list[str], relevant: set[str]) -> float:
    return len(set(ranked[:10]) & relevant) / len(relevant) if relevant else 0.0


def grouped(pairs: list[Pair]) -> dict[str, set[str]]:
    """Query -> its relevant documents (a BEIR query may have several)."""
    out: dict[str, set[str]] = {}
    for p in pairs:
        if p.doc:
            out.setdefault(p.query, set()).add(p.doc)
    return out


def score(snapshot: Snapshot, embedder: Embedder, pairs: list[Pair], rrf_k: int = 60) -> TuneScores:
    """Dense and hybrid nDCG@10 / Recall@10 of ``pairs`` over ``snapshot`` (its vectors made by ``embedder``)."""
    queries = grouped(pairs)
    if not queries:
        return TuneScores(0.0, 0.0, 0.0, 0.0, 0)
    docs = chunk_documents(snapshot.store)
    texts = list(queries)
    _, ids = snapshot.vectors.search(embedder.embed_queries(texts), DEPTH)
    totals = [0.0, 0.0, 0.0, 0.0]
    for row, text in zip(ids, texts, strict=True):
        relevant = queries[text]
        dense = [int(i) for i in row if i >= 0]
        lexical = [cid for cid, _ in snapshot.store.lexical_search(text, DEPTH)]
        hybrid = [cid for cid, _ in rrf([(dense, 1.0), (lexical, 1.0)], k=rrf_k)]
        for n, ranking in ((0, dense), (2, hybrid)):
            ranked = list(dict.fromkeys(docs[c] for c in ranking if c in docs))
            totals[n] += ndcg_at_10(ranked, relevant)
            totals[n + 1] += recall_at_10(ranked, relevant)
    n = len(texts)
    return TuneScores(totals[0] / n, totals[1] / n, totals[2] / n, totals[3] / n, n)
