"""RagPipeline with the fakes (HashEmbedder, EchoGenerator): ingest, update, remove, retrieve, ask, and the
index folder's guarantees (format, model check, lock, atomic generations)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.errors import (
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    ModelMismatchError,
    RagError,
)
from rag.index.folder import FORMAT_VERSION, IndexDir
from rag.ingest.loaders import load
from rag.pipeline import REFUSALS, RagPipeline
from rag.testing import HashEmbedder
from rag.text.lexical import LEXICAL_VERSION, TOKENIZER
from rag.text.sentences import split_sentences

Factory = Callable[..., RagPipeline]

CORPUS_FILES = 12
HEADS_Q = "How many attention heads does the base Transformer model use?"


# --- helpers ------------------------------------------------------------------------------------


def manifest(index: Path) -> dict:
    return json.loads((index / "manifest.json").read_text(encoding="utf-8"))


def chunk_ids_by_path(index: Path) -> dict[str, list[int]]:
    """Chunk ids of every document in the committed generation, keyed by file name."""
    snap = IndexDir(index).open_snapshot()
    try:
        rows = snap.store.db.execute(
            "SELECT d.path, c.id FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id"
        ).fetchall()
    finally:
        snap.close()
    out: dict[str, list[int]] = {}
    for path, cid in rows:
        out.setdefault(Path(path).name, []).append(int(cid))
    return out


def all_chunk_texts(index: Path) -> list[str]:
    snap = IndexDir(index).open_snapshot()
    try:
        return [c.text for c in snap.store.chunks_by_ids(snap.store.chunk_ids()).values()]
    finally:
        snap.close()


def assert_consistent(pipeline: RagPipeline) -> None:
    """Manifest, chunk store and vector index agree, id for id."""
    info = pipeline.info()
    m = manifest(pipeline.index_path)
    assert info.chunks == info.vectors == m["chunks"]
    assert info.documents == m["documents"] == len(pipeline.documents())
    snap = IndexDir(pipeline.index_path).open_snapshot()
    try:
        assert sorted(snap.vectors.ids().tolist()) == snap.store.chunk_ids()
        assert snap.store.lexical is not None
        assert len(snap.store.lexical) == info.chunks and snap.store.lexical.ids() == set(snap.store.chunk_ids())
    finally:
        snap.close()


def index_files(index: Path) -> set[str]:
    return {p.name for p in index.iterdir()}


def committed_files(index: Path) -> set[str]:
    return {"manifest.json", "write.lock", *manifest(index)["files"].values()}


# --- ingest -------------------------------------------------------------------------------------


def test_ingest_corpus_report(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline()
    report = pipeline.ingest([corpus_dir])
    assert report.files_seen == CORPUS_FILES
    assert report.files_added == CORPUS_FILES
    assert (report.files_updated, report.files_unchanged, report.files_removed) == (0, 0, 0)
    assert report.skipped == []
    assert report.chunks_added > CORPUS_FILES
    assert report.chunks_removed == 0
    assert report.model == "rag.testing:HashEmbedder"
    assert report.index == str(pipeline.index_path)


def test_manifest_fields_and_counts(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline()
    report = pipeline.ingest([corpus_dir])
    index = pipeline.index_path
    m = manifest(index)
    assert m["format_version"] == FORMAT_VERSION == 3
    assert m["lexical"] == {"engine": "tantivy", "tokenizer": TOKENIZER, "version": LEXICAL_VERSION}
    assert m["embedder"] == "rag.testing:HashEmbedder"
    assert m["dimension"] == 256
    assert m["generation"] == 1
    assert m["documents"] == CORPUS_FILES
    assert m["chunks"] == report.chunks_added
    assert set(m["files"]) == {"vectors", "chunks", "lexical"}
    assert (index / m["files"]["vectors"]).is_file() and (index / m["files"]["chunks"]).is_file()
    assert (index / m["files"]["lexical"] / "meta.json").is_file()
    assert m["chunker"]["chunk_size"] == 200 and m["chunker"]["chunk_overlap"] == 30
    assert index_files(index) == committed_files(index)

    info = pipeline.info()
    assert (info.embedder, info.dimension, info.generation) == ("rag.testing:HashEmbedder", 256, 1)
    assert info.documents == CORPUS_FILES
    assert info.chunks == info.vectors == report.chunks_added
    assert info.size_bytes > 0
    assert_consistent(pipeline)


def test_documents_list_the_ingested_files(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    docs = pipeline.documents()
    assert sorted(Path(d.path).name for d in docs) == sorted(p.name for p in corpus_dir.iterdir())
    by_name = {Path(d.path).name: d for d in docs}
    assert by_name["zhongwen-fenci.md"].language == "zh"
    assert by_name["transformer-architecture.md"].language == "en"
    assert by_name["history-of-language-models.html"].file_type == "html"
    assert sum(d.n_chunks for d in docs) == pipeline.info().chunks


@pytest.mark.parametrize(
    ("question", "source"),
    [
        (HEADS_Q, "transformer-architecture.md"),
        ("BM25 lexical search term frequency", "bm25-lexical-search.txt"),
        ("jieba 中文分词工具", "zhongwen-fenci.md"),
        ("FAISS 向量相似度搜索库", "xiangliang-jiansuo.md"),
    ],
)
def test_retrieve_returns_hits_with_exact_offsets(
    fake_pipeline: Factory, corpus_dir: Path, question: str, source: str
) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    hits = pipeline.retrieve(question, k=5)
    assert 1 <= len(hits) <= 5
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert Path(hits[0].chunk.source).name == source
    stored = chunk_ids_by_path(pipeline.index_path)
    for hit in hits:
        chunk = hit.chunk
        assert Path(chunk.source).is_absolute() and Path(chunk.source).parent == corpus_dir.resolve()
        assert chunk.id in stored[Path(chunk.source).name]  # the id of one of its document's stored chunks
        assert chunk.text == load(chunk.source).text[chunk.start : chunk.end]
        assert -1.0001 <= hit.similarity <= 1.0001


def test_retrieve_default_k_and_modes(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline(top_k=3)
    pipeline.ingest([corpus_dir])
    assert len(pipeline.retrieve(HEADS_Q)) == 3
    dense = fake_pipeline(top_k=3, retrieval="dense")
    lexical = fake_pipeline(top_k=3, retrieval="lexical")
    for p in (dense, lexical):
        hits = p.retrieve("attention heads Transformer")
        assert hits and Path(hits[0].chunk.source).name == "transformer-architecture.md"
    assert lexical.retrieve("zzzqqq nonexistentword") == []


def test_empty_question_is_a_user_error(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    with pytest.raises(RagError, match="empty"):
        pipeline.retrieve("   ")


def test_html_script_and_style_are_never_indexed(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    texts = all_chunk_texts(pipeline.index_path)
    assert len(texts) == pipeline.info().chunks
    joined = "\n".join(texts)
    assert "Claude Shannon" in joined  # the HTML body is indexed
    for marker in ("SCRIPT_BLOCK_SHOULD_NOT_BE_INDEXED", "STYLE_BLOCK_SHOULD_NOT_BE_INDEXED", "font-family"):
        assert marker not in joined
        hits = pipeline.retrieve(marker, k=10)
        assert hits and all(marker not in h.chunk.text for h in hits)


def test_reingest_unchanged_folder_changes_nothing(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline()
    first = pipeline.ingest([corpus_dir])
    before = manifest(pipeline.index_path)
    files_before = index_files(pipeline.index_path)
    again = pipeline.ingest([corpus_dir])
    assert again.files_unchanged == CORPUS_FILES
    assert (again.files_added, again.files_updated, again.files_removed) == (0, 0, 0)
    assert again.chunks_added == again.chunks_removed == 0
    assert again.model == "rag.testing:HashEmbedder"
    assert manifest(pipeline.index_path) == before
    assert pipeline.info().generation == 1
    assert pipeline.info().chunks == first.chunks_added
    assert index_files(pipeline.index_path) == files_before
    # a fresh pipeline on the same index agrees
    assert fake_pipeline().ingest([corpus_dir]).files_unchanged == CORPUS_FILES


def test_touched_but_identical_file_is_unchanged(fake_pipeline: Factory, copy_corpus: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([copy_corpus])
    path = copy_corpus / "bm25-lexical-search.txt"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    report = pipeline.ingest([copy_corpus])
    assert report.files_unchanged == CORPUS_FILES and report.files_updated == 0
    assert pipeline.info().generation == 1


def test_editing_a_file_replaces_its_chunks(fake_pipeline: Factory, copy_corpus: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([copy_corpus])
    index = pipeline.index_path
    ids_before = chunk_ids_by_path(index)
    max_before = max(i for ids in ids_before.values() for i in ids)
    old_sentence = "The paper was written by a team of researchers at Google."
    new_sentence = "The paper was written by a quokka named Zebulon Marmalade."
    path = copy_corpus / "transformer-architecture.md"
    text = path.read_text(encoding="utf-8")
    assert old_sentence in text
    path.write_text(text.replace(old_sentence, new_sentence), encoding="utf-8")

    report = pipeline.ingest([copy_corpus])
    assert report.files_updated == 1
    assert (report.files_added, report.files_unchanged) == (0, CORPUS_FILES - 1)
    assert report.chunks_removed == len(ids_before["transformer-architecture.md"])
    assert report.chunks_added == len(chunk_ids_by_path(index)["transformer-architecture.md"])
    assert pipeline.info().generation == 2
    assert pipeline.info().documents == CORPUS_FILES

    ids_after = chunk_ids_by_path(index)
    edited = ids_after["transformer-architecture.md"]
    assert edited and all(i > max_before for i in edited)  # fresh ids, never reused
    assert not set(edited) & {i for ids in ids_before.values() for i in ids}
    for name, ids in ids_before.items():  # the other documents are untouched
        if name != "transformer-architecture.md":
            assert ids_after[name] == ids

    texts = all_chunk_texts(index)
    assert not any(old_sentence in t for t in texts)
    google = pipeline.retrieve("researchers at Google", k=10)
    assert google and all(old_sentence not in h.chunk.text for h in google)
    hits = pipeline.retrieve("quokka Zebulon Marmalade")
    assert new_sentence in hits[0].chunk.text
    assert hits[0].chunk.text == load(hits[0].chunk.source).text[hits[0].chunk.start : hits[0].chunk.end]
    assert_consistent(pipeline)


def test_ids_are_not_reused_after_remove_and_readd(fake_pipeline: Factory, copy_corpus: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([copy_corpus])
    before = chunk_ids_by_path(pipeline.index_path)
    highest = max(i for ids in before.values() for i in ids)
    target = copy_corpus / "zhongwen-fenci.md"
    assert pipeline.remove([target]) == 1
    pipeline.ingest([copy_corpus])
    after = chunk_ids_by_path(pipeline.index_path)["zhongwen-fenci.md"]
    assert len(after) == len(before["zhongwen-fenci.md"])
    assert min(after) > highest
    assert_consistent(pipeline)


def test_sync_removes_documents_of_deleted_files(fake_pipeline: Factory, copy_corpus: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([copy_corpus])
    chunks_before = pipeline.info().chunks
    doomed = copy_corpus / "retrieval-evaluation.txt"
    n_doomed = len(chunk_ids_by_path(pipeline.index_path)["retrieval-evaluation.txt"])
    doomed.unlink()

    plain = pipeline.ingest([copy_corpus])  # without sync the document stays
    assert plain.files_removed == 0
    assert "retrieval-evaluation.txt" in {Path(d.path).name for d in pipeline.documents()}

    synced = pipeline.ingest([copy_corpus], sync=True)
    assert synced.files_removed == 1
    assert synced.chunks_removed == n_doomed
    names = {Path(d.path).name for d in pipeline.documents()}
    assert "retrieval-evaluation.txt" not in names
    assert len(names) == CORPUS_FILES - 1
    assert pipeline.info().chunks == chunks_before - n_doomed
    recall = pipeline.retrieve("recall", k=10)
    assert recall and all(Path(h.chunk.source).name != "retrieval-evaluation.txt" for h in recall)
    assert_consistent(pipeline)


def test_sync_only_touches_documents_under_the_given_paths(fake_pipeline: Factory, copy_corpus: Path) -> None:
    other = copy_corpus.parent / "other"
    other.mkdir()
    (other / "note.txt").write_text("Walruses enjoy cold water and eat clams.", encoding="utf-8")
    pipeline = fake_pipeline()
    pipeline.ingest([copy_corpus, other])
    (copy_corpus / "bm25-lexical-search.txt").unlink()
    (other / "extra.txt").write_text("Penguins cannot fly but swim well.", encoding="utf-8")
    report = pipeline.ingest([other], sync=True)  # bm25 file is outside `other`: kept
    assert report.files_removed == 0 and report.files_added == 1
    assert "bm25-lexical-search.txt" in {Path(d.path).name for d in pipeline.documents()}


def test_remove_documents(fake_pipeline: Factory, copy_corpus: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([copy_corpus])
    chunks = pipeline.info().chunks
    n_bm25 = len(chunk_ids_by_path(pipeline.index_path)["bm25-lexical-search.txt"])
    assert pipeline.remove([copy_corpus / "bm25-lexical-search.txt"]) == 1
    assert pipeline.info().chunks == chunks - n_bm25
    assert pipeline.info().generation == 2
    assert "bm25-lexical-search.txt" not in {Path(d.path).name for d in pipeline.documents()}
    assert pipeline.remove([copy_corpus / "bm25-lexical-search.txt"]) == 0  # already gone
    assert pipeline.info().generation == 2
    assert_consistent(pipeline)
    assert pipeline.remove([copy_corpus]) == CORPUS_FILES - 1  # a folder removes everything under it
    info = pipeline.info()
    assert (info.documents, info.chunks, info.vectors) == (0, 0, 0)
    assert pipeline.retrieve("attention") == []
    assert (copy_corpus / "bm25-lexical-search.txt").exists()  # remove never deletes source files


def test_remove_does_not_match_sibling_prefixes(fake_pipeline: Factory, tmp_path: Path) -> None:
    a, ab = tmp_path / "docs", tmp_path / "docs-old"
    for folder in (a, ab):
        folder.mkdir()
        (folder / "x.txt").write_text(f"Text in {folder.name} about otters and rivers.", encoding="utf-8")
    pipeline = fake_pipeline()
    pipeline.ingest([a, ab])
    assert pipeline.remove([a]) == 1
    assert [Path(d.path).parent.name for d in pipeline.documents()] == ["docs-old"]


def test_remove_without_index_is_a_user_error(fake_pipeline: Factory, tmp_path: Path) -> None:
    with pytest.raises(RagError, match="no index"):
        fake_pipeline().remove([tmp_path])


def test_bad_files_are_skipped_with_reasons(fake_pipeline: Factory, copy_corpus: Path) -> None:
    (copy_corpus / "empty.txt").write_bytes(b"")
    (copy_corpus / "binary.txt").write_bytes(b"abc\x00\x01\x02def\x00" * 10)
    (copy_corpus / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R")
    (copy_corpus / "notes.xyz").write_text("an unsupported format", encoding="utf-8")
    pipeline = fake_pipeline()
    report = pipeline.ingest([copy_corpus])
    assert report.files_added == CORPUS_FILES
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.txt", "binary.txt", "broken.pdf", "notes.xyz"}
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "pdf" in reasons["broken.pdf"].lower()
    assert ".xyz" in reasons["notes.xyz"] and "unsupported" in reasons["notes.xyz"]
    assert all("\n" not in r for r in reasons.values())
    assert pipeline.info().documents == CORPUS_FILES
    assert_consistent(pipeline)

    # the bad files are skipped again next time, without a new generation
    again = pipeline.ingest([copy_corpus])
    assert again.files_unchanged == CORPUS_FILES and again.files_added == 0
    assert {Path(s.path).name for s in again.skipped} == set(reasons)
    assert pipeline.info().generation == 1


def test_only_bad_files_create_no_index(fake_pipeline: Factory, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.md").write_bytes(b"")
    pipeline = fake_pipeline()
    report = pipeline.ingest([folder])
    assert report.files_added == 0 and len(report.skipped) == 1
    with pytest.raises(IndexNotFoundError):
        pipeline.info()


def test_missing_path_is_reported(fake_pipeline: Factory, corpus_dir: Path, tmp_path: Path) -> None:
    report = fake_pipeline().ingest([corpus_dir, tmp_path / "nope"])
    assert report.files_added == CORPUS_FILES
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [("nope", "no such file or folder")]


def test_max_file_mb_skips_large_files(fake_pipeline: Factory, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "big.txt").write_text("Large file sentence about llamas. " * 400, encoding="utf-8")
    (folder / "small.txt").write_text("Small file about alpacas.", encoding="utf-8")
    report = fake_pipeline(max_file_mb=0.005).ingest([folder])
    assert report.files_added == 1
    assert [Path(s.path).name for s in report.skipped] == ["big.txt"]
    assert "limit" in report.skipped[0].reason


# --- ask ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "source", "language"),
    [
        (HEADS_Q, "transformer-architecture.md", "en"),
        ("FAISS 是什么？", "xiangliang-jiansuo.md", "zh"),
        ("jieba 是什么？", "zhongwen-fenci.md", "zh"),
    ],
)
def test_ask_cites_the_right_source(
    fake_pipeline: Factory, corpus_dir: Path, question: str, source: str, language: str
) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    answer = pipeline.ask(question)
    assert not answer.refused
    assert answer.question == question
    assert answer.language == language
    assert answer.generator == "echo"
    assert answer.grounding in ("generated", "snapped", "extractive")
    assert answer.citations
    first = answer.citations[0]
    assert Path(first.source).name == source
    assert f"[{first.number}]" in answer.text
    assert first.text == load(corpus_dir / source).text[first.start : first.end]
    assert first.location.startswith("line")
    # the answer is text of the cited passage
    body = answer.text.replace(f"[{first.number}]", "").strip()
    sentences = split_sentences(body)
    assert sentences and all(" ".join(s.split()) in " ".join(first.text.split()) for s in sentences)
    assert answer.passages and answer.passages[0].chunk.text == answer.citations[0].text
    assert set(answer.timings) == {"retrieve_s", "generate_s", "total_s"}


def test_ask_refuses_below_min_score(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline(min_score=0.99, lexical_relevance=0)
    pipeline.ingest([corpus_dir])
    assert pipeline.min_score("en") == 0.99
    answer = pipeline.ask(HEADS_Q)
    assert answer.refused is True
    assert answer.citations == []
    assert answer.grounding == "refused"
    assert answer.text == REFUSALS["en"]
    assert "don't know" in answer.text
    assert answer.generator == ""
    assert answer.passages  # what was retrieved is still reported


def test_a_passage_under_min_score_that_holds_the_question_words_still_answers(
    fake_pipeline: Factory, corpus_dir: Path
) -> None:
    pipeline = fake_pipeline(min_score=0.99)  # lexical_relevance 0.5 (the default)
    pipeline.ingest([corpus_dir])
    answer = pipeline.ask(HEADS_Q)
    assert not answer.refused and answer.citations
    assert all(h.similarity < 0.99 for h in answer.passages)
    assert pipeline.ask("Which quarterback threw for 300 yards in the final?").refused  # words in no passage
    assert pipeline.ask("What is it?").refused  # no content word: nothing to judge by, the threshold decides


def test_chinese_question_is_refused_in_chinese(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline(min_score=0.99, lexical_relevance=0)
    pipeline.ingest([corpus_dir])
    answer = pipeline.ask("检索增强生成是哪一年提出的？")
    assert answer.refused and answer.citations == []
    assert answer.language == "zh"
    assert answer.text == REFUSALS["zh"]
    assert "不知道" in answer.text


class CalibratedEmbedder(HashEmbedder):
    """A HashEmbedder with per-script thresholds of its own (HashEmbedder's is 0.1 for every language)."""

    def default_min_score(self, language: str) -> float:
        return 0.9 if language == "zh" else 0.05


def test_default_min_score_comes_from_the_embedder(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline(embedder=CalibratedEmbedder(), lexical_relevance=0)  # the threshold alone decides
    pipeline.ingest([corpus_dir])
    assert (pipeline.min_score("en"), pipeline.min_score("zh")) == (0.05, 0.9)
    # the threshold of the question's language decides: the Chinese question's best passage is under 0.9
    assert not pipeline.ask(HEADS_Q).refused
    refused = pipeline.ask("检索增强生成是哪一年提出的？")
    assert refused.refused and refused.passages and max(h.similarity for h in refused.passages) < 0.9
    # a configured min_score overrides the embedder's, in every language
    configured = fake_pipeline(embedder=CalibratedEmbedder(), min_score=0.2, lexical_relevance=0)
    assert (configured.min_score("en"), configured.min_score("zh")) == (0.2, 0.2)
    assert not configured.ask("检索增强生成是哪一年提出的？").refused


# --- index folder guarantees --------------------------------------------------------------------


def test_missing_index_is_a_user_error(fake_pipeline: Factory) -> None:
    pipeline = fake_pipeline()
    for call in (pipeline.info, lambda: pipeline.retrieve("x"), lambda: pipeline.ask("x")):
        with pytest.raises(IndexNotFoundError, match="rag ingest"):
            call()


def test_other_embedder_dimension_is_a_model_mismatch(fake_pipeline: Factory, corpus_dir: Path) -> None:
    fake_pipeline().ingest([corpus_dir])
    other = fake_pipeline(embedder=HashEmbedder(128))
    with pytest.raises(ModelMismatchError) as info:
        other.retrieve(HEADS_Q)
    assert "rag.testing:HashEmbedder" in str(info.value) and "rag.testing:HashEmbedder/128" in str(info.value)
    with pytest.raises(ModelMismatchError):
        other.ask(HEADS_Q)


def test_model_mismatch_on_ingest_leaves_index_alone(fake_pipeline: Factory, copy_corpus: Path) -> None:
    fake_pipeline().ingest([copy_corpus])
    (copy_corpus / "new.txt").write_text("A new note about owls.", encoding="utf-8")
    with pytest.raises(ModelMismatchError):
        fake_pipeline(embedder=HashEmbedder(128)).ingest([copy_corpus])
    assert manifest(copy_corpus.parent / "idx")["generation"] == 1


def test_configured_model_name_is_checked_before_loading(corpus_dir: Path, tmp_path: Path) -> None:
    from rag.config import RagConfig

    index = tmp_path / "idx"
    RagPipeline(RagConfig(index=index, quiet=True), embedder=HashEmbedder()).ingest([corpus_dir])
    # "minilm" is refused from the manifest alone: the real model is never loaded
    with pytest.raises(ModelMismatchError, match="minilm"):
        RagPipeline(RagConfig(index=index, embedder="minilm", quiet=True)).retrieve(HEADS_Q)
    # the class path names the embedder the index was built with
    hits = RagPipeline(RagConfig(index=index, embedder="rag.testing:HashEmbedder", quiet=True)).retrieve(HEADS_Q)
    assert Path(hits[0].chunk.source).name == "transformer-architecture.md"
    # unset ("auto") takes the model from the manifest
    auto = RagPipeline(RagConfig(index=index, quiet=True)).retrieve(HEADS_Q)
    assert [h.chunk.id for h in auto] == [h.chunk.id for h in hits]


def test_newer_format_version_is_refused(fake_pipeline: Factory, corpus_dir: Path) -> None:
    fake_pipeline().ingest([corpus_dir])
    index = fake_pipeline().index_path
    m = manifest(index)
    m["format_version"] = 99
    (index / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    pipeline = fake_pipeline()
    with pytest.raises(IndexFormatError) as info:
        pipeline.info()
    assert "99" in str(info.value)
    with pytest.raises(IndexFormatError):
        pipeline.retrieve(HEADS_Q)
    with pytest.raises(IndexFormatError):
        pipeline.ingest([corpus_dir])


def test_damaged_manifest_is_a_format_error(fake_pipeline: Factory, corpus_dir: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    (pipeline.index_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="damaged"):
        fake_pipeline().info()


def test_second_writer_is_refused_while_the_lock_is_held(fake_pipeline: Factory, copy_corpus: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([copy_corpus])
    (copy_corpus / "new.txt").write_text("Lock test note about herons.", encoding="utf-8")
    with IndexDir(pipeline.index_path).lock():
        with pytest.raises(IndexLockedError) as info:
            pipeline.ingest([copy_corpus])
        assert str(os.getpid()) in str(info.value)
        with pytest.raises(IndexLockedError):
            pipeline.remove([copy_corpus / "new.txt"])
        assert pipeline.info().documents == CORPUS_FILES  # reading is not blocked
    report = pipeline.ingest([copy_corpus])  # lock released
    assert report.files_added == 1


class FailingEmbedder(HashEmbedder):
    """A HashEmbedder whose embed_documents raises on its ``fail_on``-th call."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_on = fail_on

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls >= self.fail_on:
            raise RuntimeError("embedder crashed")
        return super().embed_documents(texts)


def test_failed_ingest_keeps_the_previous_generation(
    fake_pipeline: Factory, copy_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.ingest.writer.WINDOW_BATCHES", 4)  # with batch_size=1: windows of 4 chunks
    first = fake_pipeline()
    first.ingest([copy_corpus])
    index = first.index_path
    before = first.info()
    manifest_before = manifest(index)

    for i in range(6):
        (copy_corpus / f"new-{i}.txt").write_text(f"Fresh note {i} about the okapi. " * 30, encoding="utf-8")
    (copy_corpus / "bm25-lexical-search.txt").write_text("BM25 was rewritten about capybaras.", encoding="utf-8")
    failing = FailingEmbedder(fail_on=2)
    with pytest.raises(RuntimeError, match="embedder crashed"):
        fake_pipeline(embedder=failing, batch_size=1).ingest([copy_corpus])
    assert failing.calls == 2  # it did fail part-way, after one batch went in

    assert manifest(index) == manifest_before
    after = fake_pipeline().info()
    assert (after.generation, after.documents, after.chunks, after.vectors) == (
        before.generation,
        before.documents,
        before.chunks,
        before.vectors,
    )
    assert index_files(index) == committed_files(index)  # staged files were discarded
    reader = fake_pipeline()
    okapi = reader.retrieve("okapi", k=10)
    assert okapi and all("okapi" not in h.chunk.text for h in okapi)
    assert any("Robertson" in t or "BM25" in t for t in all_chunk_texts(index))
    assert not any("capybaras" in t for t in all_chunk_texts(index))

    # a writer killed outright leaves staged files behind: the next writer clears them
    (index / "chunks.7.sqlite").write_bytes(b"junk")
    (index / "vectors.7.faiss").write_bytes(b"junk")
    (index / "manifest.json.7.tmp").write_text("{}", encoding="utf-8")
    (index / "lexical.7").mkdir()
    (index / "lexical.7" / "meta.json").write_text("junk", encoding="utf-8")
    report = fake_pipeline().ingest([copy_corpus])
    assert report.files_added == 6 and report.files_updated == 1
    m = manifest(index)
    assert m["generation"] == 2
    assert index_files(index) == {"manifest.json", "write.lock", "chunks.2.sqlite", "vectors.2.faiss", "lexical.2"}
    assert_consistent(fake_pipeline())


def test_readers_see_the_new_generation_after_commit(fake_pipeline: Factory, copy_corpus: Path) -> None:
    writer = fake_pipeline()
    writer.ingest([copy_corpus])
    reader = fake_pipeline()
    assert reader.info().documents == CORPUS_FILES
    narwhal = reader.retrieve("narwhal tusk", k=10)
    assert narwhal and all("narwhal" not in h.chunk.text for h in narwhal)
    old_snapshot = IndexDir(reader.index_path).open_snapshot()

    (copy_corpus / "narwhal.txt").write_text("The narwhal tusk is a long spiral tooth.", encoding="utf-8")
    writer.ingest([copy_corpus])

    info = reader.info()
    assert (info.generation, info.documents) == (2, CORPUS_FILES + 1)
    hits = reader.retrieve("narwhal tusk")
    assert Path(hits[0].chunk.source).name == "narwhal.txt"
    # a snapshot opened before the commit still reads its own (old) generation
    try:
        assert old_snapshot.generation == 1
        assert old_snapshot.store.count("documents") == CORPUS_FILES
        assert len(old_snapshot.vectors) == old_snapshot.store.count("chunks")
    finally:
        old_snapshot.close()


def test_pipeline_context_manager_and_index_path(fake_pipeline: Factory, corpus_dir: Path, tmp_path: Path) -> None:
    from rag.config import RagConfig

    index = tmp_path / "ctx"
    with RagPipeline(RagConfig(index=index, quiet=True), embedder=HashEmbedder()) as pipeline:
        assert pipeline.index_path == index
        pipeline.ingest([corpus_dir])
        assert pipeline.info().documents == CORPUS_FILES
    assert pipeline.info().documents == CORPUS_FILES  # a closed pipeline reopens the index on the next read
    pipeline.close()


def test_copy_of_index_folder_is_usable(fake_pipeline: Factory, corpus_dir: Path, tmp_path: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    copy = tmp_path / "moved"
    shutil.copytree(pipeline.index_path, copy)
    moved = fake_pipeline(index=copy)
    assert moved.info().chunks == pipeline.info().chunks
    assert Path(moved.retrieve(HEADS_Q)[0].chunk.source).name == "transformer-architecture.md"
