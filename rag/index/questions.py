"""Questions from real use (setting ``record_questions``, off by default): each answered question with the chunks
the answer cited and those retrieved, and the feedback given on it (helpful or not). ``rag tune --from-use`` trains
on the helpful ones and gates on a held-out slice of them.

Stored in the index folder as ``questions.sqlite``, beside the generations and outside them (a commit never
replaces it; the writers' leftover cleanup never touches it), never sent anywhere. Every write is one SQLite
transaction in WAL mode with ``synchronous=FULL``: a process killed mid-write leaves the records committed before
it, and a reopened folder (a restarted server) finds them all."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rag.errors import QuestionNotFoundError

log = logging.getLogger(__name__)

FILENAME = "questions.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY,
    asked TEXT NOT NULL,
    question TEXT NOT NULL,
    searched TEXT NOT NULL,
    cited TEXT NOT NULL,
    retrieved TEXT NOT NULL,
    refused INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    helpful INTEGER,
    feedback_at TEXT
);
"""


@dataclass(frozen=True)
class RecordedQuestion:
    """One recorded question: ``searched`` is the standalone question retrieval ran on; ``cited`` and
    ``retrieved`` are chunk ids (cited ones first in citation order); ``helpful`` None: no feedback yet."""

    id: str
    question: str
    searched: str
    cited: list[int]
    retrieved: list[int]
    refused: bool
    generation: int
    asked: str
    helpful: bool | None = None


class QuestionLog:
    """The index folder's recorded questions. Cheap to construct: the file is created on the first write."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / FILENAME
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A connection whose work is one transaction: committed on success, rolled back on an error; closed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            conn = sqlite3.connect(str(self.path), timeout=30.0)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.executescript(_SCHEMA)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
                with conn:
                    yield conn
            finally:
                conn.close()

    def record(
        self,
        question: str,
        searched: str,
        cited: list[int],
        retrieved: list[int],
        *,
        refused: bool,
        generation: int,
    ) -> str:
        """Store one answered question; returns its id (what feedback names)."""
        qid = uuid.uuid4().hex[:16]
        row = (
            qid,
            datetime.now(UTC).isoformat(timespec="seconds"),
            question,
            searched or question,
            json.dumps([int(c) for c in cited]),
            json.dumps([int(c) for c in retrieved]),
            int(refused),
            int(generation),
        )
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO questions (id, asked, question, searched, cited, retrieved, refused, generation) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return qid

    def feedback(self, question_id: str, helpful: bool) -> RecordedQuestion:
        """Mark the answer to ``question_id`` helpful or not (the latest feedback counts)."""
        if not self.path.exists():
            raise QuestionNotFoundError(self._unknown(question_id))
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE questions SET helpful = ?, feedback_at = ? WHERE id = ?",
                (int(helpful), datetime.now(UTC).isoformat(timespec="seconds"), question_id),
            ).rowcount
        if not changed:
            raise QuestionNotFoundError(self._unknown(question_id))
        found = self.get(question_id)
        if found is None:  # removed in between (the file replaced by hand)
            raise QuestionNotFoundError(self._unknown(question_id))
        return found

    def _unknown(self, question_id: str) -> str:
        return (
            f"no recorded question {question_id!r} in {self.path.parent}: feedback names the question_id of an "
            "answer given while record_questions was on"
        )

    def get(self, question_id: str) -> RecordedQuestion | None:
        found = self._select("WHERE id = ?", (question_id,))
        return found[0] if found else None

    def all(self) -> list[RecordedQuestion]:
        """Every recorded question, oldest first."""
        return self._select("", ())

    def helpful(self) -> list[RecordedQuestion]:
        """The questions whose answer was marked helpful and cited something, oldest first."""
        return [q for q in self._select("WHERE helpful = 1 AND refused = 0", ()) if q.cited]

    def _select(self, where: str, params: tuple[object, ...]) -> list[RecordedQuestion]:
        if not self.path.exists():
            return []
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id, question, searched, cited, retrieved, refused, generation, asked, helpful "
                f"FROM questions {where} ORDER BY asked, rowid",
                params,
            ).fetchall()
        return [
            RecordedQuestion(
                id=str(r[0]),
                question=str(r[1]),
                searched=str(r[2]),
                cited=[int(c) for c in json.loads(r[3])],
                retrieved=[int(c) for c in json.loads(r[4])],
                refused=bool(r[5]),
                generation=int(r[6]),
                asked=str(r[7]),
                helpful=None if r[8] is None else bool(r[8]),
            )
            for r in rows
        ]
