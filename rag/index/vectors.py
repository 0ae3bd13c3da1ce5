"""The vector side: FAISS inner-product search over normalised vectors, keyed by stable int64 chunk ids.

Three index types, chosen by size (``auto``) or by ``--index-type``:

- ``flat``: exact search (``IndexIDMap2(IndexFlatIP)``). The default below ``IVF_THRESHOLD`` vectors.
- ``ivf``: ``IndexIVFFlat`` with a hash-table direct map, so ids stay stable and deletes are cheap. The default
  from ``IVF_THRESHOLD`` vectors up. ``nlist`` grows with the square root of the size; ``nprobe`` is tuned
  at build time (see ``VectorIndex.tune``: recall@10 against exact search of ``TARGET_RECALL`` on question-like
  queries, then raised by half); both are saved in the FAISS file. Rebuilt when the index has grown 4x since
  training.
- ``hnsw``: ``IndexIDMap2(IndexHNSWFlat)``, M=32, ``efSearch`` tuned like ``nprobe``. FAISS's HNSW cannot
  delete, so a delete rebuilds the graph from the remaining vectors (once per commit): fine for corpora that
  rarely lose documents, slow for big ones that do. Not used by ``auto`` for that reason.

The saved file is always a CPU index; a GPU copy is made for searching when faiss reports GPUs (faiss-gpu
builds; flat and ivf only). ``VectorStore`` is the interface the pipeline needs: an implementation over a
distributed vector database (Milvus, Qdrant, pgvector, ...) would implement it and be chosen by the manifest's
``index_type``; see docs/speed-and-scale.md (When one FAISS index no longer fits).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from rag.config import INDEX_TYPES
from rag.index.tuning import TARGET_RECALL as TARGET_RECALL
from rag.index.tuning import tune

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

IVF_THRESHOLD = 100_000  # auto: exact search below this many vectors, IVF from here up
EXACT_FILTER_MAX = 50_000  # filtered searches over at most this many allowed ids are exact on any index type
HNSW_M = 32
_RETRAIN_GROWTH = 4  # ivf: retrain the coarse quantizer once the index is this many times its training size


@runtime_checkable
class VectorStore(Protocol):
    """What the pipeline needs of the vector side (FAISS here; a remote vector database could implement it)."""

    dimension: int

    @property
    def kind(self) -> str: ...

    def __len__(self) -> int: ...

    def ids(self) -> NDArray[np.int64]: ...

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None: ...

    def remove(self, ids: NDArray[np.int64] | list[int]) -> int: ...

    def search(
        self, queries: NDArray[np.float32], k: int, allowed: list[int] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]: ...

    def reconstruct(self, chunk_id: int) -> NDArray[np.float32]: ...

    def save(self, path: Path) -> None: ...


def gpu_count() -> int:
    """Number of GPUs faiss can use (0 for faiss-cpu builds)."""
    import faiss

    get = getattr(faiss, "get_num_gpus", None)
    try:
        return int(get()) if get is not None else 0
    except Exception:  # noqa: BLE001 - a broken GPU runtime means: no GPU
        return 0


def choose_kind(requested: str, n: int, current: str = "flat") -> str:
    """The index type for ``n`` vectors: ``requested`` unless it is ``auto``. ``auto`` moves to ivf at
    ``IVF_THRESHOLD`` and back to flat only under half of it (no rebuild back and forth around the line)."""
    if requested not in INDEX_TYPES:
        raise ValueError(f"index type {requested!r}; choose one of {', '.join(INDEX_TYPES)}")
    if requested != "auto":
        return requested
    if current == "ivf" and n >= IVF_THRESHOLD // 2:
        return "ivf"
    return "ivf" if n >= IVF_THRESHOLD else "flat"


def needs_rebuild(vectors: VectorIndex, kind: str, trained_on: int) -> bool:
    """True when ``vectors`` must be rebuilt as ``kind``: another type, or an IVF that has outgrown its
    training (``_RETRAIN_GROWTH`` times the vectors its quantizer was trained on)."""
    if kind == "ivf" and len(vectors) < 39:
        return vectors.kind != "flat"  # too small to train: kept exact until it grows
    if kind != vectors.kind:
        return True
    return kind == "ivf" and len(vectors) > _RETRAIN_GROWTH * max(trained_on, 39)


def ivf_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: 2*sqrt(n), at least 16, and at least 39 vectors per list to train."""
    return max(1, min(max(16, int(2 * math.sqrt(n))), n // 39))


class VectorIndex:
    """Inner-product index keyed by chunk ids. ``remove`` deletes ids; ids are never renumbered."""

    def __init__(self, dimension: int, index: Any = None) -> None:
        import faiss

        self.dimension = dimension
        self._cpu = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._gpu: Any = None
        self._dead: set[int] = set()  # hnsw: ids removed but still in the graph until the next rebuild

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        import faiss

        index = faiss.read_index(str(path))
        return cls(index.d, index)

    @classmethod
    def build(
        cls, kind: str, dimension: int, ids: NDArray[np.int64], vectors: NDArray[np.float32], seed: int = 0
    ) -> VectorIndex:
        """A new index of ``kind`` holding ``vectors`` under ``ids`` (ivf/hnsw parameters tuned on them)."""
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids)
        _set_omp_threads(0)
        if kind == "flat" or (kind == "ivf" and n < 39):  # too few vectors to train a quantizer
            out = cls(dimension)
            out.add(ids, vectors)
            return out
        if kind == "ivf":
            nlist = ivf_nlist(n)
            index = faiss.index_factory(dimension, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(seed)
            sample = vectors if n <= 64 * nlist else vectors[np.sort(rng.choice(n, 64 * nlist, replace=False))]
            index.cp.max_points_per_centroid = 64
            index.cp.niter = 12
            index.cp.seed = seed
            log.info("training IVF%d on %d of %d vectors", nlist, len(sample), n)
            index.train(sample)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
            index.add_with_ids(vectors, ids)
            out = cls(dimension, index)
        elif kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 80
            index = faiss.IndexIDMap2(hnsw)
            log.info("building HNSW%d over %d vectors", HNSW_M, n)
            index.add_with_ids(vectors, ids)
            out = cls(dimension, index)
        else:
            raise ValueError(f"index type {kind!r}; choose flat, ivf or hnsw")
        out.tune(vectors, ids, seed=seed)
        return out

    def converted(self, kind: str) -> VectorIndex:
        """The same vectors and ids in a new index of ``kind`` (also used to retrain or compact)."""
        ids = self.ids()
        vectors = self.vectors_of(ids) if len(ids) else np.zeros((0, self.dimension), np.float32)
        return VectorIndex.build(kind, self.dimension, ids, vectors)

    # -- facts ---------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        import faiss

        if isinstance(faiss.downcast_index(self._cpu), faiss.IndexIVF):
            return "ivf"
        inner = faiss.downcast_index(self._cpu.index) if hasattr(self._cpu, "index") else None
        return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"

    def _ivf(self) -> Any:
        import faiss

        return faiss.downcast_index(self._cpu)

    def _hnsw(self) -> Any:
        import faiss

        return faiss.downcast_index(self._cpu.index)

    def params(self) -> dict[str, int]:
        """The search parameters in effect (recorded in the manifest for `rag info`)."""
        kind = self.kind
        if kind == "ivf":
            ivf = self._ivf()
            return {"nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe)}
        if kind == "hnsw":
            h = self._hnsw().hnsw
            return {"M": HNSW_M, "efSearch": int(h.efSearch), "efConstruction": int(h.efConstruction)}
        return {}

    def __len__(self) -> int:
        self._settle()
        return int(self._cpu.ntotal)

    def ids(self) -> NDArray[np.int64]:
        import faiss

        self._settle()
        if self.kind != "ivf":
            return faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
        invlists = self._ivf().invlists
        parts = []
        for lst in range(invlists.nlist):
            size = invlists.list_size(lst)
            if size:
                parts.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def save(self, path: Path) -> None:
        import faiss

        self._settle()
        faiss.write_index(self._cpu, str(path))

    # -- changes -------------------------------------------------------------------------------
    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        if len(ids) == 0:
            return
        if vectors.shape != (len(ids), self.dimension):
            raise ValueError(f"vectors shape {vectors.shape} does not match {len(ids)} ids of dim {self.dimension}")
        self._cpu.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        self._gpu = None

    def remove(self, ids: NDArray[np.int64] | list[int]) -> int:
        import faiss

        arr = np.asarray(ids, dtype=np.int64)
        if arr.size == 0:
            return 0
        self._gpu = None
        if self.kind == "hnsw":  # no delete in FAISS's HNSW: rebuild without these ids when next needed
            stored = faiss.vector_to_array(self._cpu.id_map).astype(np.int64)  # not ids(): that would rebuild
            present = np.isin(arr, stored) & ~np.isin(arr, np.fromiter(self._dead, dtype=np.int64))
            self._dead.update(int(i) for i in arr[present])
            return int(present.sum())
        if self.kind == "ivf":  # the hash-table direct map takes an array selector only
            return int(self._cpu.remove_ids(faiss.IDSelectorArray(arr)))
        return int(self._cpu.remove_ids(faiss.IDSelectorBatch(arr)))

    def _settle(self) -> None:
        if not self._dead:
            return
        import faiss

        dead = np.fromiter(self._dead, dtype=np.int64)
        self._dead = set()
        all_ids = faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
        kept = ~np.isin(all_ids, dead)
        keep = all_ids[kept]
        log.info("rebuilding the HNSW graph without %d removed vectors (%d remain)", len(dead), len(keep))
        vectors = self._vectors_by_position(np.nonzero(kept)[0])
        ef = int(self._hnsw().hnsw.efSearch)
        rebuilt = VectorIndex.build("hnsw", self.dimension, keep, vectors) if len(keep) else VectorIndex(self.dimension)
        self._cpu = rebuilt._cpu
        if len(keep) and rebuilt.kind == "hnsw":
            self._hnsw().hnsw.efSearch = max(ef, int(self._hnsw().hnsw.efSearch))

    def _vectors_by_position(self, positions: NDArray[np.int64]) -> NDArray[np.float32]:
        inner = self._cpu.index
        out = np.empty((len(positions), self.dimension), dtype=np.float32)
        for row, pos in enumerate(positions):
            out[row] = inner.reconstruct(int(pos))
        return out

    # -- reading -------------------------------------------------------------------------------
    def reconstruct(self, chunk_id: int) -> NDArray[np.float32]:
        """The stored vector of ``chunk_id`` (raises RuntimeError when absent)."""
        self._settle()
        return np.asarray(self._cpu.reconstruct(int(chunk_id)), dtype=np.float32)

    def vectors_of(self, ids: NDArray[np.int64] | list[int]) -> NDArray[np.float32]:
        """The stored vectors of ``ids``, in order."""
        self._settle()
        arr = np.asarray(ids, dtype=np.int64)
        if self.kind == "flat":  # one call instead of one per id
            return np.asarray(self._cpu.reconstruct_batch(arr), dtype=np.float32).reshape(len(arr), self.dimension)
        out = np.empty((len(arr), self.dimension), dtype=np.float32)
        for row, cid in enumerate(arr):
            out[row] = self._cpu.reconstruct(int(cid))
        return out

    def _present(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The ids of ``ids`` this index holds, and their vectors (one lookup each: listing every id of a large
        index would cost more than the search)."""
        self._settle()
        found: list[int] = []
        rows: list[NDArray[np.float32]] = []
        for cid in ids:
            try:
                rows.append(self._cpu.reconstruct(int(cid)))
            except RuntimeError:  # not in the index
                continue
            found.append(int(cid))
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dimension)
        return np.asarray(found, dtype=np.int64), vectors

    def _searcher(self) -> Any:
        if self._gpu is None and len(self) > 0 and gpu_count() > 0 and self.kind != "hnsw":  # pragma: no cover
            import faiss

            try:
                self._gpu = faiss.index_cpu_to_all_gpus(self._cpu)
                log.info("searching on %d GPU(s)", gpu_count())
            except Exception as exc:  # noqa: BLE001
                log.warning("GPU index failed (%s); searching on CPU", exc)
                self._gpu = self._cpu
        return self._gpu if self._gpu is not None else self._cpu

    def search(
        self, queries: NDArray[np.float32], k: int, allowed: list[int] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-k (scores, ids) per query row, among ``allowed`` ids when given; missing slots have id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        _set_omp_threads(1 if len(queries) < 16 else 0)
        return self._search(queries, k, allowed)

    def _search(
        self, queries: NDArray[np.float32], k: int, allowed: list[int] | None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        if len(self) == 0 or k <= 0 or (allowed is not None and not allowed):
            return (np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64))
        if allowed is None:
            return self._searcher().search(queries, min(k, len(self)))
        import faiss

        k = min(k, len(allowed))
        kind = self.kind
        if kind != "flat" and len(allowed) <= EXACT_FILTER_MAX:
            return self._exact_among(queries, k, np.asarray(allowed, dtype=np.int64))
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        if kind == "ivf":  # a wide filter: scan more lists than usual so k survivors are found
            ivf = self._ivf()
            params: Any = faiss.SearchParametersIVF(sel=selector, nprobe=min(ivf.nlist, ivf.nprobe * 4))
        elif kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(k, self._hnsw().hnsw.efSearch * 4))
        else:
            params = faiss.SearchParameters(sel=selector)
        return self._cpu.search(queries, k, params=params)

    def _exact_among(
        self, queries: NDArray[np.float32], k: int, allowed: NDArray[np.int64]
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        if len(allowed) < 1000:  # a small filter may name ids this index lacks: skip those
            allowed, vectors = self._present(allowed)
            if len(allowed) == 0:
                return (np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64))
        else:
            vectors = self.vectors_of(allowed)
        scores = queries @ vectors.T
        k = min(k, len(allowed))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, top, axis=1).astype(np.float32), allowed[top]

    # -- tuning --------------------------------------------------------------------------------
    def tune(self, vectors: NDArray[np.float32], ids: NDArray[np.int64], seed: int = 0) -> float:
        """Set nprobe (ivf) or efSearch (hnsw) for ``TARGET_RECALL`` (see ``rag.index.tuning``); the recall."""
        return tune(self, vectors, ids, seed)


_omp_current = 0


def _set_omp_threads(n: int) -> None:
    """faiss's OpenMP threads: one for a few queries (a parallel region costs more than it saves there, and
    its idle threads spin against torch's), all cores (0) for batches and training."""
    global _omp_current
    want = n or (os.cpu_count() or 1)
    if want != _omp_current:
        import faiss

        faiss.omp_set_num_threads(want)
        _omp_current = want
