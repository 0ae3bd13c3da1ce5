"""Hard negatives for ``rag tune``: for each pair, a chunk the current index ranks high for its query (dense and
BM25, fused) that belongs to another document than the positive's. The very top ranks are skipped (``skip``): a
chunk of another document ranked above everything is often a second right answer, not a negative."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from rag.embed.base import Embedder
from rag.retrieve.search import rrf

if TYPE_CHECKING:
    from rag.index.folder import Snapshot
    from rag.tune.pairs import Pair

DEPTH = 30


def mine(
    snapshot: Snapshot,
    embedder: Embedder,
    pairs: list[Pair],
    docs: dict[int, str],
    *,
    skip: int = 2,
    seed: int = 0,
    batch: int = 256,
) -> list[str]:
    """One negative passage per pair (aligned with ``pairs``): a random pick among the fused top ``DEPTH`` of
    other documents after the first ``skip``; a random chunk of another document when none is found."""
    rng = random.Random(seed)
    all_ids = list(docs)
    chosen: list[int] = []
    for start in range(0, len(pairs), batch):
        part = pairs[start : start + batch]
        _, ids = snapshot.vectors.search(embedder.embed_queries([p.query for p in part]), DEPTH)
        for pair, row in zip(part, ids, strict=True):
            dense = [int(i) for i in row if i >= 0]
            lexical = [cid for cid, _ in snapshot.store.lexical_search(pair.query, DEPTH)]
            fused = [cid for cid, _ in rrf([(dense, 1.0), (lexical, 1.0)])]
            others = [cid for cid in fused if docs.get(cid, pair.doc) != pair.doc][skip:DEPTH]
            if not others:
                others = [cid for cid in rng.sample(all_ids, min(20, len(all_ids))) if docs[cid] != pair.doc]
            chosen.append(rng.choice(others) if others else -1)
    texts = snapshot.store.chunks_by_ids(c for c in set(chosen) if c >= 0)
    return [texts[c].text if c in texts else "" for c in chosen]
