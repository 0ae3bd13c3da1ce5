"""The lexical (BM25) side: a tantivy index, one directory per generation, over rag's own tokens.

Each chunk is indexed as its ``rag.text.lexical.index_tokens`` (words, and identifiers whole and in parts)
joined by spaces; tantivy's analyzer only splits on the spaces, lower-cases, folds diacritics to ASCII and stems
English (Snowball), so CJK words are jieba's. Queries are the same tokens (function words dropped, as before),
OR-ed as term queries: tantivy takes their BM25 top-k with block-max WAND, so a query no longer scores every
chunk holding one of its terms (SQLite FTS5 did, which at a million chunks cost most of the hybrid latency).

Fields: ``id`` (chunk id; indexed and a fast field: hits are read back as ids), ``doc`` (document id, for
deletes and for document-level filters), ``lang`` (the chunk's language, for ``lang=`` filters) and ``tokens``.

A generation's directory starts as hard links to the previous one's files (tantivy never rewrites a segment
file; ``meta.json`` and ``.managed.json`` are replaced by rename), so staging costs no copy; the writer's
segments and merges land only in the new directory, which is fsynced before the manifest names it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rag.text.lexical import STOPWORDS, index_tokens

ENGINE = "tantivy"
ANALYZER = "rag_tokens"
_LOCKS = (".tantivy-writer.lock", ".tantivy-meta.lock")
_WRITER_HEAP = 96_000_000


def _analyzer() -> Any:
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _schema() -> Any:
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", indexed=True, fast=True)
    sb.add_integer_field("doc", indexed=True, fast=True)
    sb.add_text_field("lang", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("tokens", tokenizer_name=ANALYZER, index_option="freq")
    return sb.build()


def query_terms(text: str) -> list[str]:
    """The distinct tokens of ``text`` a query searches for, function words left out unless it has nothing else
    (the same rule as the FTS5 query of older indexes)."""
    seen = dict.fromkeys(index_tokens(text))
    return [t for t in seen if t not in STOPWORDS] or list(seen)


def copy_generation(src: Path, dst: Path) -> None:
    """``dst`` as a copy of the committed tantivy directory ``src``: hard links (a copy where links fail),
    except tantivy's lock files; the two small metadata files are copied so ``dst`` owns them."""
    dst.mkdir()
    for entry in src.iterdir():
        if entry.name in _LOCKS or not entry.is_file():
            continue
        target = dst / entry.name
        if entry.name in ("meta.json", ".managed.json"):
            shutil.copy2(entry, target)
            continue
        try:
            os.link(entry, target)
        except OSError:
            shutil.copy2(entry, target)


def fsync_tree(path: Path) -> None:
    """fsync every file of the directory ``path``, then the directory itself."""
    for entry in path.iterdir():
        if entry.is_file():
            fd = os.open(entry, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LexicalIndex:
    """One generation's tantivy index: read-only (``open``) or being written (``open(..., writable=True)``)."""

    def __init__(self, path: Path, index: Any, writable: bool) -> None:
        import tantivy

        self.path = path
        self._tantivy = tantivy
        self._index = index
        self._index.register_tokenizer(ANALYZER, _analyzer())
        self._schema = index.schema
        self._analyzer = _analyzer()
        self._writer: Any = index.writer(heap_size=_WRITER_HEAP, num_threads=1) if writable else None
        self._searcher: Any = None

    @classmethod
    def open(cls, path: Path, *, writable: bool = False) -> LexicalIndex:
        """Open the index in ``path``; ``writable`` creates an empty one where there is none."""
        import tantivy

        if writable:
            path.mkdir(exist_ok=True)
            return cls(path, tantivy.Index(_schema(), path=str(path), reuse=True), True)
        if not (path / "meta.json").is_file():
            raise FileNotFoundError(f"no lexical index in {path}")
        index = tantivy.Index.open(str(path))
        index.config_reader(reload_policy="Manual")
        return cls(path, index, False)

    # -- writing ----------------------------------------------------------------------------------
    def add(self, rows: Iterable[tuple[int, int, str, str]]) -> None:
        """Index ``(chunk id, document id, language, text)`` rows."""
        doc = self._tantivy.Document
        for cid, doc_id, language, text in rows:
            tokens = " ".join(index_tokens(text))
            self._writer.add_document(doc(id=int(cid), doc=int(doc_id), lang=language, tokens=tokens))

    def remove_document(self, doc_id: int) -> None:
        self._writer.delete_documents_by_term("doc", int(doc_id))

    def clear(self) -> None:
        """Delete every row, those added earlier in this write included (a delete applies to what came before)."""
        self._writer.delete_documents_by_query(self._tantivy.Query.all_query())

    def commit(self) -> None:
        """Commit the staged changes and wait for merges; the writer is spent afterwards."""
        self._writer.commit()
        self._writer.wait_merging_threads()
        self._writer = None
        self._searcher = None

    def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.rollback()
            self._writer = None
        self._searcher = None

    # -- reading ----------------------------------------------------------------------------------
    def searcher(self) -> Any:
        if self._searcher is None:
            self._index.reload()
            self._searcher = self._index.searcher()
        return self._searcher

    def __len__(self) -> int:
        return int(self.searcher().num_docs)

    def ids(self) -> set[int]:
        """Every chunk id held (for ``rag verify``)."""
        searcher = self.searcher()
        n = searcher.num_docs
        if not n:
            return set()
        hits = searcher.search(self._tantivy.Query.all_query(), limit=n, count=False).hits
        return {int(i) for i in searcher.fast_field_values("id", [addr for _, addr in hits])}

    def mentions(self, word: str) -> bool:
        """Whether any chunk holds ``word``, one of its parts (``gRPC``: ``grpc``, ``rpc``), or a near form of one:
        within one edit for five to seven letters, two from eight (a typo in the question, "elclusively"), or
        sharing all but the last three letters (``martyrdom`` / ``martyr``). The near forms make it err towards
        yes: ``rag.answer.turn.plan`` refuses a question over a word this says no to."""
        searcher = self.searcher()
        for part in index_tokens(word):
            if len(part) < 3:
                continue
            for term in self._analyzer.analyze(part):
                if term and self._holds(searcher, term):
                    return True
        return False

    def _holds(self, searcher: Any, term: str) -> bool:
        if searcher.doc_freq("tokens", term):
            return True
        if len(term) >= 5:
            distance = 1 if len(term) < 8 else 2
            near = self._tantivy.Query.fuzzy_term_query(self._schema, "tokens", term, distance=distance)
            if searcher.search(near, limit=1, count=False).hits:
                return True
        return len(term) >= 7 and bool(searcher.terms_with_prefix("tokens", term[: max(5, len(term) - 3)], limit=1))

    def search(
        self, text: str, k: int, doc_ids: list[int] | None = None, languages: tuple[str, ...] = ()
    ) -> list[tuple[int, float]]:
        """BM25 top-k ``(chunk id, score)`` for ``text``, higher first; ``doc_ids``/``languages`` restrict the
        search to those documents / chunk languages (inside the search, before the top-k)."""
        q = self._tantivy.Query
        occur = self._tantivy.Occur
        terms = dict.fromkeys(t for t in self._analyzer.analyze(" ".join(query_terms(text))) if t)
        if not terms or k <= 0 or doc_ids == []:
            return []
        query = q.boolean_query(
            [(occur.Should, q.term_query(self._schema, "tokens", t, index_option="freq")) for t in terms]
        )
        restrictions = []
        if doc_ids is not None:
            restrictions.append(q.term_set_query(self._schema, "doc", [int(d) for d in doc_ids]))
        if languages:
            restrictions.append(q.term_set_query(self._schema, "lang", list(languages)))
        if restrictions:  # filters score nothing: the ranking stays BM25 over the query terms
            query = q.boolean_query(
                [(occur.Must, query)] + [(occur.Must, q.const_score_query(r, 0.0)) for r in restrictions]
            )
        searcher = self.searcher()
        hits = searcher.search(query, limit=k, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("id", [addr for _, addr in hits])
        return [(int(i), float(score)) for i, (score, _) in zip(ids, hits, strict=True)]
