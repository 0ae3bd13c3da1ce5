"""The recorded questions' store (rag.index.questions): records and feedback read back by a fresh reader, a process
killed right after recording loses nothing it was told was recorded, unknown ids are refused by name, and the
index's writers (an ingest's leftover cleanup) never touch the file."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag.errors import QuestionNotFoundError
from rag.index.questions import FILENAME, QuestionLog
from rag.pipeline import RagPipeline


def test_records_and_feedback_are_read_back_by_a_fresh_reader(tmp_path: Path) -> None:
    log = QuestionLog(tmp_path)
    assert log.all() == [] and not log.path.exists()  # reading creates nothing
    a = log.record("q one?", "q one?", [3, 1], [1, 2, 3], refused=False, generation=2)
    b = log.record("q two?", "standalone two?", [], [4], refused=True, generation=2)
    log.feedback(a, True)
    log.feedback(b, True)
    fresh = QuestionLog(tmp_path)
    first, second = fresh.all()
    assert (first.id, first.cited, first.retrieved, first.helpful, first.generation) == (a, [3, 1], [1, 2, 3], True, 2)
    assert second.searched == "standalone two?" and second.refused
    assert [q.id for q in fresh.helpful()] == [a]  # a refusal cites nothing: nothing to train on
    assert fresh.feedback(a, False).helpful is False and fresh.helpful() == []
    with pytest.raises(QuestionNotFoundError, match="no recorded question 'feed'"):
        fresh.feedback("feed", True)


def test_a_killed_process_keeps_every_question_it_recorded(tmp_path: Path) -> None:
    child = textwrap.dedent(
        f"""
        import os, signal
        from rag.index.questions import QuestionLog
        log = QuestionLog({str(tmp_path)!r})
        for i in range(40):
            qid = log.record(f"question {{i}}?", f"question {{i}}?", [i], [i, i + 1], refused=False, generation=1)
            log.feedback(qid, i % 2 == 0)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    recorded = QuestionLog(tmp_path).all()
    assert [q.question for q in recorded] == [f"question {i}?" for i in range(40)]
    assert [q.helpful for q in recorded] == [i % 2 == 0 for i in range(40)]
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_ingests_and_verify_leave_the_recorded_questions_alone(fake_pipeline: object, copy_corpus: Path) -> None:
    pipeline: RagPipeline = fake_pipeline(record_questions=True)  # type: ignore[operator]
    pipeline.ingest([copy_corpus])
    qid = pipeline.ask("When was the Transformer architecture introduced?").question_id
    (copy_corpus / "late.txt").write_text("A late note about reciprocal rank fusion. " * 20, encoding="utf-8")
    pipeline.ingest([copy_corpus])  # a new generation: the writer removes what the manifest does not name
    assert [q.id for q in QuestionLog(pipeline.index_path).all()] == [qid]
    assert pipeline.verify_report().notes == [] and pipeline.verify() == []
