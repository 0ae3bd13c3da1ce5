"""rag tune: pairs, the held-out split, refusals, and the whole flow (train, score, apply, re-embed) on a tiny random
model built in the test and, marked slow, on the real MiniLM; SIGKILL during --apply leaves the previous
generation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.answer.generators.base import GenerationRequest, Generator
from rag.cli import main as cli_main_function
from rag.config import RagConfig
from rag.embed.e5 import E5Embedder
from rag.errors import ModelMismatchError, RagError
from rag.index.folder import IndexDir
from rag.pipeline import RagPipeline
from rag.testing import EchoGenerator, HashEmbedder
from rag.tune import pairs as tp
from rag.tune.run import TuneOptions, _split
from rag.types import Chunk

CHILD = Path(__file__).resolve().parents[1] / "support" / "crash_child.py"


def _files(index: Path) -> dict[str, bytes]:
    """Every file of the index folder (the lexical index's directory included) with its bytes."""
    files = (p for p in index.rglob("*") if p.is_file() and p.name != "write.lock")
    return {str(p.relative_to(index)): p.read_bytes() for p in files}


# -- pairs ------------------------------------------------------------------------------------------------------
def _chunk(text: str, cid: int, source: str = "a.txt") -> Chunk:
    return Chunk(text=text, start=0, end=len(text), start_line=1, end_line=1, id=cid, source=source)


def test_inverse_cloze_takes_one_sentence_out_of_its_passage() -> None:
    text = "BM25 ranks documents by term frequency. It saturates repeated terms quickly. Short."
    pairs = tp.inverse_cloze([_chunk(text, 1), _chunk("One sentence only here.", 2)], seed=3)
    assert len(pairs) == 1  # a chunk of one sentence gives no pair
    pair = pairs[0]
    assert pair.query in text and pair.query not in pair.passage
    assert pair.doc == "a.txt" and pair.chunk_id == 1


def test_generated_questions_are_parsed_and_filtered() -> None:
    chunks = [_chunk("Vectors are compared by cosine similarity in the index.", 1)]
    replies = "1. How are vectors compared in the index?\n2) Why?\nQ3: What does cosine similarity measure here?"
    seen: list[list[dict[str, str]]] = []

    def chat(messages: list[dict[str, str]], max_new: int) -> str:
        seen.append(messages)
        return replies

    pairs, written = tp.generated(chunks, chat, lambda q, c: "cosine" in q, per_chunk=2)
    assert written == 2  # "Why?" is too short to count as a question
    assert [p.query for p in pairs] == ["What does cosine similarity measure here?"]
    assert pairs[0].passage == chunks[0].text and pairs[0].chunk_id == 1
    pairs, _ = tp.generated(chunks, chat, lambda q, c: "vectors" in q, per_chunk=3)
    assert [p.query for p in pairs] == ["How are vectors compared in the index?"]
    assert "Vectors are compared" in seen[0][1]["content"]


def test_questions_on_one_line_are_split_and_cut_off_repeated_or_meta_ones_dropped() -> None:
    reply = (
        "What is the role of IL4I1 in T-cell proliferation? What are the main findings of the study on IL4I1? "
        "What is the role of IL4I1 in T-cell proliferation in vitro? How is IL4I1 secreted by dendritic cells? "
        "What is the effect of"
    )
    assert tp.parse_questions(reply, 5) == [
        "What is the role of IL4I1 in T-cell proliferation?",  # the third is a near repeat of it
        "How is IL4I1 secreted by dendritic cells?",  # the second asks about "the study", the last is cut off
    ]
    assert tp.parse_questions("向量检索按什么排序？本文讲了什么？检索系统用哪种相似度？", 3) == [
        "向量检索按什么排序？",
        "检索系统用哪种相似度？",
    ]
    assert tp.parse_questions("How vectors are compared in the index", 2) == ["How vectors are compared in the index"]


def test_chinese_chunks_get_a_chinese_prompt() -> None:
    messages = tp.question_messages("向量检索按余弦相似度排序。", "zh", 2)
    assert "中文" in messages[1]["content"]


def test_given_pairs_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"query": "q", "passage": "p"}\n{"question": "no passage"}\n', encoding="utf-8")
    with pytest.raises(RagError, match=r"pairs.jsonl:2: expected a JSON object with \"query\" and \"passage\""):
        tp.read_given(path, lambda ps: ["x"] * len(ps), set())
    with pytest.raises(RagError, match="no such file"):
        tp.read_given(tmp_path / "missing.jsonl", lambda ps: [], set())


def test_given_pairs_locate_documents_they_do_not_name(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rows = [{"query": "q1", "passage": "p1", "path": "kept.txt"}, {"query": "q2", "passage": "p2"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    asked: list[list[str]] = []

    def locate(passages: list[str]) -> list[str]:
        asked.append(passages)
        return ["found.txt"] * len(passages)

    train, dev = tp.read_given(path, locate, {"kept.txt"})
    assert dev is None
    assert [p.doc for p in train] == ["kept.txt", "found.txt"] and asked == [["p2"]]


def test_beir_folder_dev_split_is_the_held_out_set(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "title": "T", "text": f"text {i}"}) for i in ("d1", "d2")), "utf-8"
    )
    (tmp_path / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": f"query {q}"}) for q in ("q1", "q2")), "utf-8"
    )
    (tmp_path / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", "utf-8")
    (tmp_path / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td2\t1\n", "utf-8")
    train, dev = tp.read_given(tmp_path, lambda ps: ["?"] * len(ps), {"beir:d1", "beir:d2"})
    assert [(p.query, p.passage, p.doc) for p in train] == [("query q1", "T text d1", "beir:d1")]
    assert dev is not None and [p.doc for p in dev] == ["beir:d2"]


def test_held_out_split_keeps_each_document_on_one_side() -> None:
    pairs = [tp.Pair(f"q{i}", f"p{i}", f"doc{i % 7}") for i in range(70)]
    train, held = _split(pairs, TuneOptions(held_out=0.1, max_pairs=1000))
    assert held and train and len(train) + len(held) == 70
    assert not {p.doc for p in train} & {p.doc for p in held}
    assert len(_split(pairs, TuneOptions(held_out=0.1, max_pairs=5))[0]) == 5


def test_the_recipe_depends_on_the_kind_of_pairs() -> None:
    from rag.tune.train import GIVEN_RECIPE, PROXY_RECIPE, TrainSettings

    given, proxy = TrainSettings().recipe(given=True), TrainSettings().recipe(given=False)
    assert (given.epochs, given.learning_rate) == GIVEN_RECIPE
    assert (proxy.epochs, proxy.learning_rate) == PROXY_RECIPE
    assert GIVEN_RECIPE[1] > PROXY_RECIPE[1]  # the user's own queries train harder than written or cloze ones
    chosen = TrainSettings(epochs=2.0, learning_rate=5e-5).recipe(given=True)
    assert (chosen.epochs, chosen.learning_rate) == (2.0, 5e-5)  # what the user asks for wins
    assert TuneOptions.from_settings({"learning_rate": 1e-3}).train.learning_rate == 1e-3
    with pytest.raises(RagError, match=r"--learning-rate -0\.1: must be positive"):
        TuneOptions.from_settings({"learning_rate": -0.1})


# -- refusals ---------------------------------------------------------------------------------------------------
def test_e5_refuses_and_names_minilm() -> None:
    e5 = E5Embedder()
    assert e5.trainable() is None
    assert "--model minilm" in e5.untrainable_reason()


def test_an_untrainable_embedder_is_refused_and_nothing_changes(tmp_path: Path, copy_corpus: Path) -> None:
    index = tmp_path / "idx"
    with RagPipeline(RagConfig(index=index, quiet=True), embedder=HashEmbedder(), generator=EchoGenerator()) as p:
        p.ingest([copy_corpus])
        before = _files(index)
        with pytest.raises(RagError, match=r"cannot tune the index .* has no trainable copy"):
            p.tune(apply=True)
    assert _files(index) == before


# -- the whole flow on the tiny model ---------------------------------------------------------------------------
class QuestionWriter(Generator):
    """Writes a chunk's first sentence back as its 'question' (tests the generated path without an LLM)."""

    @property
    def name(self) -> str:
        return "question-writer"

    def generate(self, request: GenerationRequest) -> str:
        return ""

    def chat(self, messages: list[dict[str, str]], max_new_tokens: int) -> str:
        passage = messages[-1]["content"].split("\n")[1]
        return tp.split_sentences(passage)[0]


def test_generated_pairs_train_and_a_refused_tune_changes_nothing(tiny_index: Path) -> None:
    before = _files(tiny_index)
    with RagPipeline(RagConfig(index=tiny_index, quiet=True), generator=QuestionWriter()) as p:
        report = p.tune(pairs_from="generated", apply=True, margin=1.0, max_steps=2, batch_size=4)
    assert report.pairs_source == "generated" and report.questions_written >= report.pairs + report.held_out
    assert report.steps == 2 and not report.better and not report.applied
    assert "the index is unchanged" in report.reason
    assert _files(tiny_index) == before
    assert not [d for d in tiny_index.iterdir() if d.is_dir() and d.name.startswith("tuned.")]


def test_apply_reembeds_into_a_new_generation_served_by_the_tuned_model(tiny_index: Path, tiny: Path) -> None:
    with RagPipeline(RagConfig(index=tiny_index, quiet=True), generator=EchoGenerator()) as p:
        old = p.info()
        old_vector = p._current().vectors.reconstruct(int(p._current().vectors.ids()[0]))
        # a large learning rate, so that three steps move the tiny model far enough to tell
        report = p.tune(
            pairs_from="cloze", apply=True, accept_proxy=True, margin=-1.0, max_steps=3, batch_size=4,
            learning_rate=1e-3,
        )  # fmt: skip
        assert report.applied and report.generation == old.generation + 1
        info = p.info()
        assert info.embedder == report.model and info.embedder.startswith(str(tiny) + "+tuned.")
        assert info.tuned is not None and info.tuned["base"] == str(tiny)
        assert info.tuned["pairs"] == report.pairs and len(info.tuned["pairs_hash"]) == 16
        # the settings it trained with: the cloze recipe's epochs, the learning rate asked for
        assert (info.tuned["settings"]["epochs"], info.tuned["settings"]["learning_rate"]) == (1.0, 1e-3)
        assert (tiny_index / info.tuned["folder"] / "modules.json").is_file()
        assert p.verify() == []
        new_vector = p._current().vectors.reconstruct(int(p._current().vectors.ids()[0]))
        # re-embedded by the trained model, not copied (precision alone moves a vector by about 1e-5)
        assert float(new_vector @ old_vector) < 0.999
        assert p.retrieve("BM25 term frequency", k=3)
    # a fresh pipeline serves the tuned model, also when the base model is named; another model is refused
    with RagPipeline(RagConfig(index=tiny_index, embedder=str(tiny), quiet=True)) as p:
        assert p._embedders.for_index(p._current().manifest).model_id == report.model
    with (
        RagPipeline(RagConfig(index=tiny_index, embedder="minilm", quiet=True)) as p,
        pytest.raises(ModelMismatchError, match="tuned by `rag tune`"),
    ):
        p.retrieve("anything")


def test_cli_tune_prints_the_scores_and_applies(tiny_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tune", "--index", str(tiny_index), "--pairs-from", "cloze", "--margin", "-1", "--apply", "-q"]
    argv.append("--accept-proxy")
    assert cli_main_function([*argv, "--max-pairs", "12", "--batch-size", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["applied"] and out["pairs"] <= 12 and out["before"]["queries"] == out["held_out"] > 0
    assert out["learning_rate"] == 2e-5 and out["epochs"] > 0  # cloze pairs: the gentle recipe
    assert cli_main_function(["info", "--index", str(tiny_index), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tuned"]["pairs"] == out["pairs"]
    assert cli_main_function(["info", "--index", str(tiny_index)]) == 0
    assert f"tuned: from {out['base_model']} on {out['pairs']} cloze pairs" in capsys.readouterr().out


@pytest.mark.parametrize(("target", "n"), [("embed-batch", 1), ("stage-model", 1), ("fsync", 1), ("fsync", 3)])
def test_killed_apply_leaves_the_previous_generation(tiny_index: Path, target: str, n: int) -> None:
    before = _files(tiny_index)
    generation = IndexDir(tiny_index).read_manifest()["generation"]
    proc = subprocess.run([sys.executable, str(CHILD), str(tiny_index), "-", target, str(n), "tune"], timeout=300)
    assert proc.returncode == -9, "the child should have been killed"
    assert IndexDir(tiny_index).read_manifest()["generation"] == generation
    assert {k: v for k, v in _files(tiny_index).items() if k in before} == before
    with RagPipeline(RagConfig(index=tiny_index, quiet=True), generator=EchoGenerator()) as p:
        assert p.verify() == []
        assert p.retrieve("BM25 term frequency", k=3)
        report = p.tune(pairs_from="cloze", apply=True, accept_proxy=True, margin=-1.0, max_steps=1, batch_size=4)
        assert report.applied and p.verify_report().notes == []  # the leftovers are gone
    assert len([d for d in tiny_index.iterdir() if d.is_dir() and d.name.startswith("tuned.")]) == 1


# -- the real MiniLM --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_minilm_tune_apply_then_ingest_uses_the_tuned_model(tmp_path: Path, copy_corpus: Path) -> None:
    index = tmp_path / "idx"
    with RagPipeline(RagConfig(index=index, embedder="minilm", quiet=True), generator=EchoGenerator()) as p:
        p.ingest([copy_corpus])
        report = p.tune(pairs_from="cloze", apply=True, accept_proxy=True, margin=-1.0, max_steps=2, batch_size=8)
        assert report.applied and report.base_model == "minilm" and report.model.startswith("minilm+tuned.")
        assert 0.0 <= report.before.ndcg_at_10 <= 1.0 and report.after.queries == report.held_out
        (copy_corpus / "late.txt").write_text("A late note about reciprocal rank fusion. " * 20, encoding="utf-8")
        p.ingest([copy_corpus])
        assert p.info().embedder == report.model and p.verify() == []
        assert any(h.chunk.source.endswith("late.txt") for h in p.retrieve("reciprocal rank fusion", k=5))
    with RagPipeline(RagConfig(index=index, embedder="minilm", quiet=True)) as p:
        assert p.retrieve("reciprocal rank fusion", k=1)  # the base name is accepted for a tuned index
