"""rag: retrieval-augmented question answering over your own documents, offline by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.config import RagConfig
from rag.errors import (
    ConfigError,
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    LoaderError,
    ModelLoadError,
    ModelMismatchError,
    RagError,
)
from rag.types import Answer, Chunk, Citation, Document, Hit, IndexInfo, IngestReport, SkippedFile

if TYPE_CHECKING:
    from rag.pipeline import RagPipeline

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "ConfigError",
    "Document",
    "Hit",
    "IndexFormatError",
    "IndexInfo",
    "IndexLockedError",
    "IndexNotFoundError",
    "IngestReport",
    "LoaderError",
    "ModelLoadError",
    "ModelMismatchError",
    "RagConfig",
    "RagError",
    "RagPipeline",
    "SkippedFile",
]


def __getattr__(name: str) -> Any:
    # RagPipeline pulls in numpy; keep `import rag` (and `rag --help`) light.
    if name == "RagPipeline":
        from rag.pipeline import RagPipeline

        return RagPipeline
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
