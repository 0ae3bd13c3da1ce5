"""The gate of `rag tune` (issue 37): proxy-only pairs are reported, never applied without --accept-proxy; questions
recorded in real use (record_questions) survive a reopen and train `--from-use`; a tuned model that loses on the
held-out real questions is not applied. On the tiny random model built in the test (and the fakes for recording)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main as cli_main
from rag.config import RagConfig
from rag.errors import RagError
from rag.index.questions import QuestionLog
from rag.pipeline import RagPipeline
from rag.testing import EchoGenerator
from rag.tune import pairs as tp
from rag.tune import run
from rag.types import TuneScores

# Questions whose words the sample corpus holds (BM25 finds their passages with the tiny random embedder too).
QUESTIONS = [
    "How does BM25 rank documents by term frequency?",
    "What is reciprocal rank fusion in hybrid search?",
    "How many attention heads does the base Transformer use?",
    "What does retrieval-augmented generation add to a language model?",
    "How is recall measured in retrieval evaluation?",
    "What is subword tokenization with byte pair encoding?",
    "Who introduced the Transformer architecture?",
    "How do small language models differ from large ones?",
    "What are the stages of a retrieval evaluation?",
    "How are dense vectors searched with FAISS?",
    "What is the history of language models before neural networks?",
    "Why does BM25 saturate repeated terms?",
    "What is nDCG in retrieval evaluation?",
    "What does the encoder of the Transformer do?",
    "How does retrieval-augmented generation cite its sources?",
    "What is a byte-level tokenizer?",
    "What did n-gram language models count?",
    "How does fine-tuning differ from prompting?",
    "What is the decoder of the Transformer?",
    "How is a passage chunked before it is embedded?",
]


def _files(index: Path) -> dict[str, bytes]:
    files = (p for p in index.rglob("*") if p.is_file() and p.name != "write.lock")
    return {str(p.relative_to(index)): p.read_bytes() for p in files}


def _index_files(index: Path) -> dict[str, bytes]:
    """The index's own files (the recorded questions left out: asking writes them)."""
    return {k: v for k, v in _files(index).items() if not k.startswith(QuestionLog(index).path.name)}


def _recorded(index: Path, questions: list[str], helpful: bool = True) -> list[str]:
    """Ask ``questions`` with record_questions on, mark every answer; the ids."""
    config = RagConfig(
        index=index, quiet=True, record_questions=True, min_score=-1.0, min_coverage=0.0, refuse_unmentioned=False,
        translate_questions=False,
    )  # fmt: skip
    ids = []
    with RagPipeline(config, generator=EchoGenerator()) as p:
        for q in questions:
            answer = p.ask(q)
            assert answer.question_id and not answer.refused and answer.citations
            assert p.feedback(answer.question_id, helpful).helpful is helpful
            ids.append(answer.question_id)
    return ids


# -- proxy pairs ------------------------------------------------------------------------------------------------
def test_a_proxy_only_tune_is_reported_but_not_applied_by_default(tiny_index: Path) -> None:
    before = _files(tiny_index)
    with RagPipeline(RagConfig(index=tiny_index, quiet=True), generator=EchoGenerator()) as p:
        # margin -1: "better" whatever the scores, so only the proxy rule can keep it from being applied
        report = p.tune(pairs_from="cloze", apply=True, margin=-1.0, max_steps=2, batch_size=4)
    assert report.better and not report.applied and report.proxy_gate
    assert report.held_out_source == "cloze" and report.generation == 0
    assert "proxy pairs do not predict real questions" in report.reason
    assert "0.846 -> 0.878" in report.reason and "0.672 -> 0.652" in report.reason and "0.728 -> 0.720" in report.reason
    assert "--apply --accept-proxy" in report.reason
    assert _files(tiny_index) == before


def test_accept_proxy_applies_a_proxy_gated_model(tiny_index: Path) -> None:
    with RagPipeline(RagConfig(index=tiny_index, quiet=True), generator=EchoGenerator()) as p:
        generation = p.info().generation
        report = p.tune(pairs_from="cloze", apply=True, accept_proxy=True, margin=-1.0, max_steps=2, batch_size=4)
        assert report.applied and report.proxy_gate and p.info().generation == generation + 1
        assert "Warning: proxy pairs do not predict real questions" in report.reason
        assert p.info().tuned is not None and p.info().tuned["held_out_source"] == "cloze"


def test_cli_says_the_proxy_gate_and_needs_accept_proxy(tiny_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tune", "--index", str(tiny_index), "--pairs-from", "cloze", "--margin", "-1", "--apply", "-q"]
    assert cli_main([*argv, "--max-pairs", "12", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "(cloze, a proxy)" in out and "not applied" in out and "--accept-proxy" in out
    assert cli_main([*argv, "--max-pairs", "12", "--batch-size", "4", "--accept-proxy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["applied"] is True


# -- recorded questions -----------------------------------------------------------------------------------------
def test_recorded_questions_and_feedback_survive_a_reopen(tiny_index: Path) -> None:
    ids = _recorded(tiny_index, QUESTIONS[:3])
    with RagPipeline(RagConfig(index=tiny_index, quiet=True, record_questions=True)) as p:
        assert p.feedback(ids[1], False).helpful is False  # the latest feedback counts
    log = QuestionLog(tiny_index)  # a fresh reader: what a restarted server sees
    found = {q.id: q for q in log.all()}
    assert list(found) == ids
    assert [found[i].helpful for i in ids] == [True, False, True]
    assert [q.id for q in log.helpful()] == [ids[0], ids[2]]
    first = found[ids[0]]
    assert first.question == QUESTIONS[0] and first.cited and set(first.cited) <= set(first.retrieved)
    assert len(first.retrieved) > len(first.cited)  # what was retrieved and not cited: the hard negatives


def test_recording_is_off_by_default_and_feedback_then_says_how_to_turn_it_on(tiny_index: Path) -> None:
    with RagPipeline(RagConfig(index=tiny_index, quiet=True), generator=EchoGenerator()) as p:
        assert p.ask(QUESTIONS[0]).question_id == ""
        with pytest.raises(RagError, match=r"no recorded question 'abc123'.*record_questions is off"):
            p.feedback("abc123", True)
    assert not QuestionLog(tiny_index).path.exists()


def test_recorded_pairs_take_cited_passages_as_positives_and_uncited_ones_as_negatives(tiny_index: Path) -> None:
    _recorded(tiny_index, QUESTIONS[:4])
    with RagPipeline(RagConfig(index=tiny_index, quiet=True)) as p:
        store = p._current().store
        questions = QuestionLog(tiny_index).helpful()
        pairs = tp.recorded(questions, store)
        assert len(pairs) == sum(len(q.cited) for q in questions)
        for pair in pairs:
            assert pair.chunk_id is not None
            assert store.chunks_by_ids([pair.chunk_id])[pair.chunk_id].text == pair.passage
            question = next(q for q in questions if q.searched == pair.query)
            assert pair.chunk_id in question.cited
            if pair.negative_id is not None:
                assert pair.negative_id in question.retrieved and pair.negative_id not in question.cited
                assert store.chunks_by_ids([pair.negative_id])[pair.negative_id].source != pair.doc


def test_from_use_trains_on_helpful_recorded_questions_and_gates_on_held_out_ones(tiny_index: Path) -> None:
    _recorded(tiny_index, QUESTIONS)
    _recorded(tiny_index, ["What is a vector index?"], helpful=False)  # not helpful: not trained on
    helpful = QuestionLog(tiny_index).helpful()
    with RagPipeline(RagConfig(index=tiny_index, quiet=True)) as p:
        generation = p.info().generation
        report = p.tune(from_use=True, apply=True, margin=-1.0, max_steps=2, batch_size=4)
        assert report.pairs_source == "recorded" and report.held_out_source == "recorded" and not report.proxy_gate
        assert report.applied and p.info().generation == generation + 1  # a real gate: no --accept-proxy needed
        assert report.learning_rate == 1e-4  # real questions take the user's-pairs recipe
        assert len(helpful) == len(QUESTIONS) and all(len(q.cited) == 1 for q in helpful)  # the echo cites [1]
        assert report.before.queries == report.held_out == round(len(QUESTIONS) * run.RECORDED_HELD_OUT)
        assert report.pairs == len(QUESTIONS) - report.held_out


def test_from_use_without_recorded_questions_says_how_to_record_them(tiny_index: Path) -> None:
    with (
        RagPipeline(RagConfig(index=tiny_index, quiet=True)) as p,
        pytest.raises(RagError, match=r"no recorded question with a helpful answer.*record_questions = true"),
    ):
        p.tune(from_use=True, apply=True)


def test_proxy_pairs_are_gated_on_recorded_questions_when_there_are_some(tiny_index: Path) -> None:
    _recorded(tiny_index, QUESTIONS[: run.MIN_RECORDED_GATE])
    with RagPipeline(RagConfig(index=tiny_index, quiet=True), generator=EchoGenerator()) as p:
        report = p.tune(pairs_from="cloze", apply=True, margin=-1.0, max_steps=2, batch_size=4)
    assert report.pairs_source == "cloze" and report.held_out_source == "recorded"
    assert report.held_out == run.MIN_RECORDED_GATE and not report.proxy_gate and report.applied


# -- the rule: hybrid must not fall, dense must rise by the margin ---------------------------------------------
@pytest.mark.parametrize(
    ("after", "applied"),
    [
        (TuneScores(0.60, 0.7, 0.55, 0.7, 5), False),  # dense up, hybrid down: a loss on the real questions
        (TuneScores(0.502, 0.7, 0.70, 0.7, 5), False),  # dense up by less than the margin
        (TuneScores(0.60, 0.7, 0.60, 0.7, 5), True),  # dense up by the margin, hybrid level
    ],
)
def test_a_tune_that_loses_on_held_out_real_questions_is_not_applied(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch, after: TuneScores, applied: bool
) -> None:
    _recorded(tiny_index, QUESTIONS)
    scores = iter([TuneScores(0.50, 0.7, 0.60, 0.7, 5), after])
    monkeypatch.setattr(run, "score", lambda *args, **kwargs: next(scores))
    before = _index_files(tiny_index)
    with RagPipeline(RagConfig(index=tiny_index, quiet=True)) as p:
        report = p.tune(from_use=True, apply=True, max_steps=1, batch_size=4)  # the default margin, 0.005
    assert report.applied is applied and report.better is applied
    if not applied:
        assert "the index is unchanged" in report.reason and _index_files(tiny_index) == before


# -- the real MiniLM on the sample corpus -----------------------------------------------------------------------
@pytest.mark.slow
def test_minilm_from_use_on_real_files_keeps_the_model_only_when_the_real_questions_say_so(
    tmp_path: Path, copy_corpus: Path
) -> None:
    index = tmp_path / "idx"
    with RagPipeline(RagConfig(index=index, embedder="minilm", quiet=True), generator=EchoGenerator()) as p:
        p.ingest([copy_corpus])
    _recorded(index, QUESTIONS)
    before = _index_files(index)
    with RagPipeline(RagConfig(index=index, embedder="minilm", quiet=True)) as p:
        report = p.tune(from_use=True, apply=True, max_steps=3, batch_size=8)
        assert report.pairs_source == report.held_out_source == "recorded" and report.steps == 3
        gained = report.after.ndcg_at_10 >= report.before.ndcg_at_10 + 0.005
        kept = report.after.hybrid_ndcg_at_10 >= report.before.hybrid_ndcg_at_10
        assert report.applied is (gained and kept)
        if report.applied:
            assert p.info().embedder.startswith("minilm+tuned.") and p.verify() == []
        else:
            assert "the index is unchanged" in report.reason and _index_files(index) == before
