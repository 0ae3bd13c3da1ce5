"""VectorIndex: FAISS inner-product search over normalised vectors, with stable int64 ids (IndexIDMap2).

The saved file is always a CPU index; a GPU copy is made for searching when faiss reports GPUs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)


def gpu_count() -> int:
    """Number of GPUs faiss can use (0 for faiss-cpu builds)."""
    import faiss

    get = getattr(faiss, "get_num_gpus", None)
    try:
        return int(get()) if get is not None else 0
    except Exception:  # noqa: BLE001 - a broken GPU runtime means: no GPU
        return 0


class VectorIndex:
    """Exact inner-product index keyed by chunk ids. ``remove`` deletes ids; ids are never renumbered."""

    def __init__(self, dimension: int, index: Any = None) -> None:
        import faiss

        self.dimension = dimension
        self._cpu = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._gpu: Any = None

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        import faiss

        index = faiss.read_index(str(path))
        return cls(index.d, index)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._cpu, str(path))

    def __len__(self) -> int:
        return int(self._cpu.ntotal)

    def ids(self) -> NDArray[np.int64]:
        import faiss

        return faiss.vector_to_array(self._cpu.id_map).astype(np.int64)

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
        removed = int(self._cpu.remove_ids(faiss.IDSelectorBatch(arr)))
        self._gpu = None
        return removed

    def _searcher(self) -> Any:
        if self._gpu is None and len(self) > 0 and gpu_count() > 0:  # pragma: no cover - needs a GPU build
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
        if len(self) == 0 or k <= 0 or (allowed is not None and not allowed):
            return (np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64))
        if allowed is None:
            return self._searcher().search(queries, min(k, len(self)))
        import faiss

        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        params = faiss.SearchParameters(sel=selector)
        return self._cpu.search(queries, min(k, len(allowed)), params=params)

    def reconstruct(self, chunk_id: int) -> NDArray[np.float32]:
        """The stored vector of ``chunk_id`` (raises RuntimeError when absent)."""
        return np.asarray(self._cpu.reconstruct(int(chunk_id)), dtype=np.float32)
