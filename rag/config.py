"""One frozen RagConfig: defaults < rag.toml < environment (RAG_*) < explicit arguments."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

DEFAULT_INDEX = Path("indexes") / "default"
# The choices of the settings below; the embedder, the vector index and the CLI take them from here.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
EMBED_BACKENDS = ("auto", "torch", "openvino")
INDEX_TYPES = ("auto", "flat", "ivf", "hnsw")


@dataclass(frozen=True)
class RagConfig:
    """Every tunable setting of the pipeline.

    ``embedder``: ``auto`` (MiniLM for mostly-Latin corpora, multilingual E5 when at least
    ``cjk_doc_share`` of the documents are Chinese/Japanese/Korean), ``minilm``, ``e5-multilingual``,
    ``hash`` (tests), or any sentence-transformers model folder or hub id.
    ``chunk_size`` and ``chunk_overlap`` count tokens of the embedder's own tokenizer.
    ``min_score``: cosine similarity below which a passage counts as not relevant; ``None`` takes
    the embedder's calibrated default.
    ``generator``: ``smollm2``, ``extractive``, ``openai`` (with ``base_url``, ``llm_model``, ``request_timeout``,
    ``max_retries``; the API key comes from $RAG_API_KEY_OPENAI or $OPENAI_API_KEY), or a local model folder.
    ``grounding``: how answers are checked (``auto``: the backend's own mode; see ``rag.answer.grounding``).
    """

    index: Path = DEFAULT_INDEX
    embedder: str = "auto"
    chunk_size: int = 200
    chunk_overlap: int = 30
    top_k: int = 4
    retrieval: str = "hybrid"  # hybrid | dense | lexical
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    min_score: float | None = None
    rerank: str | None = None  # cross-encoder folder or hub id; None: no reranking
    rerank_candidates: int = 20
    generator: str = "smollm2"  # smollm2 | extractive | openai | echo (tests) | any local folder of a causal LM
    max_new_tokens: int = 0  # 0: the backend's default (64 for local models, 512 for openai)
    temperature: float = 0.0
    grounding: str = "auto"  # auto (the backend's own) | snap | check; see rag.answer.grounding
    context_tokens: int = 0  # prompt + answer budget in tokens; 0: the model's window (local) or 8192 (openai)
    base_url: str = ""  # openai: the server's OpenAI-compatible root, e.g. http://localhost:11434/v1
    llm_model: str = ""  # openai: the model name the server knows
    request_timeout: float = 60.0  # openai: seconds per HTTP request
    max_retries: int = 2  # openai: retries on 429, 5xx and connection errors, with exponential backoff
    batch_size: int = 32  # passages per embedding-model call (tuned by benchmarks/embedding.py)
    embed_backend: str = "auto"  # auto (OpenVINO on CPUs with native bf16 if installed, else torch) | torch | openvino
    index_type: str | None = None  # auto | flat | ivf | hnsw; None: what the index has (auto for a new one)
    precision: str = "auto"  # auto (bf16 on CPUs with native bf16, fp16 on CUDA, else fp32) | float32 | bfloat16
    max_file_mb: float = 50.0
    cjk_doc_share: float = 0.25
    threads: int = 0  # 0: all cores
    quiet: bool = False

    @classmethod
    def load(cls, toml_path: str | os.PathLike[str] | None = None, **overrides: Any) -> RagConfig:
        """Build a config from defaults, ``rag.toml`` (or ``toml_path``), RAG_* variables and overrides.

        Overrides whose value is ``None`` are ignored, so CLI options can be passed straight in.
        """
        values: dict[str, Any] = {}
        path = Path(toml_path) if toml_path is not None else Path("rag.toml")
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read config file {path}: {exc}; fix or remove it") from exc
            values.update(data.get("rag", data))
        elif toml_path is not None:
            raise ConfigError(f"config file {path} does not exist")
        known = {f.name for f in fields(cls)}
        for name in known:
            env = os.environ.get(f"RAG_{name.upper()}")
            if env is not None and env != "":
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known settings: {', '.join(sorted(known))}")
        return cls(**{k: _coerce(k, v) for k, v in values.items()})

    @classmethod
    def setting_names(cls) -> frozenset[str]:
        """The names a user sets (rag.toml keys, RAG_* variables without the prefix, ``load`` overrides)."""
        return frozenset(f.name for f in fields(cls))

    def replace(self, **changes: Any) -> RagConfig:
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()})

    def __post_init__(self) -> None:
        if self.chunk_size < 16:
            raise ConfigError(f"chunk_size={self.chunk_size} is too small; use at least 16 tokens")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(
                f"chunk_overlap={self.chunk_overlap} must be >= 0 and smaller than chunk_size={self.chunk_size}"
            )
        if self.top_k < 1:
            raise ConfigError(f"top_k={self.top_k} must be at least 1")
        if self.retrieval not in ("hybrid", "dense", "lexical"):
            raise ConfigError(f"retrieval={self.retrieval!r}; choose hybrid, dense or lexical")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} must be at least 1")
        if self.index_type is not None and self.index_type not in INDEX_TYPES:
            raise ConfigError(f"index_type={self.index_type!r}; choose {', '.join(INDEX_TYPES)}")
        if self.embed_backend not in EMBED_BACKENDS:
            raise ConfigError(f"embed_backend={self.embed_backend!r}; choose {', '.join(EMBED_BACKENDS)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision={self.precision!r}; choose {', '.join(PRECISIONS)}")
        if self.max_file_mb <= 0:
            raise ConfigError(f"max_file_mb={self.max_file_mb} must be positive")
        if self.grounding not in ("auto", "snap", "check"):
            raise ConfigError(f"grounding={self.grounding!r}; choose auto, snap or check")
        if self.max_new_tokens < 0 or self.context_tokens < 0:
            raise ConfigError(
                f"max_new_tokens={self.max_new_tokens} and context_tokens={self.context_tokens} must be >= 0 "
                "(0: the backend's default)"
            )
        if self.request_timeout <= 0:
            raise ConfigError(f"request_timeout={self.request_timeout} must be positive (seconds)")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries={self.max_retries} must be >= 0")


_TYPES: dict[str, type] = {
    "index": Path,
    "embedder": str,
    "chunk_size": int,
    "chunk_overlap": int,
    "top_k": int,
    "retrieval": str,
    "rrf_k": int,
    "dense_weight": float,
    "lexical_weight": float,
    "min_score": float,
    "rerank": str,
    "rerank_candidates": int,
    "generator": str,
    "max_new_tokens": int,
    "temperature": float,
    "grounding": str,
    "context_tokens": int,
    "base_url": str,
    "llm_model": str,
    "request_timeout": float,
    "max_retries": int,
    "batch_size": int,
    "precision": str,
    "index_type": str,
    "embed_backend": str,
    "max_file_mb": float,
    "cjk_doc_share": float,
    "threads": int,
    "quiet": bool,
}


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES.get(name)
    if kind is None or value is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind is Path:
            return Path(os.path.expanduser(str(value)))
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}={value!r} is not a valid {kind.__name__}") from exc
