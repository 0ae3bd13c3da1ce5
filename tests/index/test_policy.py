"""The manifest wins: settings that shape stored data follow the index; a different explicit value is refused,
cheap ones (index type, lexical tokenizer) are converted. Old formats still open; verify tells leftovers from damage."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.errors import SettingMismatchError
from rag.index.folder import FORMAT_VERSION, IndexDir
from rag.index.lexical import LexicalIndex
from rag.pipeline import RagPipeline
from rag.text.lexical import LEXICAL_VERSION, tokenize

Factory = Callable[..., RagPipeline]


def _manifest(index: Path) -> dict:
    return json.loads((index / "manifest.json").read_text(encoding="utf-8"))


def test_another_chunk_size_is_refused_and_the_index_is_untouched(
    tmp_path: Path, copy_corpus: Path, fake_pipeline: Factory
) -> None:
    index = tmp_path / "idx"
    fake_pipeline(index=index, chunk_size=100, chunk_overlap=10).ingest([copy_corpus])
    before = _manifest(index)
    assert before["chunker"]["chunk_size"] == 100
    (copy_corpus / "new.txt").write_text("A new note about capybaras and their habits. " * 20, encoding="utf-8")
    with pytest.raises(SettingMismatchError) as info:
        fake_pipeline(index=index, chunk_size=150).ingest([copy_corpus])
    message = str(info.value)
    assert "chunk_size=100" in message and "chunk_size=150" in message and "rebuild" in message
    with pytest.raises(SettingMismatchError, match="chunk_overlap=10"):
        fake_pipeline(index=index, chunk_overlap=20).ingest([copy_corpus])
    assert _manifest(index) == before  # nothing committed, the generation is the same
    # unset: the index's own chunking; the same explicit value: accepted
    report = fake_pipeline(index=index).ingest([copy_corpus])
    assert report.files_added == 1 and _manifest(index)["chunker"]["chunk_size"] == 100
    (copy_corpus / "newer.txt").write_text("Another note about otters. " * 20, encoding="utf-8")
    assert fake_pipeline(index=index, chunk_size=100).ingest([copy_corpus]).files_added == 1
    new_chunks = [h.chunk for h in fake_pipeline(index=index).retrieve("capybaras habits", k=3)]
    assert new_chunks and all(len(c.text.split()) <= 100 for c in new_chunks)


def test_a_new_index_takes_the_defaults_or_the_asked_values(
    tmp_path: Path, corpus_dir: Path, fake_pipeline: Factory
) -> None:
    fake_pipeline(index=tmp_path / "a").ingest([corpus_dir])
    fake_pipeline(index=tmp_path / "b", chunk_size=64).ingest([corpus_dir])
    default = _manifest(tmp_path / "a")["chunker"]
    asked = _manifest(tmp_path / "b")["chunker"]
    assert (default["chunk_size"], default["chunk_overlap"]) == (200, 30)
    assert (asked["chunk_size"], asked["chunk_overlap"]) == (64, 30)


def test_a_format_1_index_opens_and_is_migrated_on_the_next_commit(
    tmp_path: Path, copy_corpus: Path, fake_pipeline: Factory
) -> None:
    index = tmp_path / "idx"
    fake_pipeline(index=index).ingest([copy_corpus])
    old = _manifest(index)
    del old["lexical"]
    old["format_version"] = 1  # as written before the manifest recorded the lexical tokenizer
    (index / "manifest.json").write_text(json.dumps(old), encoding="utf-8")
    reader = fake_pipeline(index=index)
    assert reader.info().documents == old["documents"]
    assert reader.retrieve("BM25 lexical search", k=1)
    assert reader.verify() == []
    (copy_corpus / "new.txt").write_text("Fresh text about migration of indexes. " * 10, encoding="utf-8")
    fake_pipeline(index=index).ingest([copy_corpus])
    migrated = _manifest(index)
    assert migrated["format_version"] == FORMAT_VERSION
    assert migrated["lexical"]["version"] == LEXICAL_VERSION and migrated["migrated_from"] == 1


def test_a_newer_format_is_refused_with_upgrade_advice(
    tmp_path: Path, corpus_dir: Path, fake_pipeline: Factory
) -> None:
    index = tmp_path / "idx"
    fake_pipeline(index=index).ingest([corpus_dir])
    manifest = _manifest(index) | {"format_version": FORMAT_VERSION + 1}
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(Exception, match="upgrade rag"):
        IndexDir(index).read_manifest()


def test_lexical_rows_of_an_older_tokenizer_are_retokenized_at_the_next_commit(
    tmp_path: Path, corpus_dir: Path, fake_pipeline: Factory
) -> None:
    index = tmp_path / "idx"
    p = fake_pipeline(index=index, retrieval="lexical")
    p.ingest([corpus_dir])
    manifest = _manifest(index)
    # an index whose lexical rows were made by "another tokenizer": tokens that match nothing, older version
    conn = sqlite3.connect(index / manifest["files"]["chunks"])
    rows = conn.execute("SELECT id, doc_id, language FROM chunks").fetchall()
    conn.close()
    lexical = LexicalIndex.open(index / manifest["files"]["lexical"], writable=True)
    lexical.clear()
    lexical.add((cid, doc, lang, "zzz") for cid, doc, lang in rows)
    lexical.commit()
    manifest["lexical"]["version"] = LEXICAL_VERSION - 1
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert fake_pipeline(index=index, retrieval="lexical").retrieve("BM25 ranking", k=3) == []
    fake_pipeline(index=index).compact()
    assert _manifest(index)["lexical"]["version"] == LEXICAL_VERSION
    hits = fake_pipeline(index=index, retrieval="lexical").retrieve("BM25 ranking", k=3)
    assert hits and "bm25" in hits[0].chunk.source.lower()
    assert fake_pipeline(index=index).verify() == []


def test_verify_tells_leftovers_from_damage(tmp_path: Path, corpus_dir: Path, fake_pipeline: Factory) -> None:
    index = tmp_path / "idx"
    fake_pipeline(index=index).ingest([corpus_dir])
    generation = _manifest(index)["generation"]
    (index / f"vectors.{generation + 1}.faiss").write_bytes(b"half-written")  # what a killed writer leaves
    (index / f"chunks.{generation + 1}.sqlite").write_bytes(b"")
    report = fake_pipeline(index=index).verify_report()
    assert report.ok and report.problems == []
    assert len(report.notes) == 1 and f"vectors.{generation + 1}.faiss" in report.notes[0]
    manifest = _manifest(index)
    manifest["chunks"] += 1  # real damage: the manifest disagrees with the store
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    damaged = fake_pipeline(index=index).verify_report()
    assert not damaged.ok and any("manifest counts" in p for p in damaged.problems)


def test_an_index_of_words_only_tokens_gets_identifiers_at_its_next_ingest(
    tmp_path: Path, fake_pipeline: Factory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An index written by tokenizer version 2 (words only: ``response_model_exclude_unset`` cut into common
    words) ranks a chunk that uses those words first; the next ingest re-tokenizes it, and the named one wins."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "named.md").write_text("Set response_model_exclude_unset=True in the decorator.", encoding="utf-8")
    (docs / "words.md").write_text(
        "The response model: exclude unset fields from the response model, and the model response stays "
        "small. Unset values are excluded from the model of the response.",
        encoding="utf-8",
    )
    index = tmp_path / "idx"
    with monkeypatch.context() as m:
        m.setattr("rag.index.lexical.index_tokens", tokenize)  # what version 2 indexed and searched for
        fake_pipeline(index=index).ingest([docs])
    manifest = _manifest(index)
    manifest["lexical"]["version"] = 2
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    old = fake_pipeline(index=index, retrieval="lexical").retrieve("response_model_exclude_unset", k=2)
    assert Path(old[0].chunk.source).name == "words.md"  # the whole term is in no row yet

    (docs / "other.md").write_text("Something else entirely: capybaras.", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rag.index.policy"):
        fake_pipeline(index=index).ingest([docs])
    assert any("re-tokenizing" in r.getMessage() for r in caplog.records)
    assert _manifest(index)["lexical"]["version"] == LEXICAL_VERSION == 3
    new = fake_pipeline(index=index, retrieval="lexical")
    assert Path(new.retrieve("response_model_exclude_unset", k=2)[0].chunk.source).name == "named.md"
    assert new.verify() == []
