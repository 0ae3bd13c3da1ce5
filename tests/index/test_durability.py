"""Documents change and processes die: crash safety, concurrent readers, duplicates, verify/compact,
and a property test of random add/change/delete sequences against a model of what the index holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.config import RagConfig
from rag.index.folder import IndexDir
from rag.pipeline import RagPipeline
from rag.testing import HashEmbedder

CHILD = Path(__file__).resolve().parents[1] / "support" / "crash_child.py"


def _state(index: Path) -> tuple[int, dict[str, str]]:
    """(generation, {file name: content hash}) of the committed index."""
    with RagPipeline(RagConfig(index=index, quiet=True), embedder=HashEmbedder()) as p:
        report = p.verify_report()  # leftovers of the killed writer are notes, never problems
        assert report.ok, report.problems
        assert all(note.startswith("files left by an interrupted write") for note in report.notes)
        return p.info().generation, {Path(d.path).name: d.content_hash for d in p.documents()}


@pytest.mark.parametrize(
    ("target", "n"),
    [("embed-batch", i) for i in (1, 2, 3, 5)]
    + [("fsync", i) for i in (1, 2, 3, 4)]
    + [("lexical-commit", 1), ("lexical-fsync", 1), ("replace", 1)],
)
def test_killed_ingest_leaves_previous_index_then_rerun_completes(
    tmp_path: Path, copy_corpus: Path, fake_pipeline: Callable[..., RagPipeline], target: str, n: int
) -> None:
    index = tmp_path / "idx"
    fake_pipeline(index=index).ingest([copy_corpus])
    before = _state(index)
    # change one file, delete one, add one: the interrupted ingest has all three kinds of work
    (copy_corpus / "bm25-lexical-search.txt").write_text("BM25 was rewritten.\n" * 40, encoding="utf-8")
    (copy_corpus / "zhongwen-fenci.md").unlink()
    shutil.copy(copy_corpus / "xiangliang-jiansuo.md", copy_corpus / "new-copy.md")
    (copy_corpus / "extra.txt").write_text("An extra document about tokenizers and vocabularies. " * 30, "utf-8")
    for i in range(8):  # enough new chunks for several embedding batches
        text = " ".join(f"Extra note {i} sentence {j} covers topic {i * 100 + j}." for j in range(60))
        (copy_corpus / f"extra-{i}.txt").write_text(text, encoding="utf-8")

    proc = subprocess.run([sys.executable, str(CHILD), str(index), str(copy_corpus), target, str(n)], timeout=120)
    assert proc.returncode == -9, "the child should have been killed"
    after_kill = _state(index)
    # fsync 1-3 are the FAISS file, the SQLite file and the new manifest (the tantivy directory is fsynced by its
    # own step, between the SQLite file and the manifest); the rename is the commit point and fsync 4 (the folder)
    # comes after it, so those kills leave the new generation complete
    committed = target == "replace" or (target == "fsync" and n == 4)
    if committed:
        assert after_kill[0] == before[0] + 1
    else:
        assert after_kill == before
    assert IndexDir(index).open_snapshot().store.count("chunks") > 0

    rerun = fake_pipeline(index=index).ingest([copy_corpus], sync=True)
    final = _state(index)
    names = set(final[1])
    assert "zhongwen-fenci.md" not in names and {"new-copy.md", "extra.txt"} <= names
    assert final[1]["bm25-lexical-search.txt"] != before[1]["bm25-lexical-search.txt"]
    assert fake_pipeline(index=index).verify() == []
    assert not [p for p in index.iterdir() if p.name.endswith(".tmp")]
    if not committed:
        assert rerun.files_added == 10 and rerun.files_updated == 1 and rerun.files_removed == 1


def test_asks_keep_working_while_an_ingest_runs(
    tmp_path: Path, copy_corpus: Path, fake_pipeline: Callable[..., RagPipeline]
) -> None:
    index = tmp_path / "idx"
    fake_pipeline(index=index).ingest([copy_corpus])
    reader = fake_pipeline(index=index)
    writer = fake_pipeline(index=index, batch_size=1)
    for i in range(30):
        (copy_corpus / f"added-{i}.txt").write_text(f"Document {i} about FAISS vector search. " * 20, "utf-8")
    errors: list[BaseException] = []
    answers = 0
    done = threading.Event()

    def ingest() -> None:
        try:
            for _ in range(3):
                writer.ingest([copy_corpus])
                (copy_corpus / "added-0.txt").write_text("changed again " + str(_), "utf-8")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=ingest)
    thread.start()
    while not done.is_set() or answers < 20:
        answer = reader.ask("What is FAISS?")
        assert answer.citations or answer.refused
        answers += 1
    thread.join()
    assert not errors
    assert reader.info().documents == 12 + 30
    assert reader.verify() == []


def test_duplicate_content_is_embedded_once(tmp_path: Path, copy_corpus: Path) -> None:
    calls: list[int] = []

    class CountingEmbedder(HashEmbedder):
        def embed_documents(self, texts: list[str]):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().embed_documents(texts)

    pipeline = RagPipeline(RagConfig(index=tmp_path / "idx", quiet=True), embedder=CountingEmbedder())
    first = pipeline.ingest([copy_corpus])
    assert first.chunks_added > 0 and first.chunks_embedded == first.chunks_added == sum(calls)
    calls.clear()
    shutil.copy(copy_corpus / "transformer-architecture.md", copy_corpus / "copy-of-transformers.md")
    second = pipeline.ingest([copy_corpus])
    assert second.files_added == 1 and second.chunks_added > 0
    assert second.chunks_embedded == 0 and sum(calls) == 0
    hits = pipeline.retrieve("Attention Is All You Need 2017", k=10)
    names = {Path(h.chunk.source).name for h in hits}
    assert {"transformer-architecture.md", "copy-of-transformers.md"} <= names
    assert pipeline.verify() == []


def test_verify_reports_damage_and_compact_keeps_search_results(
    tmp_path: Path, copy_corpus: Path, fake_pipeline: Callable[..., RagPipeline]
) -> None:
    index = tmp_path / "idx"
    p = fake_pipeline(index=index)
    p.ingest([copy_corpus])
    for name in ("bm25-lexical-search.txt", "retrieval-evaluation.txt", "zhongwen-fenci.md"):
        (copy_corpus / name).unlink()
    p.ingest([copy_corpus], sync=True)
    before = [(h.chunk.id, round(h.similarity, 5)) for h in p.retrieve("vector search with FAISS", k=5)]
    info = p.compact()
    assert info.chunks == info.vectors
    assert [(h.chunk.id, round(h.similarity, 5)) for h in p.retrieve("vector search with FAISS", k=5)] == before
    assert p.verify() == []
    # damage: delete the lexical row of one chunk in the committed tantivy index
    import tantivy

    manifest = IndexDir(index).read_manifest()
    first = min(IndexDir(index).open_snapshot().store.chunk_ids())
    damaged = tantivy.Index.open(str(index / manifest["files"]["lexical"])).writer(heap_size=15_000_000)
    damaged.delete_documents_by_term("id", first)
    damaged.commit()
    damaged.wait_merging_threads()
    problems = fake_pipeline(index=index).verify()
    assert any("lexical index" in problem for problem in problems)


def test_odd_file_names_and_symlink_loops(tmp_path: Path, fake_pipeline: Callable[..., RagPipeline]) -> None:
    docs = tmp_path / "docs"
    (docs / "sub folder").mkdir(parents=True)
    odd = docs / "sub folder" / "naïve 名字 [v2] (final) #1.txt"
    odd.write_text("Odd names still ingest: tokenizers split text into pieces.", encoding="utf-8")
    (docs / "loop").symlink_to(docs, target_is_directory=True)
    (docs / "self.txt").symlink_to(docs / "self.txt")  # a link to itself
    report = fake_pipeline().ingest([docs])
    assert report.files_added == 1
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert "symlink" in reasons["loop"] and "self.txt" in reasons
    hit = fake_pipeline().retrieve("tokenizers split text into pieces", k=1)[0]
    assert Path(hit.chunk.source).name == odd.name


WORDS = ["alpha", "beta", "gamma", "delta", "vector", "token", "检索", "向量"]
NAMES = ["a.txt", "b.md", "c.txt", "d.md"]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(NAMES), st.lists(st.sampled_from(WORDS), min_size=3, max_size=40)),
        st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just([])),
        st.tuples(st.just("ingest"), st.just(""), st.just([])),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
def test_random_changes_match_a_model(tmp_path_factory: pytest.TempPathFactory, steps: list) -> None:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("prop")
    docs = root / "docs"
    docs.mkdir()
    model: dict[str, str] = {}  # what the index should hold after the last ingest
    files: dict[str, str] = {}  # what is on disk now
    with RagPipeline(RagConfig(index=root / "idx", quiet=True), embedder=HashEmbedder()) as p:
        for op, name, words in [*steps, ("ingest", "", [])]:
            if op == "write":
                text = " ".join(words) + "\n"
                (docs / name).write_text(text, encoding="utf-8")
                files[name] = text
            elif op == "delete" and name in files:
                (docs / name).unlink()
                del files[name]
            elif op == "ingest":
                p.ingest([docs], sync=True)
                model = dict(files)
        if not model:
            return
        assert p.verify() == []
        snap = IndexDir(root / "idx").open_snapshot()
        stored = {Path(d.path).name: d for d in snap.store.documents()}
        assert set(stored) == set(model)
        for name, doc in stored.items():
            rows = snap.store.db.execute(
                'SELECT text, start, "end" FROM chunks WHERE doc_id = ? ORDER BY ord', [doc.id]
            ).fetchall()
            assert rows and all(model[name][s:e] == t for t, s, e in rows)
        snap.close()


def test_rename_reuses_vectors_and_deleted_content_is_no_longer_answered(
    tmp_path: Path, copy_corpus: Path, fake_pipeline: Callable[..., RagPipeline]
) -> None:
    p = fake_pipeline(index=tmp_path / "idx")
    p.ingest([copy_corpus])
    question = "When was the Transformer architecture introduced in the paper Attention Is All You Need?"
    assert Path(p.ask(question).citations[0].source).name == "transformer-architecture.md"
    (copy_corpus / "transformer-architecture.md").rename(copy_corpus / "renamed.md")
    report = p.ingest([copy_corpus], sync=True)
    assert (report.files_added, report.files_removed, report.chunks_embedded) == (1, 1, 0)
    assert Path(p.ask(question).citations[0].source).name == "renamed.md"
    (copy_corpus / "renamed.md").unlink()
    p.ingest([copy_corpus], sync=True)
    answer = p.ask(question)
    cited = {Path(c.source).name for c in answer.citations} | {Path(h.chunk.source).name for h in answer.passages}
    assert not cited & {"renamed.md", "transformer-architecture.md"}
    hits = p.retrieve(question, k=20)
    assert hits and all("Attention Is All You Need" not in h.chunk.text for h in hits)
    assert p.verify() == []


def test_content_moving_to_a_file_that_changes_in_the_same_ingest(
    tmp_path: Path, fake_pipeline: Callable[..., RagPipeline]
) -> None:
    # a takes b's old text (so a reuses b's vectors) while b changes too: b's vectors must be copied before they go
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("alpha words here\n", encoding="utf-8")
    (docs / "b.txt").write_text("beta words there\n", encoding="utf-8")
    p = fake_pipeline(index=tmp_path / "idx")
    p.ingest([docs])
    (docs / "a.txt").write_text("beta words there\n", encoding="utf-8")
    (docs / "b.txt").write_text("gamma other words\n", encoding="utf-8")
    report = p.ingest([docs])
    assert (report.files_updated, report.chunks_embedded) == (2, 1)  # a's text was copied, not embedded
    assert p.verify() == []
    assert Path(p.retrieve("beta words there", k=1)[0].chunk.source).name == "a.txt"
