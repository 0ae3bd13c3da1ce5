"""`rag eval` on the shared evaluation data (../shared/data or $RAG_EVAL_DATA), skipped when it is absent.
Real default models: marked slow. Bounded to a sample of queries to keep CI time in check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rag.cli.main import main
from rag.config import RagConfig
from rag.evaluation import evaluate, held_out, load_beir

pytestmark = pytest.mark.slow

DATA = Path(os.environ.get("RAG_EVAL_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def _set(name: str) -> Path:
    folder = DATA / name
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"evaluation data {folder} not present")
    return folder


def test_eval_cli_on_xquad_english(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = _set("xquad/beir_en")
    code = main(["eval", str(folder), "--max-queries", "150", "--json", "-q", "--index", str(tmp_path / "unused")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["embedder"] == "minilm" and report["documents"] == 240
    assert report["scores"]["queries"] == 150
    assert report["scores"]["ndcg_at_10"] >= 0.9
    assert report["scores"]["recall_at_100"] >= report["scores"]["recall_at_10"] >= 0.9


def test_eval_answers_and_refusals_on_chinese(tmp_path: Path) -> None:
    folder = _set("cmrc2018/beir_trial")
    data = load_beir(folder)
    assert held_out(data) and len(held_out(data)) < len(data.corpus)
    config = RagConfig(index=tmp_path / "unused", quiet=True, generator="extractive")
    report = evaluate(folder, config, max_queries=60, qa_limit=30)
    assert report.embedder == "e5-multilingual"
    assert report.scores.ndcg_at_10 >= 0.85
    answers = report.answers
    assert answers is not None and answers.questions == 30 and answers.removed_questions > 0
    assert 0.0 < answers.f1 <= 1.0
    assert answers.refusal_when_removed is not None and answers.refusal_when_removed >= answers.refusal_rate
