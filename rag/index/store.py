"""ChunkStore: documents and chunks in one SQLite file (plain ``sqlite3``), and the lexical index beside it.

Chunk ids come from a counter in the ``meta`` table that only grows, so an id is never reused after a
delete; the same ids key the FAISS vectors and the lexical index.

The lexical index is a tantivy directory per generation (``rag.index.lexical``), given to the store by the
index folder. Indexes written before it kept BM25 in this file's FTS5 table ``chunks_fts``: such an index is
still searched through FTS5 until its next write converts it (see ``IndexDir`` / ``Writer.store``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.filters import Filters
from rag.text.lexical import fts_query
from rag.types import Chunk

if TYPE_CHECKING:
    from rag.index.lexical import LexicalIndex

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    mtime REAL NOT NULL,
    size INTEGER NOT NULL,
    file_type TEXT NOT NULL,
    language TEXT NOT NULL,
    title TEXT,
    n_chunks INTEGER NOT NULL,
    added_at TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    user_meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc_id INTEGER NOT NULL REFERENCES documents(id),
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    page INTEGER,
    language TEXT NOT NULL,
    section TEXT,
    display TEXT,
    heading TEXT
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
"""
# The lexical table of indexes made before the tantivy engine (read through FTS5 until converted): each chunk's
# ``tokenize`` tokens joined by spaces, rowid = chunk id.
FTS5_TABLE = "chunks_fts"
FTS5_SCHEMA = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS5_TABLE} "
    "USING fts5(tokens, tokenize='porter unicode61 remove_diacritics 2')"
)


@dataclass(frozen=True)
class StoredDocument:
    id: int
    path: str
    content_hash: str
    mtime: float
    size: int
    file_type: str
    language: str
    n_chunks: int


class Database:
    """A SQLite connection with ``execute(sql, params)``: all the store needs (sqlite-utils, used before, imports
    pandas when it is installed: a second of every cold start)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> sqlite3.Cursor:
        return self.conn.execute(sql, tuple(params) if params else ())


_DOCUMENT_COLUMNS = (
    "id, path, content_hash, mtime, size, file_type, language, title, n_chunks, added_at, metadata, user_meta"
)
_CHUNK_COLUMNS = 'id, doc_id, ord, text, start, "end", start_line, end_line, page, language, section, display, heading'


def _indexed(text: str, display: str | None, heading: str | None) -> str:
    """``Chunk.indexed`` from a chunk row's columns."""
    return Chunk(text, 0, 0, 0, 0, display=display or "", heading=heading or "").indexed


class ChunkStore:
    """One SQLite file. Open read-only for queries, read-write inside an index write transaction."""

    def __init__(self, path: Path, *, readonly: bool = False, lexical: LexicalIndex | None = None) -> None:
        self.path = path
        self.lexical = lexical
        if readonly:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            conn = sqlite3.connect(str(path), check_same_thread=False)
            conn.executescript(SCHEMA)
        self.db = Database(conn)
        # Indexes written before chunks had a ``section`` (slide, sheet, chapter), a ``display`` text or a ``heading``
        # get the columns at their next write; read-only, a missing column reads as NULL.
        columns = {row[1] for row in conn.execute("PRAGMA table_info(chunks)")}
        for column in ("section", "display", "heading"):
            if not readonly and column not in columns:
                conn.execute(f"ALTER TABLE chunks ADD COLUMN {column} TEXT")
        have = columns if readonly else {*columns, "section", "display", "heading"}
        self._optional = ", ".join(f"c.{c}" if c in have else "NULL" for c in ("section", "display", "heading"))

    def close(self) -> None:
        if self.lexical is not None:
            self.lexical.close()
        self.db.conn.close()

    def has_fts5(self) -> bool:
        """True for a store made before the tantivy engine (its BM25 rows in the FTS5 table)."""
        row = self.db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [FTS5_TABLE]).fetchone()
        return row is not None

    def _lexical(self) -> LexicalIndex:
        if self.lexical is None:
            raise RuntimeError(f"{self.path}: opened without its lexical index; open it through IndexDir")
        return self.lexical

    # -- counters ---------------------------------------------------------------------------------
    def _meta_int(self, key: str, default: int) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return int(row[0]) if row else default

    def allocate_ids(self, key: str, n: int) -> range:
        """Reserve ``n`` fresh ids from counter ``key``; ids handed out are never handed out again."""
        first = self._meta_int(key, 1)
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, str(first + n)])
        return range(first, first + n)

    # -- documents --------------------------------------------------------------------------------
    def documents(self) -> list[StoredDocument]:
        rows = self.db.execute(
            "SELECT id, path, content_hash, mtime, size, file_type, language, n_chunks FROM documents ORDER BY path"
        ).fetchall()
        return [StoredDocument(*row) for row in rows]

    def add_document(
        self,
        *,
        path: str,
        content_hash: str,
        mtime: float,
        size: int,
        file_type: str,
        language: str,
        title: str | None,
        metadata: dict[str, Any],
        chunks: Sequence[Chunk],
        user_meta: dict[str, Any] | None = None,
        chunk_ids: Sequence[int],
    ) -> int:
        doc_id = self.allocate_ids("next_doc_id", 1)[0]
        self.db.execute(
            f"INSERT INTO documents ({_DOCUMENT_COLUMNS}) VALUES ({','.join('?' * 12)})",
            [
                doc_id,
                path,
                content_hash,
                mtime,
                size,
                file_type,
                language,
                title,
                len(chunks),
                datetime.now(UTC).isoformat(timespec="seconds"),
                json.dumps(metadata, ensure_ascii=False, default=str),
                json.dumps(user_meta or {}, ensure_ascii=False, default=str),
            ],
        )
        from rag.text.langdetect import detect_language

        languages = [detect_language(c.shown) for c in chunks]
        self.db.conn.executemany(
            f"INSERT INTO chunks ({_CHUNK_COLUMNS}) VALUES ({','.join('?' * 13)})",
            (
                (
                    *(cid, doc_id, i, c.text, c.start, c.end, c.start_line, c.end_line, c.page, language),
                    *(c.section, c.display or None, c.heading or None),
                )
                for i, (cid, c, language) in enumerate(zip(chunk_ids, chunks, languages, strict=True))
            ),
        )
        self._lexical().add(
            (cid, doc_id, language, c.indexed) for cid, c, language in zip(chunk_ids, chunks, languages, strict=True)
        )
        return doc_id

    def rebuild_lexical(self) -> None:
        """Re-tokenize every chunk into the lexical index (after the tokenizer or the engine changed); an FTS5
        table left by an older rag is dropped."""
        lexical = self._lexical()
        lexical.clear()
        rows = self.db.execute("SELECT id, doc_id, language, text, display, heading FROM chunks ORDER BY id")
        lexical.add(
            (int(cid), int(doc), str(lang), _indexed(text, display, heading))
            for cid, doc, lang, text, display, heading in rows
        )
        if self.has_fts5():
            self.db.execute(f"DROP TABLE {FTS5_TABLE}")

    def remove_document(self, doc_id: int) -> list[int]:
        """Delete a document, its chunks and their lexical rows; returns the removed chunk ids."""
        ids = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE doc_id = ?", [doc_id]).fetchall()]
        self._lexical().remove_document(doc_id)
        self.db.execute("DELETE FROM chunks WHERE doc_id = ?", [doc_id])
        self.db.execute("DELETE FROM documents WHERE id = ?", [doc_id])
        return ids

    def language_counts(self) -> dict[str, int]:
        """How many documents each language has (the language detected at ingest)."""
        rows = self.db.execute("SELECT language, count(*) FROM documents GROUP BY language").fetchall()
        return {str(language): int(n) for language, n in rows}

    def document_with_hash(self, content_hash: str) -> StoredDocument | None:
        row = self.db.execute(
            "SELECT id, path, content_hash, mtime, size, file_type, language, n_chunks FROM documents "
            "WHERE content_hash = ? LIMIT 1",
            [content_hash],
        ).fetchone()
        return StoredDocument(*row) if row else None

    def chunk_texts_and_ids(self, doc: StoredDocument) -> list[tuple[int, str]]:
        """(id, embedded text) of a document's chunks (``Chunk.indexed``)."""
        rows = self.db.execute("SELECT id, text, display, heading FROM chunks WHERE doc_id = ?", [doc.id])
        return [(r[0], _indexed(r[1], r[2], r[3])) for r in rows]

    def document_text(self, doc_id: int) -> str:
        """A document's text rebuilt from its chunks, so offsets and line numbers are those of its citations: each
        chunk's text at its span (overlaps written once), the gaps between chunks (the whitespace the chunker
        strips) filled with as many line breaks as the chunks' line numbers say, then spaces. Whitespace after
        the last chunk is not stored; a document without chunks is empty."""
        rows = self.db.execute(
            'SELECT text, start, "end", start_line, end_line FROM chunks WHERE doc_id = ? ORDER BY start, "end"',
            [doc_id],
        ).fetchall()
        parts: list[str] = []
        pos, line = 0, 1  # written up to offset pos, which lies on line `line`
        for text, start, end, start_line, end_line in rows:
            if end <= pos:
                continue
            if start >= pos:
                breaks = min(start - pos, max(0, start_line - line))
                parts.append("\n" * breaks + " " * (start - pos - breaks) + text)
            else:
                parts.append(text[pos - start :])
            pos, line = end, end_line
        return "".join(parts)

    # -- chunks -----------------------------------------------------------------------------------
    def chunk_ids(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM chunks ORDER BY id").fetchall()]

    def count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0])

    def chunks_by_ids(self, ids: Iterable[int]) -> dict[int, Chunk]:
        wanted = [int(i) for i in ids]
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self.db.execute(
            'SELECT c.id, c.text, c.start, c."end", c.start_line, c.end_line, c.page, d.path, c.language, '
            f"d.file_type, {self._optional} FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            wanted,
        ).fetchall()
        return {
            row[0]: Chunk(
                id=row[0],
                text=row[1],
                start=row[2],
                end=row[3],
                start_line=row[4],
                end_line=row[5],
                page=row[6],
                source=row[7],
                metadata={"language": row[8], "file_type": row[9]},
                section=row[10],
                display=row[11] or "",
                heading=row[12] or "",
            )
            for row in rows
        }

    def lexical_search(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """BM25 top-k (chunk id, score) for ``query`` among the chunks that pass ``filters``; higher is better."""
        if self.lexical is None:
            return self.fts5_search(query, k, filters)
        doc_ids: list[int] | None = None
        languages: tuple[str, ...] = ()
        if filters:
            doc_query = filters.document_sql()
            if doc_query is not None:
                doc_ids = [int(r[0]) for r in self.db.execute(*doc_query).fetchall()]
            languages = filters.language
        return self.lexical.search(query, k, doc_ids, languages)

    def mentions(self, word: str) -> bool:
        """``LexicalIndex.mentions``; an index made before the tantivy engine answers yes (it cannot tell)."""
        return self.lexical is None or self.lexical.mentions(word)

    def fts5_search(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """``lexical_search`` through the FTS5 table of an index made before the tantivy engine."""
        expr = fts_query(query)
        if not expr:
            return []
        sql = "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?"
        params: list[Any] = [expr]
        if filters:
            subquery, sub_params = filters.sql()
            sql += f" AND rowid IN ({subquery})"
            params.extend(sub_params)
        rows = self.db.execute(sql + " ORDER BY s LIMIT ?", [*params, k]).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def filtered_ids(self, filters: Filters) -> list[int]:
        subquery, params = filters.sql()
        return [r[0] for r in self.db.execute(subquery, params).fetchall()]
