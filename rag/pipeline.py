"""RagPipeline: the one object the CLI, the servers, notebooks and user code talk to.

It wires the stages and owns what they share: the lazily loaded models, the current index snapshot (reopened when
a writer commits) and the query-vector cache. Each verb delegates: ingest to ``rag.ingest`` (plan, then writer),
retrieval to ``rag.retrieve``, answers to ``rag.answer``, storage to ``rag.index``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.answer.slot import GeneratorSlot
from rag.config import RagConfig
from rag.embed.slot import EmbedderSlot
from rag.errors import DocumentNotFoundError, RagError
from rag.filters import Filters
from rag.index.folder import IndexDir, Snapshot
from rag.retrieve.cache import QueryCache
from rag.retrieve.search import retrieve as _retrieve
from rag.text.langdetect import chinese_script, detect_language, to_simplified
from rag.types import Answer, Document, DoneEvent, Feedback, Hit, IndexInfo, IngestReport, StreamEvent, TuneReport

# The answering, ingesting, reranking and maintenance stages are imported by the methods that use them: a
# `rag search` (or a server that only retrieves) never pays for them at start (see benchmarks/cold_start.py).
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from rag.answer.conversation import History
    from rag.answer.generators.base import Generator
    from rag.answer.turn import REFUSALS as REFUSALS
    from rag.answer.turn import Turn
    from rag.embed.base import Embedder
    from rag.index.store import StoredDocument
    from rag.index.verify import VerifyReport
    from rag.ingest.run import Ingester
    from rag.retrieve.rerank import CrossEncoderReranker
    from rag.tune.run import TuneOptions

log = logging.getLogger(__name__)


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
        self._embedders = EmbedderSlot(lambda: self.config, self._dir.path, embedder)
        self._generators = GeneratorSlot(lambda: self.config, generator)
        self._snapshot: Snapshot | None = None
        self._stamp: tuple[int, int] = (-1, -1)
        self._lock = threading.RLock()
        self._rerank_model: CrossEncoderReranker | None = None
        self._queries = QueryCache()

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
        from rag.ingest.loaders import is_supported

        return is_supported(filename)

    # -- models -----------------------------------------------------------------------------------
    def generator(self) -> Generator:
        return self._generators.get()

    def reload_generator(self) -> None:
        """Forget the generator: the next question builds the one ``config`` names (after it was replaced)."""
        self._generators.reset()

    @property
    def models_loaded(self) -> bool:
        """Whether the embedder and the generator have been set up (by ``warm_up`` or a first question)."""
        return self._embedders.loaded is not None and self._generators.loaded is not None

    def warm_up(self) -> None:
        """Load the index's embedder (when an index exists), jieba and the generator now (``Generator.warm_up``)."""
        from rag.text.lexical import load_tokenizer

        if self._dir.exists():
            self._embedders.for_index(self._current().manifest).embed_query("warm up")
        load_tokenizer()
        self._generators.warm()

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
        return self._dir.describe(self._current())

    def verify(self) -> list[str]:
        """Consistency problems of the current index (empty list: consistent). Harmless leftovers, such as the
        files of an interrupted write, are not problems: ``verify_report`` lists them as notes."""
        return self.verify_report().problems

    def verify_report(self) -> VerifyReport:
        """Consistency of the current index: ``problems`` (damage: exit 1 in ``rag verify``) and ``notes``."""
        from rag.index.verify import check

        return check(self._current(), self._dir.path)

    def documents(self) -> list[StoredDocument]:
        return self._current().store.documents()

    def document_text(self, path: str) -> str:
        """The text of the stored document at ``path`` (as ``documents()`` lists it), rebuilt from its chunks: its
        character offsets and line numbers are those of its passages and citations (``ChunkStore.document_text``)."""
        snap = self._current()
        doc = next((d for d in snap.store.documents() if d.path == path), None)
        if doc is None:
            raise DocumentNotFoundError(
                f"no document {path!r} in the index {self._dir.path}; documents() lists the stored paths"
            )
        return snap.store.document_text(doc.id)

    def retrieve(
        self,
        question: str,
        k: int | None = None,
        *,
        filters: Filters | dict[str, Any] | None = None,
        across_languages: bool = False,
    ) -> list[Hit]:
        """Top-k passages for ``question`` (hybrid dense + BM25 by default, then the reranker when one is
        configured), best first. ``filters`` are applied inside the searches, before top-k. ``across_languages``:
        a question in a language that holds under half of the documents is also searched translated by the
        generator (``ask`` does this; it loads the generator)."""
        hits = self._retrieve(question, k, filters)
        if across_languages:
            hits, _ = self._across_languages(question, detect_language(question), hits, k, filters)
        return hits

    def _retrieve(self, question: str, k: int | None, filters: Filters | dict[str, Any] | None) -> list[Hit]:
        if not question or not question.strip():
            raise RagError("the question is empty; ask something")
        if isinstance(filters, dict):
            filters = Filters.from_mapping(filters)
        settings = self.config.retrieve
        k = k or settings.top_k
        snap, vector = self._snapshot_and_vector(question)
        reranker = self._reranker()
        hits = _retrieve(
            snap,
            vector,
            question,
            max(k, settings.rerank_candidates) if reranker else k,
            mode=settings.retrieval,
            rrf_k=settings.rrf_k,
            dense_weight=settings.dense_weight,
            lexical_weight=settings.lexical_weight,
            filters=filters,
        )
        return reranker.rerank(question, hits, k) if reranker else hits

    def _snapshot_and_vector(self, question: str) -> tuple[Snapshot, NDArray[np.float32]]:
        """The current generation and the question's vector. On a pipeline's first question both are slow and
        independent (index files opened; the embedder loaded and run for the first time), so the question is
        embedded in a thread meanwhile: the embedding engines run outside the GIL. Cuts a cold `rag search`."""
        if self._snapshot is not None:
            snap = self._current()
            return snap, self._queries.vector(self._embedders.for_index(snap.manifest), question)
        manifest = self._dir.read_manifest()
        embedder = self._embedders.for_index(manifest)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="rag-first-query") as pool:
            future = pool.submit(self._queries.vector, embedder, question)
            snap = self._current()
            vector = future.result()
        if snap.manifest["embedder"] != manifest["embedder"]:  # a writer replaced the index in between
            vector = self._queries.vector(self._embedders.for_index(snap.manifest), question)
        return snap, vector

    def prime_queries(self, questions: list[str], batch_size: int = 64) -> None:
        """Embed many questions in batches ahead of ``retrieve`` (evaluations, benchmarks): much faster than
        one at a time. Keeps at most the cache's size."""
        self._queries.prime(self._embedders.for_index(self._current().manifest), questions, batch_size)

    def _reranker(self) -> CrossEncoderReranker | None:
        spec = self.config.retrieve.rerank
        if not spec:
            return None
        with self._lock:
            if self._rerank_model is None or self._rerank_model.spec != spec:
                from rag.retrieve.rerank import CrossEncoderReranker

                self._rerank_model = CrossEncoderReranker(spec)
            return self._rerank_model

    def min_score(self, language: str = "en") -> float:
        """Relevance threshold (cosine) for a question in ``language``: the configured one, else the model's."""
        if self.config.retrieve.min_score is not None:
            return self.config.retrieve.min_score
        return self._embedders.for_index(self._current().manifest).default_min_score(language)

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
        from rag.answer.turn import answer

        return self._recorded(answer(self._turn(question, k, history, filters)))

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
        from rag.answer.turn import stream

        for event in stream(self._turn(question, k, history, filters)):
            yield DoneEvent(self._recorded(event.answer)) if isinstance(event, DoneEvent) else event

    # -- real use ---------------------------------------------------------------------------------
    def _recorded(self, answer: Answer) -> Answer:
        """``answer`` with the id it was recorded under, when ``record_questions`` is on (else unchanged): the
        question searched, the chunks cited (in citation order) and those retrieved, in the index folder."""
        if not self.config.answer.record_questions:
            return answer
        import dataclasses

        from rag.index.questions import QuestionLog

        retrieved = [h.chunk.id for h in answer.passages if h.chunk.id is not None]
        cited = [
            answer.passages[c.number - 1].chunk.id
            for c in answer.citations
            if 0 < c.number <= len(answer.passages) and answer.passages[c.number - 1].chunk.id is not None
        ]
        qid = QuestionLog(self._dir.path).record(
            answer.question,
            answer.standalone_question or answer.question,
            [int(c) for c in dict.fromkeys(cited) if c is not None],
            [int(c) for c in retrieved if c is not None],
            refused=answer.refused,
            generation=self._current().generation,
        )
        return dataclasses.replace(answer, question_id=qid)

    def feedback(self, question_id: str, helpful: bool) -> Feedback:
        """Record whether the answer to the recorded question ``question_id`` (``Answer.question_id``) helped;
        the latest feedback on a question counts. ``rag tune --from-use`` trains on the helpful ones."""
        from rag.errors import QuestionNotFoundError
        from rag.index.questions import QuestionLog

        try:
            found = QuestionLog(self._dir.path).feedback(question_id, helpful)
        except QuestionNotFoundError as exc:
            if self.config.answer.record_questions:
                raise
            raise QuestionNotFoundError(f"{exc} (record_questions is off: set record_questions = true)") from None
        return Feedback(question_id=found.id, question=found.question, helpful=bool(found.helpful))

    def _turn(
        self, question: str, k: int | None, history: History | None, filters: Filters | dict[str, Any] | None
    ) -> Turn:
        """Rewrite a follow-up, retrieve, and plan the answer (language detected once, here)."""
        from rag.answer.conversation import standalone_question
        from rag.answer.turn import plan

        started = time.perf_counter()
        if not question or not question.strip():
            raise RagError("the question is empty; ask something")
        language = detect_language(question)
        standalone = standalone_question(question, history, self.generator() if history else None, language)
        hits = self.retrieve(standalone, k, filters=filters)
        if language == "zh" and chinese_script(standalone) == "Hant":
            # A Traditional question over documents in Simplified characters (or the reverse) shares neither their
            # words nor, with E5, quite their vectors: it is also asked in Simplified characters, and the reading
            # whose best passage is closer is kept (the refusal, if any, stays in the question's script).
            folded = to_simplified(standalone)
            folded_hits = self.retrieve(folded, k, filters=filters)
            if _best(folded_hits) > _best(hits):
                standalone, hits = folded, folded_hits
        hits, translated = self._across_languages(standalone, language, hits, k, filters)
        threshold, settings = self.min_score(language), self.config.answer
        return plan(
            question, standalone, language, hits, threshold, self.generator, settings, started=started,
            translated=translated, mentions=self._current().store.mentions,
        )  # fmt: skip

    def _across_languages(
        self, question: str, language: str, hits: list[Hit], k: int | None, filters: Filters | dict[str, Any] | None
    ) -> tuple[list[Hit], str]:
        """``hits`` fused with those of the question translated into the index's main language, when the
        question's language is the smaller part of the index (``rag.answer.translate``; off with
        ``translate_questions = false``), and the translation ("" when there is none)."""
        from rag.answer.translate import target_language, translated
        from rag.retrieve.search import fuse

        if not self.config.answer.translate_questions:
            return hits, ""
        target = target_language(language, self._current().store.language_counts())
        if target is None:
            return hits, ""
        other = translated(question, target, self.generator())
        if not other or other == question:
            return hits, ""
        found = self._retrieve(other, k, filters)
        return fuse([hits, found], k or self.config.retrieve.top_k, self.config.retrieve.rrf_k), other

    # -- writing ----------------------------------------------------------------------------------
    def _ingester(self) -> Ingester:
        from rag.ingest.run import Ingester

        return Ingester(self._dir, self.config, self._embedders)

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
        try:
            return self._ingester().files(paths, sync=sync, metadata=metadata or {}, ray=ray, ray_workers=ray_workers)
        finally:
            self._stamp = (-1, -1)  # reopen on next read

    def ingest_changes(
        self,
        changed: Iterable[str | Path],
        roots: Iterable[str | Path],
        *,
        metadata: dict[str, Any] | None = None,
    ) -> IngestReport:
        """Apply what a file watcher saw: ``changed`` paths (files or folders, present or gone) under the watched
        ``roots``. One commit at most (none when nothing changed).

        Present files and folders are ingested as a folder walk of ``roots`` would find them: folders walked,
        hidden entries, files of unsupported types and the index folder itself left out, paths outside every
        root ignored. Documents stored at or under a changed path whose file no longer exists are removed:
        ``ingest(..., sync=True)`` limited to the changed paths, so a rename is a remove plus an add that
        reuses the stored vectors. ``ingest_changes(roots, roots)`` is a full sync of the roots."""
        try:
            return self._ingester().changes(changed, roots, metadata=metadata or {})
        finally:
            self._stamp = (-1, -1)

    def ingest_documents(
        self, documents: Iterable[Document], *, total: int | None = None, metadata: dict[str, Any] | None = None
    ) -> IngestReport:
        """Ingest documents that are not files (``Document.path`` is their unique key, e.g. ``beir:123``).
        A key already stored with the same text is skipped; with other text it is replaced."""
        try:
            return self._ingester().documents(documents, total=total, metadata=metadata or {})
        finally:
            self._stamp = (-1, -1)

    def followed_links(self, folders: list[Path]) -> tuple[list[Path], list[Path]]:
        """What an ingest reaches through symlinks out of ``folders`` (folders, files; none without follow_symlinks)."""
        if not self.config.ingest.follow_symlinks:
            return [], []
        from rag.ingest.discovery import followed_links

        return followed_links(folders, self.index_path.expanduser().resolve())

    def remove(self, paths: Iterable[str | Path]) -> int:
        """Delete the documents at ``paths`` (files, or every document under a folder); returns how many."""
        try:
            return self._ingester().remove(paths)
        finally:
            self._stamp = (-1, -1)

    def tune(self, options: TuneOptions | None = None, **settings: Any) -> TuneReport:
        """Adapt the index's embedder to its documents (``rag tune``): training pairs (``pairs_file``, else
        questions the generator writes for sampled chunks, else inverse-cloze pairs), hard negatives from the
        index, a few minutes of training, and held-out scores before and after. With ``apply=True`` a model better
        by ``margin`` is saved in the index folder and every chunk re-embedded into a new generation (atomic:
        questions keep using the old one until the commit); later ingests and questions use it. The held-out check
        uses real questions wherever there are some (the user's pairs or their dev split, or questions recorded with
        ``record_questions``); a model judged on generated or cloze pairs alone is never applied unless
        ``accept_proxy=True``. ``from_use=True`` trains on the recorded questions whose answers were marked helpful.
        ``settings``: fields of ``TuneOptions`` (``max_pairs=``, ``apply=``...) and of its ``TrainSettings``
        (``epochs=``, ``max_minutes=``...) when ``options`` is not given."""
        from rag.tune.run import TuneOptions
        from rag.tune.run import tune as _tune

        options = options or TuneOptions.from_settings(settings, quiet=self.config.quiet)
        snap = self._current()
        embedder = self._embedders.for_index(snap.manifest)

        def generator() -> Generator | None:
            return self.generator()

        try:
            report, serving = _tune(self._dir, snap, embedder, generator, self._embedders.tuned, options)
        finally:
            self._stamp = (-1, -1)
        if serving is not None:
            self._embedders.serve(serving)
            self._queries = QueryCache()  # vectors of the old model
        return report

    def compact(self) -> IndexInfo:
        """Rewrite the index as a new generation: vectors rebuilt from their ids (an IVF retrained, parameters
        retuned), the lexical index re-tokenized if its tokenizer is older, SQLite vacuumed."""
        from rag.index.policy import compact

        compact(self._dir, self.config.ingest.index_type)
        self._stamp = (-1, -1)
        return self.info()

    def close(self) -> None:
        with self._lock:
            if self._snapshot is not None:
                self._snapshot.close()
                self._snapshot = None

    def __enter__(self) -> RagPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _best(hits: list[Hit]) -> float:
    """The similarity of the closest passage (-1 when none)."""
    return max((h.similarity for h in hits), default=-1.0)


def __getattr__(name: str) -> Any:
    if name == "REFUSALS":  # re-exported from rag.answer.turn, imported only when asked for
        from rag.answer.turn import REFUSALS

        return REFUSALS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["REFUSALS", "RagPipeline"]
