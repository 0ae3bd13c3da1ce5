"""rag: retrieval-augmented question answering over your own documents, offline by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.config import RagConfig
from rag.errors import (
    ConfigError,
    GeneratorError,
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    LoaderError,
    ModelLoadError,
    ModelMismatchError,
    RagError,
)
from rag.types import (
    Answer,
    Chunk,
    Citation,
    Document,
    DoneEvent,
    Hit,
    IndexInfo,
    IngestReport,
    PassagesEvent,
    SentenceSupport,
    SkippedFile,
    StreamEvent,
    TokenEvent,
)

if TYPE_CHECKING:
    from rag.pipeline import RagPipeline

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "ConfigError",
    "Document",
    "DoneEvent",
    "GeneratorError",
    "Hit",
    "IndexFormatError",
    "IndexInfo",
    "IndexLockedError",
    "IndexNotFoundError",
    "IngestReport",
    "LoaderError",
    "ModelLoadError",
    "ModelMismatchError",
    "PassagesEvent",
    "RagConfig",
    "RagError",
    "RagPipeline",
    "SentenceSupport",
    "SkippedFile",
    "StreamEvent",
    "TokenEvent",
]


def __getattr__(name: str) -> Any:
    # RagPipeline pulls in numpy; keep `import rag` (and `rag --help`) light.
    if name == "RagPipeline":
        from rag.pipeline import RagPipeline

        return RagPipeline
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
