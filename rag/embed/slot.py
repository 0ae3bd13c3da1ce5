"""EmbedderSlot: which embedder serves an index, loaded once.

The pipeline holds one slot. An existing index is served by the model it was built with (or the model ``rag
tune`` adapted from it); a different one asked for is refused with the fix. A new index takes the configured
model, and ``auto`` picks MiniLM or the multilingual E5 from a sample of the documents. The slot is also what the
ingest stage asks for its embedder (``rag.ingest.run.EmbedderSource``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.config import RagConfig
from rag.embed.base import Embedder
from rag.embed.registry import AUTO, E5, MINILM, canonical_name, create_embedder, create_tuned_embedder
from rag.errors import ModelMismatchError
from rag.models.runtime import configure_threads
from rag.text.langdetect import cjk_ratio
from rag.types import Document

log = logging.getLogger(__name__)


class EmbedderSlot:
    """The embedder of the index at ``index_path``: ``embedder`` when given (tests pass fakes), else loaded on
    first use as ``config()`` says (read at each use: the pipeline's settings may be replaced)."""

    def __init__(self, config: Callable[[], RagConfig], index_path: Path, embedder: Embedder | None = None) -> None:
        self._config = config
        self._index_path = index_path
        self._embedder = embedder
        self._lock = threading.Lock()  # concurrent first requests (the server) load the model once

    @property
    def loaded(self) -> Embedder | None:
        """The embedder when one is loaded (or was given), else None."""
        return self._embedder

    def for_index(self, manifest: dict[str, Any]) -> Embedder:
        """The embedder an index was built with; a different one asked for is refused. An index ``rag tune``
        adapted is served by its tuned model, also when its base model is asked for by name."""
        built, dim = str(manifest["embedder"]), int(manifest["dimension"])
        tuned = manifest.get("tuned") if isinstance(manifest.get("tuned"), dict) else None
        configured = canonical_name(self._config().models.embedder)
        asked = self._embedder.model_id if self._embedder is not None else configured
        if asked not in (AUTO, built) and not (tuned and self._embedder is None and asked == tuned.get("base")):
            tuned_note = f" (tuned by `rag tune` from '{tuned.get('base')}')" if tuned else ""
            raise ModelMismatchError(
                f"index {self._index_path} was built with embedding model '{built}' ({dim}-d){tuned_note} but "
                f"'{asked}' was asked for. Leave the model unset to use '{built}', or rebuild: delete "
                f"{self._index_path} and run `rag ingest FOLDER --index {self._index_path} --model {asked}`"
            )
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    if tuned:
                        self._embedder = self.tuned(str(self._index_path / str(tuned["folder"])), built)
                    else:
                        self._embedder = self._create(built)
        return self._embedder

    def for_new_index(self, sample: list[Document]) -> Embedder:
        """The embedder for a new index: the one given or configured; ``auto`` looks at a sample of documents."""
        if self._embedder is None:
            spec = canonical_name(self._config().models.embedder)
            if spec == AUTO:
                cjk_docs = sum(1 for d in sample if cjk_ratio(d.text[:20_000]) >= 0.3)
                share = cjk_docs / len(sample) if sample else 0.0
                spec = E5 if share >= self._config().ingest.cjk_doc_share else MINILM
                log.info("embedder auto: %d of %d documents are CJK -> %s", cjk_docs, len(sample), spec)
            self._embedder = self._create(spec)
        return self._embedder

    def needs_sample(self) -> bool:
        """Whether ``for_new_index`` looks at the documents (no embedder yet and ``auto`` configured)."""
        return self._embedder is None and canonical_name(self._config().models.embedder) == AUTO

    def tuned(self, folder: str, model_id: str, scratch: bool = False) -> Embedder:
        """A tuned model saved by ``rag tune`` (``scratch``: a temporary copy being scored, run on torch so no
        OpenVINO conversion is cached for it)."""
        settings = self._config().models
        configure_threads(settings.threads)
        if scratch:
            settings = dataclasses.replace(settings, embed_backend="torch")
        return create_tuned_embedder(folder, model_id, settings)

    def serve(self, embedder: Embedder) -> None:
        """Serve the index with ``embedder`` from now on (the model ``rag tune --apply`` committed)."""
        with self._lock:
            self._embedder = embedder

    def _create(self, spec: str) -> Embedder:
        settings = self._config().models
        configure_threads(settings.threads)
        return create_embedder(spec, settings)
