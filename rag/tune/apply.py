"""Applying a tuned embedder: every chunk re-embedded into a new vector index, the model saved in the index folder,
both committed as the next generation by the ingest writer's machinery (``rag.index.folder.Writer``: staged beside
the current generation, fsynced, then one manifest rename). Readers keep the previous generation until the commit;
a process killed before it leaves the previous generation, and the next writer removes the leftovers."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from rag.embed.base import Embedder
from rag.index.folder import IndexDir, Writer
from rag.index.policy import index_policy, settle_vectors
from rag.index.store import ChunkStore
from rag.index.vectors import VectorIndex
from rag.ingest.writer import WINDOW_BATCHES, EmbedBatch

log = logging.getLogger(__name__)

READ_ROWS = 512


def embed_all(store: ChunkStore, embedder: Embedder, batch_size: int = 32, *, quiet: bool = False) -> VectorIndex:
    """A flat index of every chunk of ``store`` embedded by ``embedder`` (identical texts embedded once)."""
    from tqdm import tqdm

    vectors = VectorIndex(embedder.dimension)
    batch = EmbedBatch(embedder, vectors, batch_size * WINDOW_BATCHES)
    cursor = store.db.execute("SELECT id, text FROM chunks ORDER BY id")
    with tqdm(total=store.count("chunks"), unit="chunk", desc="re-embed", disable=quiet or None, leave=False) as bar:
        while rows := cursor.fetchmany(READ_ROWS):
            batch.add([int(r[0]) for r in rows], [str(r[1]) for r in rows])
            bar.update(len(rows))
    batch.flush()
    return vectors


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def commit_tuned(
    index_dir: IndexDir,
    model_folder: Path,
    vectors: VectorIndex,
    embedded_generation: int,
    reembed: Any,
    tuned: dict[str, Any],
    model_id: str,
) -> dict[str, Any]:
    """Commit the tuned model and its vectors as the next generation. ``vectors`` were embedded from generation
    ``embedded_generation``; if a writer committed since, ``reembed(store)`` embeds the staged store again.
    Returns the committed manifest."""
    with index_dir.write() as writer:
        base = writer.base
        if base is None:
            raise RuntimeError(f"no index at {index_dir.path}")
        if int(base["generation"]) != embedded_generation:
            log.info("the index changed while tuning: re-embedding generation %s", base["generation"])
            vectors = reembed(writer.store())
        folder = _stage_model(writer, model_folder)
        writer.replace_vectors(vectors)
        writer.store()  # staged copy of the chunks (unchanged)
        fields = {
            "embedder": model_id,
            "dimension": vectors.dimension,
            "tuned": {**tuned, "folder": folder.name},
            **settle_vectors(writer, index_policy(None, base), rebuilt=True),
        }
        return writer.commit(fields)


def _stage_model(writer: Writer, model_folder: Path) -> Path:
    folder = writer.staged_folder("tuned")
    shutil.copytree(model_folder, folder, dirs_exist_ok=True)
    _fsync_tree(folder)
    return folder
