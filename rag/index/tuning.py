"""Tuning approximate search: nprobe (IVF) and efSearch (HNSW) set to the smallest value whose recall@10 against
exact search reaches ``TARGET_RECALL`` on question-like synthetic queries, then raised by half."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

TARGET_RECALL = 0.97  # tuning target on question-like synthetic queries, before the safety factor (we state 0.95)
_SAFETY = 1.5  # nprobe / efSearch multiplier on top of the tuned value
_TUNE_QUERIES = 200


def tune(index: Any, vectors: NDArray[np.float32], ids: NDArray[np.int64], seed: int = 0) -> float:
    """Set nprobe (ivf) or efSearch (hnsw) to the smallest value whose recall@10 against exact search
    reaches ``TARGET_RECALL`` on question-like synthetic queries (see ``_tuning_queries``), then adds half:
    real questions lie far from every stored vector (top-1 cosine about 0.6-0.7 with MiniLM), where
    approximate search finds neighbours less well than near a stored vector. benchmarks/index_types.py
    checks the result against exact search with real held-out queries. Returns the tuning recall."""
    kind = index.kind
    n = len(vectors)
    if kind == "flat" or n < 2:
        return 1.0
    rng = np.random.default_rng(seed + 1)
    queries = _tuning_queries(vectors, rng)
    k = min(10, n)
    truth = ids[_exact_top_ids(vectors, queries, k)]

    def found() -> NDArray[np.int64]:
        return index._cpu.search(queries, k)[1]

    recall = 0.0
    if kind == "ivf":
        ivf = index._ivf()
        for nprobe in _ladder(ivf.nlist):
            ivf.nprobe = nprobe
            recall = _recall(found(), truth)
            if recall >= TARGET_RECALL:
                break
        ivf.nprobe = min(ivf.nlist, math.ceil(ivf.nprobe * _SAFETY))
        log.info("ivf nprobe=%d of nlist=%d: recall@10 %.3f on tuning queries", ivf.nprobe, ivf.nlist, recall)
    else:
        h = index._hnsw().hnsw
        for ef in (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024):
            h.efSearch = ef
            recall = _recall(found(), truth)
            if recall >= TARGET_RECALL:
                break
        h.efSearch = math.ceil(h.efSearch * _SAFETY)
        log.info("hnsw efSearch=%d: recall@10 %.3f on tuning queries", h.efSearch, recall)
    return recall


def _tuning_queries(vectors: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    """Stored vectors pushed away by noise drawn from the vectors' own covariance, as far as real questions lie
    from their best passage. Noise shaped like the data matters: isotropic noise in 384 dimensions is orthogonal
    to everything and leaves the neighbours unchanged. The noise grows until the median top-1 cosine of the
    queries falls to ``r + 0.6 (1 - r)``, r being the median cosine of two random vectors: 0.64 for MiniLM (real
    questions over Python's docs: 0.6-0.7), about 0.9 for E5, whose cosines are compressed."""
    n, dim = vectors.shape
    sample = vectors[rng.choice(n, size=min(n, 5000), replace=False)].astype(np.float64)
    centred = sample - sample.mean(axis=0)
    chol = np.linalg.cholesky(centred.T @ centred / len(sample) + 1e-6 * np.eye(dim))
    half = len(sample) // 2
    random_pair = float(np.median((sample[:half] * sample[half : 2 * half]).sum(axis=1)))
    target = random_pair + 0.6 * (1.0 - random_pair)
    rows = rng.choice(n, size=min(_TUNE_QUERIES, n), replace=False)
    noise = rng.standard_normal((len(rows), dim)) @ chol.T
    reference = vectors if n <= 200_000 else vectors[rng.choice(n, size=200_000, replace=False)]
    queries = vectors[rows].astype(np.float32)
    for sigma in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0):
        queries = vectors[rows] + sigma * noise
        queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        top1 = float(np.median(_exact_top_scores(reference, queries)))
        if top1 <= target:
            break
    log.debug("tuning queries: noise %.2f, median top-1 cosine %.3f (target %.3f)", sigma, top1, target)
    return queries


def _exact_top_scores(vectors: NDArray[np.float32], queries: NDArray[np.float32]) -> NDArray[np.float32]:
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    for start in range(0, len(vectors), 200_000):
        best = np.maximum(best, (queries @ vectors[start : start + 200_000].T).max(axis=1))
    return best


def _ladder(nlist: int) -> list[int]:
    steps = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
    return [s for s in steps if s < nlist] + [nlist]


def _exact_top_ids(vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int) -> NDArray[np.int64]:
    """Row positions of the exact top-k, in blocks so memory stays bounded."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), 200_000):
        block = vectors[start : start + 200_000]
        scores = queries @ block.T
        kk = min(k, len(block))
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        s = np.concatenate([best_s, np.take_along_axis(scores, part, axis=1)], axis=1)
        i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(-s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)
    return best_i


def _recall(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    hits = sum(len(set(f[f >= 0].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size
