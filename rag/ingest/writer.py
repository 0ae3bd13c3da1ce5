"""Apply an ingest plan to the staged generation: chunk each changed document, store it, embed its chunks in
windows of batches (identical texts embedded once), remove replaced and gone documents, settle the vector index
type, and commit. Either the whole ingest is committed or none of it (see ``rag.index.folder``)."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.embed.base import Embedder
from rag.index.folder import Writer
from rag.index.policy import Chunking, settle_vectors
from rag.index.store import StoredDocument
from rag.ingest.chunking import Chunker
from rag.ingest.plan import Changes, Item
from rag.text.langdetect import detect_language
from rag.text.paths import display_path
from rag.types import Document, SkippedFile

log = logging.getLogger(__name__)

AUTO_SAMPLE = 64  # documents read before the automatic embedder choice is made
# Chunk texts collected before one embedding call, in model batches: large enough that length sorting cuts
# padding, small enough that memory stays flat (texts are dropped once embedded). 32 x 32 = 1024 by default.
WINDOW_BATCHES = 32


@dataclass(frozen=True)
class WriteOptions:
    """How ``apply`` writes: the embedder batch size, the index type asked for, progress bars."""

    batch_size: int
    index_policy: str
    quiet: bool = False


def apply(
    writer: Writer,
    loaded: Iterator[Item],
    *,
    total: int | None,
    gone: list[StoredDocument],
    skipped: list[SkippedFile],
    user_meta: dict[str, Any],
    embedder_for: Callable[[list[Document]], Embedder],
    chunking_for: Callable[[Embedder], Chunking],
    options: WriteOptions,
) -> Changes:
    """Write ``loaded`` and drop ``gone`` in the staged generation, then commit (nothing is committed when every
    new or changed file was skipped). ``embedder_for`` gets a sample of the documents (for an ``auto`` choice on a
    new index); ``chunking_for`` the chunk settings for that embedder (checked against the manifest)."""
    from tqdm import tqdm

    sample = list(itertools.islice(loaded, AUTO_SAMPLE)) if writer.base is None else []
    if writer.base is None and not sample and not gone:
        return Changes()
    embedder = embedder_for([item.doc for item in sample])
    loaded = itertools.chain(sample, loaded)
    chunking = chunking_for(embedder)
    chunker = Chunker(chunking.size, chunking.overlap, embedder.count_tokens, embedder.max_tokens)
    store = writer.store()
    vectors = writer.vectors(embedder.dimension)
    batch = EmbedBatch(embedder, vectors, options.batch_size * WINDOW_BATCHES)
    added = updated = chunks_removed = ocr_pages = 0
    truncated: list[SkippedFile] = []
    bar = tqdm(total=total, unit="doc", desc="ingest", disable=options.quiet or None, leave=False)
    try:
        for item in loaded:
            bar.update(1)
            old, doc, digest = item.old, item.doc, item.digest
            chunks = item.chunks if item.chunks is not None else chunker.split(doc)
            if not chunks:
                skipped.append(SkippedFile(display_path(item.key), "no text to index"))
                continue
            for dropped in item.drop:  # attachments the earlier version of this e-mail had
                removed = store.remove_document(dropped.id)
                batch.release(removed)
                vectors.remove(removed)
                chunks_removed += len(removed)
            ocr_pages += len(doc.metadata.get("ocr_pages", ()))
            if doc.metadata.get("truncated"):
                truncated.append(SkippedFile(display_path(item.key), str(doc.metadata["truncated"])))
            if old is not None:
                removed = store.remove_document(old.id)
                batch.release(removed)  # an earlier file of this ingest may still copy these vectors
                vectors.remove(removed)
                chunks_removed += len(removed)
                updated += 1
            else:
                added += 1
            twin = store.document_with_hash(digest) if item.vectors is None else None
            if twin is not None:  # same content under another path: reuse its vectors, embed nothing
                batch.remember(store.chunk_texts_and_ids(twin))
            ids = list(store.allocate_ids("next_chunk_id", len(chunks)))
            store.add_document(
                path=item.key,
                content_hash=digest,
                mtime=item.mtime,
                size=item.size,
                file_type=doc.file_type,
                language=item.language or detect_language(doc.text[:20_000]),
                title=doc.metadata.get("title"),
                metadata=doc.metadata,
                user_meta=user_meta,
                chunks=chunks,
                chunk_ids=ids,
            )
            if item.vectors is not None:  # embedded elsewhere (Ray workers)
                batch.add_embedded(ids, item.vectors)
            else:
                batch.add(ids, [c.indexed for c in chunks])
            bar.set_postfix(chunks=batch.total)
        batch.flush()
        for doc_gone in gone:
            removed = store.remove_document(doc_gone.id)
            vectors.remove(removed)
            chunks_removed += len(removed)
    finally:
        bar.close()
    if not (added or updated or gone):  # every new or changed file was skipped: keep the generation
        return Changes()
    writer.commit(
        {
            "embedder": embedder.model_id,
            "dimension": embedder.dimension,
            "normalized": True,
            "metric": "inner_product",
            "chunker": chunking.manifest(),
            **settle_vectors(writer, options.index_policy),
        }
    )
    return Changes(added, updated, len(gone), batch.total, chunks_removed, batch.embedded, ocr_pages, tuple(truncated))


def remove_documents(writer: Writer, doomed: list[StoredDocument], index_policy: str) -> None:
    """Delete ``doomed`` (their chunks, lexical rows and vectors) and commit."""
    store = writer.store()
    vectors = writer.vectors(int(writer.base["dimension"]) if writer.base else 0)
    for doc in doomed:
        vectors.remove(store.remove_document(doc.id))
    writer.commit(settle_vectors(writer, index_policy))


class EmbedBatch:
    """Collects (id, text) pairs and embeds them in batches into the vector index.

    A text seen before in this ingest (or registered with ``remember``) is not embedded again: its vector
    is copied from the index. Only digests and ids are kept, so memory stays small.
    """

    def __init__(self, embedder: Embedder, vectors: Any, size: int) -> None:
        self.embedder, self.vectors, self.size = embedder, vectors, size
        self.ids: list[int] = []
        self.texts: list[str] = []
        self.pending: dict[bytes, int] = {}  # digest -> id waiting to be embedded
        self.copies: list[tuple[int, bytes]] = []  # (id, digest) to copy once the digest's vector exists
        self.seen: dict[bytes, int] = {}  # digest -> id whose vector is in the index
        self.total = 0
        self.embedded = 0

    @staticmethod
    def _digest(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()

    def remember(self, pairs: list[tuple[int, str]]) -> None:
        """Register chunks already in the index, so identical texts reuse their vectors."""
        for cid, text in pairs:
            self.seen.setdefault(self._digest(text), cid)

    def release(self, ids: list[int]) -> None:
        """The vectors of ``ids`` are about to be removed: make the copies that still read them, then forget them."""
        gone = set(ids)
        if any(self.seen.get(d) in gone for _, d in self.copies):
            self.flush()
        self.seen = {d: cid for d, cid in self.seen.items() if cid not in gone}

    def add(self, ids: list[int], texts: list[str]) -> None:
        for cid, text in zip(ids, texts, strict=True):
            digest = self._digest(text)
            if digest in self.seen or digest in self.pending:
                self.copies.append((cid, digest))
            else:
                self.pending[digest] = cid
                self.ids.append(cid)
                self.texts.append(text)
        self.total += len(ids)
        if len(self.texts) >= self.size or len(self.copies) >= self.size:
            self.flush()

    def add_embedded(self, ids: list[int], vectors: np.ndarray) -> None:
        """Chunks whose vectors were computed elsewhere (Ray workers): stored as they are."""
        self.vectors.add(np.asarray(ids, dtype=np.int64), vectors)
        self.total += len(ids)
        self.embedded += len(ids)

    def flush(self) -> None:
        if self.texts:
            vecs = self.embedder.embed_documents(self.texts)
            self.vectors.add(np.asarray(self.ids, dtype=np.int64), vecs)
            self.embedded += len(self.texts)
            self.seen.update(self.pending)
            self.ids, self.texts, self.pending = [], [], {}
        if self.copies:
            ids = np.asarray([cid for cid, _ in self.copies], dtype=np.int64)
            vecs = np.stack([self.vectors.reconstruct(self.seen[d]) for _, d in self.copies])
            self.vectors.add(ids, vecs)
            self.copies = []
