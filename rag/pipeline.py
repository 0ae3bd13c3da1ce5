"""RagPipeline: the one object the CLI, the server, notebooks and user code talk to."""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.conversation import History, standalone_question
from rag.answer.generators.local import GenerationRequest, Generator, generator_for, grounding_mode, prepare
from rag.answer.turn import REFUSALS as REFUSALS
from rag.answer.turn import Turn
from rag.answer.turn import answer as _answer
from rag.answer.turn import stream as _stream
from rag.config import RagConfig
from rag.embed.st import E5, MINILM, Embedder, canonical_name, load_embedder
from rag.errors import LoaderError, ModelMismatchError, RagError
from rag.filters import Filters
from rag.index.folder import IndexDir, Snapshot, Writer
from rag.index.store import ChunkStore, StoredDocument
from rag.index.vectors import choose_kind, needs_rebuild
from rag.ingest.chunking import Chunker
from rag.ingest.discovery import FoundFile, file_hash, find_files
from rag.ingest.loaders import is_supported, load
from rag.retrieve.rerank import CrossEncoderReranker
from rag.retrieve.search import retrieve as _retrieve
from rag.text.langdetect import cjk_ratio, detect_language
from rag.text.paths import display_path
from rag.types import Answer, Chunk, Document, Hit, IndexInfo, IngestReport, SkippedFile, StreamEvent

log = logging.getLogger(__name__)

_QUERY_CACHE_SIZE = 4096
_AUTO_SAMPLE = 64  # documents read before the automatic embedder choice is made
# Chunk texts collected before one embedding call, in model batches: large enough that length sorting cuts
# padding, small enough that memory stays flat (texts are dropped once embedded). 32 x 32 = 1024 by default.
_WINDOW_BATCHES = 32


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
        self._load_lock = threading.Lock()  # first model loads (not self._lock: readers must not wait on them)
        self._rerank_model: CrossEncoderReranker | None = None
        self._query_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    @classmethod
    def from_index(cls, path: str | Path, **overrides: Any) -> RagPipeline:
        """A pipeline over an existing index folder (settings as in ``RagConfig.load``)."""
        pipeline = cls(RagConfig.load(index=Path(path), **overrides))
        pipeline._current()  # fail now, with a clear message, if the index is missing or damaged
        return pipeline

    @property
    def index_path(self) -> Path:
        return self._dir.path

    @staticmethod
    def accepts(filename: str) -> bool:
        """Whether ``ingest`` can read a file of this name (by its suffix or name)."""
        return is_supported(filename)

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
            with self._load_lock:  # concurrent first requests (the server) load the model once
                if self._embedder is None:
                    self._embedder = load_embedder(built, **self._embedder_options())
        return self._embedder

    def _embedder_options(self) -> dict[str, Any]:
        c = self.config
        return {"threads": c.threads, "precision": c.precision, "batch_size": c.batch_size, "backend": c.embed_backend}

    def _choose_embedder(self, sample: list[Document]) -> Embedder:
        if self._embedder is not None:
            return self._embedder
        spec = canonical_name(self.config.embedder)
        if spec == "auto":
            cjk_docs = sum(1 for d in sample if cjk_ratio(d.text[:20_000]) >= 0.3)
            share = cjk_docs / len(sample) if sample else 0.0
            spec = E5 if share >= self.config.cjk_doc_share else MINILM
            log.info("embedder auto: %d of %d documents are CJK -> %s", cjk_docs, len(sample), spec)
        self._embedder = load_embedder(spec, **self._embedder_options())
        return self._embedder

    def generator(self) -> Generator:
        if self._generator is None:
            with self._load_lock:
                if self._generator is None:
                    self._generator = generator_for(self.config)
        return self._generator

    @property
    def models_loaded(self) -> bool:
        """Whether the embedder and the generator have been set up (by ``warm_up`` or a first question)."""
        return self._embedder is not None and self._generator is not None

    def warm_up(self) -> None:
        """Load the index's embedder (when an index exists) and the generator now, not on the first question.
        A generator's weights load here only when it has a public ``load()``; otherwise on first use."""
        if self._dir.exists():
            self._embedder_for(self._current().manifest).embed_query("warm up")
        load = getattr(self.generator(), "load", None)
        if callable(load):
            load()

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
        from rag.index.verify import check

        return check(self._current(), self._dir.path)

    def compact(self) -> IndexInfo:
        """Rewrite the index as a new generation: vectors rebuilt from their ids (an IVF retrained, parameters
        retuned), SQLite vacuumed."""
        with self._dir.write() as writer:
            if writer.base is None:
                raise RagError(f"no index at {self._dir.path}: nothing to compact")
            old = writer.vectors(int(writer.base["dimension"]))
            writer.replace_vectors(old.converted(choose_kind(self._index_policy(writer), len(old), old.kind)))
            store = writer.store()
            store.db.conn.commit()
            store.db.execute("VACUUM")
            writer.commit(self._index_fields(writer, rebuilt=True))
        self._stamp = (-1, -1)
        return self.info()

    def documents(self) -> list[StoredDocument]:
        return self._current().store.documents()

    def retrieve(
        self, question: str, k: int | None = None, *, filters: Filters | dict[str, Any] | None = None
    ) -> list[Hit]:
        """Top-k passages for ``question`` (hybrid dense + BM25 by default, then the reranker when one is
        configured), best first. ``filters`` are applied inside the searches, before top-k."""
        if not question or not question.strip():
            raise RagError("the question is empty; ask something")
        if isinstance(filters, dict):
            filters = Filters.from_mapping(filters)
        k = k or self.config.top_k
        snap = self._current()
        embedder = self._embedder_for(snap.manifest)
        query_vector = self._query_vector(embedder, question)
        reranker = self._reranker()
        hits = _retrieve(
            snap,
            query_vector,
            question,
            max(k, self.config.rerank_candidates) if reranker else k,
            mode=self.config.retrieval,
            rrf_k=self.config.rrf_k,
            dense_weight=self.config.dense_weight,
            lexical_weight=self.config.lexical_weight,
            filters=filters,
        )
        return reranker.rerank(question, hits, k) if reranker else hits

    def prime_queries(self, questions: list[str], batch_size: int = 64) -> None:
        """Embed many questions in batches ahead of ``retrieve`` (evaluations, benchmarks): much faster than
        one at a time. Keeps at most the cache's size."""
        embedder = self._embedder_for(self._current().manifest)
        todo = [q for q in dict.fromkeys(questions) if (embedder.model_id, q) not in self._query_cache]
        todo = todo[-_QUERY_CACHE_SIZE:]
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            vectors = embedder.embed_queries(batch)
            with self._lock:
                for question, vector in zip(batch, vectors, strict=True):
                    self._query_cache[(embedder.model_id, question)] = vector
                while len(self._query_cache) > _QUERY_CACHE_SIZE:
                    self._query_cache.popitem(last=False)

    def _query_vector(self, embedder: Embedder, question: str) -> np.ndarray:
        """Query embeddings are cached (LRU, per embedder): repeated questions skip the model."""
        key = (embedder.model_id, question)
        with self._lock:
            cached = self._query_cache.get(key)
            if cached is not None:
                self._query_cache.move_to_end(key)
                return cached
        vector = embedder.embed_query(question)
        with self._lock:
            self._query_cache[key] = vector
            while len(self._query_cache) > _QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vector

    def _reranker(self) -> CrossEncoderReranker | None:
        if not self.config.rerank:
            return None
        with self._lock:
            if self._rerank_model is None or self._rerank_model.spec != self.config.rerank:
                self._rerank_model = CrossEncoderReranker(self.config.rerank)
            return self._rerank_model

    def min_score(self, language: str = "en") -> float:
        """Relevance threshold (cosine) for a question in ``language``: the configured one, else the model's."""
        if self.config.min_score is not None:
            return self.config.min_score
        return self._embedder_for(self._current().manifest).default_min_score(language)

    def ask(
        self,
        question: str,
        k: int | None = None,
        history: History | None = None,
        *,
        filters: Filters | dict[str, Any] | None = None,
    ) -> Answer:
        """Answer ``question`` from the top-k passages, citing them; refuses when none is relevant.

        ``history``: earlier (question, answer) turns of a conversation; a follow-up question is rewritten
        into a standalone one before retrieval (``Answer.standalone_question``; see ``rag.answer.conversation``).
        """
        return _answer(self._turn(question, k, history, filters))

    def ask_stream(
        self,
        question: str,
        k: int | None = None,
        history: History | None = None,
        *,
        filters: Filters | dict[str, Any] | None = None,
    ) -> Iterator[StreamEvent]:
        """``ask``, streamed: a ``PassagesEvent`` (the numbered passages), ``TokenEvent``s as the generator writes,
        then a ``DoneEvent`` with the full Answer. The Answer is authoritative: with the ``snap`` grounding
        (small local models) its text can replace the streamed words; a refusal or an extractive answer
        arrives as one token. Retrieval runs when iteration starts."""
        yield from _stream(self._turn(question, k, history, filters))

    def _turn(
        self,
        question: str,
        k: int | None,
        history: History | None,
        filters: Filters | dict[str, Any] | None,
    ) -> Turn:
        """Rewrite a follow-up, retrieve, keep the relevant passages, and prepare the generator's request."""
        t0 = time.perf_counter()
        if not question or not question.strip():
            raise RagError("the question is empty; ask something")
        language = detect_language(question)
        standalone = standalone_question(question, history, self.generator() if history else None)
        hits = self.retrieve(standalone, k, filters=filters)
        threshold = self.min_score(language)
        relevant = [h for h in hits if h.similarity >= threshold]
        generator: Generator | None = None
        request: GenerationRequest | None = None
        mode = "snap"
        if relevant:
            generator = self.generator()
            mode = grounding_mode(generator, self.config.grounding)
            if generator.supports_language(language):
                passages = [h.chunk.text for h in relevant]
                request = prepare(
                    generator, GenerationRequest(standalone, passages, language, self.config.max_new_tokens)
                )
                if request.passages:
                    relevant = relevant[: len(request.passages)]
                else:  # even the question alone fills the context: answer extractively
                    log.warning("the question leaves no room for passages in %s's context", generator.name)
                    request = None
        return Turn(
            question=question,
            standalone=standalone,
            language=language,
            hits=hits,
            passages=relevant,
            generator=generator,
            request=request,
            mode=mode,
            started=t0,
            retrieve_s=time.perf_counter() - t0,
        )

    # -- writing ----------------------------------------------------------------------------------
    def ingest(
        self,
        paths: Iterable[str | Path],
        *,
        sync: bool = False,
        metadata: dict[str, Any] | None = None,
        ray: str | None = None,
        ray_workers: int = 0,
    ) -> IngestReport:
        """Add new files, replace changed ones, skip unchanged ones; with ``sync`` also drop documents whose
        files under ``paths`` are gone. Unreadable files are skipped with a reason; the rest goes on.
        ``metadata`` (string values) is stored with every document added or replaced, for filters.

        ``ray``: read, chunk and embed the new and changed files on a Ray cluster (``"local"`` starts a local
        Ray instance; otherwise a Ray address such as ``auto`` or ``ray://head:10001``) with ``ray_workers``
        model actors (0: one per free CPU, or per GPU). This process writes the same index format."""
        t0 = time.perf_counter()
        roots = [Path(p).expanduser() for p in paths]
        files, skipped = find_files(list(roots))
        max_bytes = int(self.config.max_file_mb * 1024 * 1024)
        with self._dir.write() as writer:
            base = writer.base_store()
            existing = {d.path: d for d in base.documents()} if base is not None else {}
            todo, unchanged = _changed_files(files, existing, skipped)
            gone = _gone_documents(existing, roots) if sync else []
            if not todo and not gone:
                return self._report(len(files), _Changes(), unchanged, skipped, t0, writer)
            if ray is not None:
                from rag.ingest.ray import ray_items

                embedder = self._embedder_for(writer.base) if writer.base else self._choose_embedder_for_files(todo)
                items = ray_items(todo, embedder, self._chunk_params(embedder), self.config, skipped, ray, ray_workers)
            else:
                items = _load_all(todo, max_bytes, skipped)
            changes = self._apply(writer, items, len(todo), gone, skipped, metadata or {})
        self._stamp = (-1, -1)  # reopen on next read
        return self._report(len(files), changes, unchanged, skipped, t0)

    def ingest_documents(
        self, documents: Iterable[Document], *, total: int | None = None, metadata: dict[str, Any] | None = None
    ) -> IngestReport:
        """Ingest documents that are not files (``Document.path`` is their unique key, e.g. ``beir:123``).
        A key already stored with the same text is skipped; with other text it is replaced."""
        t0 = time.perf_counter()
        skipped: list[SkippedFile] = []
        seen = 0
        unchanged = 0
        with self._dir.write() as writer:
            base = writer.base_store()
            existing = {d.path: d for d in base.documents()} if base is not None else {}

            def items() -> Iterator[_Item]:
                nonlocal seen, unchanged
                for doc in documents:
                    seen += 1
                    data = doc.text.encode("utf-8")
                    digest = hashlib.sha256(data).hexdigest()
                    old = existing.get(doc.path)
                    if old is not None and old.content_hash == digest:
                        unchanged += 1
                        continue
                    yield _Item(doc.path, digest, 0.0, len(data), old, doc)

            changes = self._apply(writer, items(), total, [], skipped, metadata or {})
        self._stamp = (-1, -1)
        return self._report(seen, changes, unchanged, skipped, t0)

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
            writer.commit(self._index_fields(writer))
        self._stamp = (-1, -1)
        return len(doomed)

    def _apply(
        self,
        writer: Writer,
        loaded: Iterator[_Item],
        total: int | None,
        gone: list[StoredDocument],
        skipped: list[SkippedFile],
        user_meta: dict[str, Any],
    ) -> _Changes:
        from tqdm import tqdm

        if writer.base is not None:
            embedder = self._embedder_for(writer.base)
        else:
            sample = list(itertools.islice(loaded, _AUTO_SAMPLE))
            if not sample and not gone:
                return _Changes()
            embedder = self._choose_embedder([item.doc for item in sample])
            loaded = itertools.chain(sample, loaded)
        chunk_size, overlap = self._chunk_params(embedder)
        chunker = Chunker(chunk_size, overlap, embedder.count_tokens)
        store = writer.store()
        vectors = writer.vectors(embedder.dimension)
        batch = _EmbedBatch(embedder, vectors, self.config.batch_size * _WINDOW_BATCHES)
        added = updated = chunks_removed = 0
        bar = tqdm(total=total, unit="doc", desc="ingest", disable=self.config.quiet or None, leave=False)
        try:
            for item in loaded:
                bar.update(1)
                old, doc, digest = item.old, item.doc, item.digest
                chunks = item.chunks if item.chunks is not None else chunker.split(doc)
                if not chunks:
                    skipped.append(SkippedFile(display_path(item.key), "no text to index"))
                    continue
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
                ids = store.allocate_ids("next_chunk_id", len(chunks))
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
                    chunk_ids=list(ids),
                )
                if item.vectors is not None:  # embedded elsewhere (Ray workers)
                    batch.add_embedded(list(ids), item.vectors)
                else:
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
                "chunker": {"chunk_size": chunk_size, "chunk_overlap": overlap, "unit": "embedder tokens"},
                **self._index_fields(writer),
            }
        )
        return _Changes(added, updated, len(gone), batch.total, chunks_removed, batch.embedded)

    def _chunk_params(self, embedder: Embedder) -> tuple[int, int]:
        """(chunk size, overlap) in the embedder's tokens: the configured ones, capped by what it embeds whole."""
        chunk_size = min(self.config.chunk_size, embedder.max_tokens)
        return chunk_size, min(self.config.chunk_overlap, chunk_size // 2)

    def _choose_embedder_for_files(self, todo: list[tuple[FoundFile, str, StoredDocument | None]]) -> Embedder:
        """The embedder for a new index, chosen from a sample of the files read here (``auto``)."""
        if self._embedder is not None or canonical_name(self.config.embedder) != "auto":
            return self._choose_embedder([])
        max_bytes = int(self.config.max_file_mb * 1024 * 1024)
        sample = list(itertools.islice(_load_all(todo, max_bytes, []), _AUTO_SAMPLE))
        return self._choose_embedder([item.doc for item in sample])

    def _index_policy(self, writer: Writer) -> str:
        """The index type asked for: this call's setting, else the one the index was built with, else auto."""
        base = writer.base or {}
        return self.config.index_type or str(base.get("index_policy", "auto"))

    def _index_fields(self, writer: Writer, rebuilt: bool = False) -> dict[str, Any]:
        """Settle the vector index type for the size it has now (convert or retrain when needed) and return
        the manifest fields that describe it."""
        base = writer.base or {}
        vectors = writer.vectors(int(base.get("dimension", 0)))
        policy = self._index_policy(writer)
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
        }

    def _report(
        self,
        seen: int,
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
            files_seen=seen,
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
class _Item:
    """A document to add or replace: its key (absolute path for files), content hash, stat, old version."""

    key: str
    digest: str
    mtime: float
    size: int
    old: StoredDocument | None
    doc: Document
    # Set when the document was chunked and embedded elsewhere (Ray workers): used as they are.
    chunks: list[Chunk] | None = None
    vectors: np.ndarray | None = None
    language: str | None = None


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
) -> Iterator[_Item]:
    for found, digest, old in todo:
        try:
            doc = load(found.path, max_bytes=max_bytes)
        except LoaderError as exc:
            skipped.append(SkippedFile(display_path(found.path), str(exc)))
            continue
        yield _Item(str(found.path), digest, found.mtime, found.size, old, doc)


__all__ = ["ChunkStore", "RagPipeline"]
