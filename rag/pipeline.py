"""RagPipeline: the one object the CLI, the server, notebooks and user code talk to."""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import Chunker
from rag.config import RagConfig
from rag.discovery import FoundFile, display_path, file_hash, find_files
from rag.embedding import E5, MINILM, Embedder, canonical_name, load_embedder
from rag.errors import LoaderError, ModelMismatchError, RagError
from rag.generation import GenerationRequest, Generator, load_generator
from rag.grounding import ground
from rag.indexdir import IndexDir, Snapshot, Writer
from rag.langdetect import cjk_ratio, detect_language, is_cjk_language
from rag.loaders import load
from rag.retrieval import retrieve as _retrieve
from rag.store import ChunkStore, StoredDocument
from rag.types import Answer, Citation, Document, Hit, IndexInfo, IngestReport, SkippedFile

log = logging.getLogger(__name__)

REFUSALS = {
    "en": "I don't know: the documents do not contain an answer to this question.",
    "zh": "我不知道：文档中没有这个问题的答案。",
    "ja": "わかりません：文書にはこの質問の答えがありません。",
    "ko": "모르겠습니다: 문서에 이 질문에 대한 답이 없습니다.",
}
_AUTO_SAMPLE = 64  # documents read before the automatic embedder choice is made


class RagPipeline:
    """Ingest, retrieve and answer over one index folder.

    Constructing is cheap: models load on first use and the index opens lazily. ``embedder`` and
    ``generator`` replace the configured ones (tests pass fakes here).
    """

    def __init__(
        self,
        config: RagConfig | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.config = config or RagConfig.load()
        self._dir = IndexDir(self.config.index)
        self._embedder = embedder
        self._generator = generator
        self._snapshot: Snapshot | None = None
        self._stamp: tuple[int, int] = (-1, -1)
        self._lock = threading.RLock()

    @classmethod
    def from_index(cls, path: str | Path, **overrides: Any) -> RagPipeline:
        """A pipeline over an existing index folder (settings as in ``RagConfig.load``)."""
        pipeline = cls(RagConfig.load(index=Path(path), **overrides))
        pipeline._current()  # fail now, with a clear message, if the index is missing or damaged
        return pipeline

    @property
    def index_path(self) -> Path:
        return self._dir.path

    # -- models -----------------------------------------------------------------------------------
    def _embedder_for(self, manifest: dict[str, Any]) -> Embedder:
        built = str(manifest["embedder"])
        dim = int(manifest["dimension"])
        asked = self._embedder.model_id if self._embedder is not None else canonical_name(self.config.embedder)
        if asked != "auto" and asked != built:
            raise ModelMismatchError(
                f"index {self._dir.path} was built with embedding model '{built}' ({dim}-d) but '{asked}' was "
                f"asked for. Leave the model unset to use '{built}', or rebuild: delete {self._dir.path} and run "
                f"`rag ingest FOLDER --index {self._dir.path} --model {asked}`"
            )
        if self._embedder is None:
            self._embedder = load_embedder(built, threads=self.config.threads)
        return self._embedder

    def _choose_embedder(self, sample: list[Document]) -> Embedder:
        if self._embedder is not None:
            return self._embedder
        spec = canonical_name(self.config.embedder)
        if spec == "auto":
            cjk_docs = sum(1 for d in sample if cjk_ratio(d.text[:20_000]) >= 0.3)
            share = cjk_docs / len(sample) if sample else 0.0
            spec = E5 if share >= self.config.cjk_doc_share else MINILM
            log.info("embedder auto: %d of %d documents are CJK -> %s", cjk_docs, len(sample), spec)
        self._embedder = load_embedder(spec, threads=self.config.threads)
        return self._embedder

    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = load_generator(
                self.config.generator, threads=self.config.threads, temperature=self.config.temperature
            )
        return self._generator

    # -- reading ----------------------------------------------------------------------------------
    def _current(self) -> Snapshot:
        """The latest committed generation (reopened when a writer has committed since)."""
        with self._lock:
            stamp = self._dir.manifest_stamp()
            if self._snapshot is None or stamp != self._stamp:
                # The old snapshot is dropped, not closed: another thread may still be reading it;
                # its SQLite connection closes when the last reference goes.
                self._snapshot, self._stamp = self._dir.open_snapshot(), stamp
            return self._snapshot

    def info(self) -> IndexInfo:
        snap = self._current()
        m = snap.manifest
        size = sum(p.stat().st_size for p in self._dir.path.iterdir() if p.is_file())
        return IndexInfo(
            path=str(self._dir.path),
            format_version=int(m["format_version"]),
            generation=int(m["generation"]),
            embedder=str(m["embedder"]),
            dimension=int(m["dimension"]),
            index_type=str(m.get("index_type", "flat")),
            documents=snap.store.count("documents"),
            chunks=snap.store.count("chunks"),
            vectors=len(snap.vectors),
            size_bytes=size,
            chunk_size=int(m["chunker"]["chunk_size"]),
            chunk_overlap=int(m["chunker"]["chunk_overlap"]),
            created=str(m["created"]),
            updated=str(m["updated"]),
        )

    def verify(self) -> list[str]:
        """Consistency problems of the current index (empty list: consistent)."""
        from rag.verify import check

        return check(self._current(), self._dir.path)

    def compact(self) -> IndexInfo:
        """Rewrite the index as a new generation: vectors rebuilt densely from their ids, SQLite vacuumed."""
        from rag.index import VectorIndex

        with self._dir.write() as writer:
            if writer.base is None:
                raise RagError(f"no index at {self._dir.path}: nothing to compact")
            old = writer.vectors(int(writer.base["dimension"]))
            ids = old.ids()
            fresh = VectorIndex(old.dimension)
            if len(ids):
                fresh.add(ids, np.stack([old.reconstruct(int(i)) for i in ids]))
            writer.replace_vectors(fresh)
            store = writer.store()
            store.db.conn.commit()
            store.db.execute("VACUUM")
            writer.commit({})
        self._stamp = (-1, -1)
        return self.info()

    def documents(self) -> list[StoredDocument]:
        return self._current().store.documents()

    def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        """Top-k passages for ``question`` (hybrid dense + BM25 by default), best first."""
        if not question or not question.strip():
            raise RagError("the question is empty; ask something")
        snap = self._current()
        embedder = self._embedder_for(snap.manifest)
        query_vector = embedder.embed_query(question)
        return _retrieve(
            snap,
            query_vector,
            question,
            k or self.config.top_k,
            mode=self.config.retrieval,
            rrf_k=self.config.rrf_k,
            dense_weight=self.config.dense_weight,
            lexical_weight=self.config.lexical_weight,
        )

    def min_score(self, language: str = "en") -> float:
        """Relevance threshold (cosine) for a question in ``language``: the configured one, else the model's."""
        if self.config.min_score is not None:
            return self.config.min_score
        return self._embedder_for(self._current().manifest).default_min_score(language)

    def ask(self, question: str, k: int | None = None) -> Answer:
        """Answer ``question`` from the top-k passages, citing them; refuses when none is relevant."""
        t0 = time.perf_counter()
        hits = self.retrieve(question, k)
        t1 = time.perf_counter()
        language = detect_language(question)
        threshold = self.min_score(language)
        relevant = [h for h in hits if h.similarity >= threshold]
        if not relevant:
            return Answer(
                question=question,
                text=REFUSALS.get(language, REFUSALS["en"]),
                citations=[],
                refused=True,
                language=language,
                passages=hits,
                timings={"retrieve_s": t1 - t0, "generate_s": 0.0, "total_s": t1 - t0},
                grounding="refused",
                generator="",
            )
        generator = self.generator()
        passages = [h.chunk.text for h in relevant]
        raw = ""  # empty: the grounding step answers extractively
        if generator.supports_language(language):
            raw = generator.generate(GenerationRequest(question, passages, language, self.config.max_new_tokens))
        t2 = time.perf_counter()
        grounded = ground(raw, question, passages)
        if grounded.dropped_markers:
            log.info("dropped citation markers that name no passage: %s", grounded.dropped_markers)
        citations = [_citation(n, relevant[n - 1]) for n in grounded.cited]
        return Answer(
            question=question,
            text=grounded.text,
            citations=citations,
            refused=False,
            language=language,
            passages=relevant,
            timings={"retrieve_s": t1 - t0, "generate_s": t2 - t1, "total_s": t2 - t0},
            grounding=grounded.method,
            generator=generator.name if raw else "",
        )

    # -- writing ----------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, sync: bool = False) -> IngestReport:
        """Add new files, replace changed ones, skip unchanged ones; with ``sync`` also drop documents whose
        files under ``paths`` are gone. Unreadable files are skipped with a reason; the rest goes on."""
        t0 = time.perf_counter()
        roots = [Path(p).expanduser() for p in paths]
        files, skipped = find_files(list(roots))
        with self._dir.write() as writer:
            base = writer.base_store()
            existing = {d.path: d for d in base.documents()} if base is not None else {}
            todo, unchanged = _changed_files(files, existing, skipped)
            gone = _gone_documents(existing, roots) if sync else []
            if not todo and not gone:
                return self._report(files, _Changes(), unchanged, skipped, t0, writer)
            changes = self._apply(writer, todo, gone, skipped)
        self._stamp = (-1, -1)  # reopen on next read
        return self._report(files, changes, unchanged, skipped, t0)

    def remove(self, paths: Iterable[str | Path]) -> int:
        """Delete the documents at ``paths`` (files, or every document under a folder); returns how many."""
        targets = [str(Path(p).expanduser().resolve()) for p in paths]
        with self._dir.write() as writer:
            base = writer.base_store()
            if base is None:
                raise RagError(f"no index at {self._dir.path}: nothing to remove")
            doomed = [d for d in base.documents() if _is_under(d.path, targets)]
            if not doomed:
                return 0
            store = writer.store()
            vectors = writer.vectors(int(writer.base["dimension"]) if writer.base else 0)
            for doc in doomed:
                vectors.remove(store.remove_document(doc.id))
            writer.commit({})
        self._stamp = (-1, -1)
        return len(doomed)

    def _apply(
        self,
        writer: Writer,
        todo: list[tuple[FoundFile, str, StoredDocument | None]],
        gone: list[StoredDocument],
        skipped: list[SkippedFile],
    ) -> _Changes:
        from tqdm import tqdm

        max_bytes = int(self.config.max_file_mb * 1024 * 1024)
        loaded = _load_all(todo, max_bytes, skipped)
        if writer.base is not None:
            embedder = self._embedder_for(writer.base)
        else:
            sample = list(itertools.islice(loaded, _AUTO_SAMPLE))
            embedder = self._choose_embedder([doc for _, _, _, doc in sample])
            loaded = itertools.chain(sample, loaded)
        chunk_size = min(self.config.chunk_size, embedder.max_tokens)
        overlap = min(self.config.chunk_overlap, chunk_size // 2)
        chunker = Chunker(chunk_size, overlap, embedder.count_tokens)
        store = writer.store()
        vectors = writer.vectors(embedder.dimension)
        batch = _EmbedBatch(embedder, vectors, self.config.batch_size * 4)
        added = updated = chunks_removed = 0
        bar = tqdm(total=len(todo), unit="file", desc="ingest", disable=self.config.quiet or None, leave=False)
        try:
            for found, digest, old, doc in loaded:
                bar.update(1)
                chunks = chunker.split(doc)
                if not chunks:
                    skipped.append(SkippedFile(display_path(found.path), "no text to index"))
                    continue
                if old is not None:
                    removed = store.remove_document(old.id)
                    vectors.remove(removed)
                    chunks_removed += len(removed)
                    updated += 1
                else:
                    added += 1
                twin = store.document_with_hash(digest)
                if twin is not None:  # same content under another path: reuse its vectors, embed nothing
                    batch.remember(store.chunk_texts_and_ids(twin))
                ids = store.allocate_ids("next_chunk_id", len(chunks))
                store.add_document(
                    path=str(found.path),
                    content_hash=digest,
                    mtime=found.mtime,
                    size=found.size,
                    file_type=doc.file_type,
                    language=detect_language(doc.text[:20_000]),
                    title=doc.metadata.get("title"),
                    metadata=doc.metadata,
                    chunks=chunks,
                    chunk_ids=list(ids),
                )
                batch.add(list(ids), [c.text for c in chunks])
                bar.set_postfix(chunks=batch.total)
            batch.flush()
            for doc_gone in gone:
                removed = store.remove_document(doc_gone.id)
                vectors.remove(removed)
                chunks_removed += len(removed)
        finally:
            bar.close()
        if not (added or updated or gone):  # every new or changed file was skipped: keep the generation
            return _Changes()
        writer.commit(
            {
                "embedder": embedder.model_id,
                "dimension": embedder.dimension,
                "normalized": True,
                "metric": "inner_product",
                "index_type": "flat",
                "chunker": {"chunk_size": chunk_size, "chunk_overlap": overlap, "unit": "embedder tokens"},
            }
        )
        return _Changes(added, updated, len(gone), batch.total, chunks_removed, batch.embedded)

    def _report(
        self,
        files: list[FoundFile],
        changes: _Changes,
        unchanged: int,
        skipped: list[SkippedFile],
        t0: float,
        writer: Writer | None = None,
    ) -> IngestReport:
        model = ""
        manifest = writer.base if writer is not None else None
        if manifest is None and self._dir.exists():
            manifest = self._dir.read_manifest()
        if manifest is not None:
            model = str(manifest.get("embedder", ""))
        return IngestReport(
            index=str(self._dir.path),
            files_seen=len(files),
            files_added=changes.added,
            files_updated=changes.updated,
            files_unchanged=unchanged,
            files_removed=changes.removed,
            skipped=skipped,
            chunks_added=changes.chunks_added,
            chunks_removed=changes.chunks_removed,
            chunks_embedded=changes.chunks_embedded,
            seconds=time.perf_counter() - t0,
            model=model,
        )

    def close(self) -> None:
        with self._lock:
            if self._snapshot is not None:
                self._snapshot.close()
                self._snapshot = None

    def __enter__(self) -> RagPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Changes:
    """What one ingest changed (all zero when nothing was committed)."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0


class _EmbedBatch:
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


def _changed_files(
    files: list[FoundFile], existing: dict[str, StoredDocument], skipped: list[SkippedFile]
) -> tuple[list[tuple[FoundFile, str, StoredDocument | None]], int]:
    """Files that are new or whose content changed (size+mtime fast path, then content hash)."""
    todo: list[tuple[FoundFile, str, StoredDocument | None]] = []
    unchanged = 0
    for found in files:
        old = existing.get(str(found.path))
        if old is not None and old.size == found.size and old.mtime == found.mtime:
            unchanged += 1
            continue
        try:
            digest = file_hash(found.path)
        except OSError as exc:
            skipped.append(SkippedFile(display_path(found.path), (exc.strerror or str(exc)).lower()))
            continue
        if old is not None and old.content_hash == digest:
            unchanged += 1
            continue
        todo.append((found, digest, old))
    return todo, unchanged


def _gone_documents(existing: dict[str, StoredDocument], roots: list[Path]) -> list[StoredDocument]:
    prefixes = [str(r.resolve()) for r in roots]
    return [doc for path, doc in existing.items() if _is_under(path, prefixes) and not Path(path).exists()]


def _is_under(path: str, prefixes: list[str]) -> bool:
    """``path`` equals one of ``prefixes`` or lies inside one of those folders."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _load_all(
    todo: list[tuple[FoundFile, str, StoredDocument | None]], max_bytes: int, skipped: list[SkippedFile]
) -> Iterator[tuple[FoundFile, str, StoredDocument | None, Document]]:
    for found, digest, old in todo:
        try:
            doc = load(found.path, max_bytes=max_bytes)
        except LoaderError as exc:
            skipped.append(SkippedFile(display_path(found.path), str(exc)))
            continue
        yield found, digest, old, doc


def _citation(number: int, hit: Hit) -> Citation:
    chunk = hit.chunk
    return Citation(
        number=number,
        source=display_path(chunk.source),
        start=chunk.start,
        end=chunk.end,
        location=chunk.location(),
        score=hit.similarity,
        text=chunk.text,
    )


def is_cjk_question(question: str) -> bool:
    return is_cjk_language(detect_language(question))


__all__ = ["ChunkStore", "RagPipeline"]
