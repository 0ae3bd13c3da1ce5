"""The settings that shape stored data, and the one rule they follow: the manifest wins.

An index records its embedder, chunk size and overlap, lexical tokenizer version and vector index type. A later
writer follows them; a different value asked for explicitly is refused with a message that names both values and
how to rebuild, except where converting is cheap and safe: the vector index type (``--index-type``, converted at
commit) and the lexical tokenizer (re-tokenized at commit when this rag's tokenizer is newer).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
from rag.errors import RagError, SettingMismatchError
from rag.index.folder import IndexDir, Writer
from rag.index.lexical import ENGINE
from rag.index.vectors import choose_kind, needs_rebuild
from rag.text.lexical import LEXICAL_VERSION, TOKENIZER

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Chunking:
    """Chunk size and overlap in the embedder's tokens, as recorded in the manifest."""

    size: int
    overlap: int

    def manifest(self) -> dict[str, Any]:
        return {"chunk_size": self.size, "chunk_overlap": self.overlap, "unit": "embedder tokens"}


def chunking(
    manifest: dict[str, Any] | None, size: int | None, overlap: int | None, max_tokens: int, index: Path
) -> Chunking:
    """The chunking an ingest uses: the index's own; for a new index the asked values (defaults 200/30), capped by
    what the embedder embeds whole. An explicit value that differs from the index's is refused."""
    want_size = min(size if size is not None else DEFAULT_CHUNK_SIZE, max_tokens)
    want_overlap = min(overlap if overlap is not None else DEFAULT_CHUNK_OVERLAP, want_size // 2)
    if manifest is None:
        return Chunking(want_size, want_overlap)
    stored = manifest["chunker"]
    have = Chunking(int(stored["chunk_size"]), int(stored["chunk_overlap"]))
    for name, asked, capped, kept in (
        ("chunk_size", size, want_size, have.size),
        ("chunk_overlap", overlap, want_overlap, have.overlap),
    ):
        if asked is not None and capped != kept:
            raise SettingMismatchError(
                f"index {index} was built with {name}={kept} but {name}={asked} was asked for; one index holds one "
                f"chunking. Leave {name} unset to use {kept}, or rebuild: delete {index} and run "
                f"`rag ingest FOLDER --index {index} --{name.replace('_', '-')} {asked}`"
            )
    return have


def lexical_version(manifest: dict[str, Any]) -> int:
    """The tokenizer version the index's lexical rows were made with (format 1 indexes: version 1)."""
    return int(manifest.get("lexical", {}).get("version", 1))


def lexical_fields() -> dict[str, Any]:
    return {"lexical": {"engine": ENGINE, "tokenizer": TOKENIZER, "version": LEXICAL_VERSION}}


def settle_lexical(writer: Writer) -> None:
    """Re-tokenize the staged lexical index when it was made by another tokenizer version than this rag's."""
    if writer.base is None or writer.lexical_rebuilt or lexical_version(writer.base) == LEXICAL_VERSION:
        return
    log.warning(
        "index %s: lexical tokens of version %d, this rag writes version %d: re-tokenizing every chunk (once)",
        writer.dir.path,
        lexical_version(writer.base),
        LEXICAL_VERSION,
    )
    writer.store().rebuild_lexical()


def index_policy(asked: str | None, manifest: dict[str, Any] | None) -> str:
    """The vector index type asked for: this call's setting, else the one the index was built with, else auto."""
    return asked or str((manifest or {}).get("index_policy", "auto"))


def settle_vectors(writer: Writer, policy: str, rebuilt: bool = False) -> dict[str, Any]:
    """Settle the vector index type for the size it has now (convert or retrain when needed) and return the
    manifest fields that describe it, with the lexical tokenizer's (re-tokenized first if it changed)."""
    settle_lexical(writer)
    base = writer.base or {}
    vectors = writer.vectors(int(base.get("dimension", 0)))
    trained = len(vectors) if rebuilt else int(base.get("index_trained_on", 0))
    kind = choose_kind(policy, len(vectors), vectors.kind)
    if needs_rebuild(vectors, kind, trained):
        log.info("index: %s -> %s at %d vectors", vectors.kind, kind, len(vectors))
        vectors = vectors.converted(kind)
        writer.replace_vectors(vectors)
        trained = len(vectors)
    return {
        "index_type": vectors.kind,
        "index_policy": policy,
        "index_params": vectors.params(),
        "index_trained_on": trained if vectors.kind == "ivf" else 0,
        **lexical_fields(),
    }


def compact(folder: IndexDir, asked_type: str | None) -> None:
    """Rewrite the index as a new generation: vectors rebuilt from their ids (an IVF retrained, its parameters
    retuned; converted when ``asked_type`` says so), the lexical index re-tokenized if older, SQLite vacuumed."""
    with folder.write() as writer:
        if writer.base is None:
            raise RagError(f"no index at {folder.path}: nothing to compact")
        policy = index_policy(asked_type, writer.base)
        old = writer.vectors(int(writer.base["dimension"]))
        writer.replace_vectors(old.converted(choose_kind(policy, len(old), old.kind)))
        store = writer.store()
        store.db.conn.commit()
        store.db.execute("VACUUM")
        writer.commit(settle_vectors(writer, policy, rebuilt=True))
