"""The tantivy lexical engine: it ranks like the FTS5 BM25 it replaced, filters apply inside its top-k, and an
index made before it (BM25 in SQLite FTS5, format 2) is searched as it is and converted at its next write; an
identifier a question names (``response_model_exclude_unset``) ranks the chunk that names it first."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.filters import Filters
from rag.index.folder import FORMAT_VERSION, IndexDir
from rag.index.lexical import LexicalIndex
from rag.index.store import FTS5_SCHEMA, FTS5_TABLE
from rag.pipeline import RagPipeline
from rag.text.lexical import tokenize

Factory = Callable[..., RagPipeline]
QUERIES = [
    "BM25 term frequency saturation",
    "How does the transformer use attention?",
    "vector search with FAISS and HNSW",
    "subword tokenization byte pair encoding",
    "retrieval evaluation nDCG recall",
    "中文分词工具",
    "向量检索",
    "检索增强生成的流程",
]


def as_format_2(index: Path) -> None:
    """Turn a fresh index into what rag wrote before the tantivy engine: BM25 rows in the SQLite file's FTS5
    table, no lexical directory, manifest format 2 with lexical version 1."""
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    conn = sqlite3.connect(index / manifest["files"]["chunks"])
    conn.execute(FTS5_SCHEMA)
    rows = conn.execute("SELECT id, text FROM chunks").fetchall()
    conn.executemany(
        f"INSERT INTO {FTS5_TABLE} (rowid, tokens) VALUES (?, ?)", ((i, " ".join(tokenize(t))) for i, t in rows)
    )
    conn.commit()
    conn.close()
    shutil.rmtree(index / manifest["files"].pop("lexical"))
    manifest["format_version"] = 2
    manifest["lexical"] = {"tokenizer": "jieba-search+lower/fts5-porter", "version": 1}
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_tantivy_ranks_like_fts5(tmp_path: Path, corpus_dir: Path, fake_pipeline: Factory) -> None:
    index = tmp_path / "idx"
    fake_pipeline(index=index).ingest([corpus_dir])
    snap = IndexDir(index).open_snapshot()
    try:
        assert snap.store.lexical is not None
        tantivy_top = {q: snap.store.lexical_search(q, 5) for q in QUERIES}
    finally:
        snap.close()
    as_format_2(index)
    snap = IndexDir(index).open_snapshot()
    try:
        assert snap.store.lexical is None and snap.store.has_fts5()
        fts5_top = {q: snap.store.lexical_search(q, 5) for q in QUERIES}
    finally:
        snap.close()
    overlap = []
    for q in QUERIES:
        ours, theirs = [i for i, _ in tantivy_top[q]], [i for i, _ in fts5_top[q]]
        assert ours and theirs, q
        assert ours[0] in theirs[:2], (q, ours, theirs)  # the best chunk is FTS5's best (or its close second)
        overlap.append(len(set(ours) & set(theirs)) / len(theirs))
    assert sum(overlap) / len(overlap) >= 0.7, overlap


@pytest.mark.parametrize(
    "filters",
    [
        Filters(language=("zh",)),
        Filters(file_type=("markdown",)),
        Filters(path="*bm25-lexical-search.txt"),
        Filters(meta={"team": "search"}),
        Filters(file_type=("markdown", "text"), language=("en",)),
        Filters(path="*no-such-file*"),
    ],
)
def test_filters_apply_inside_the_lexical_top_k(
    tmp_path: Path, corpus_dir: Path, fake_pipeline: Factory, filters: Filters
) -> None:
    """A filtered search gives exactly the unfiltered ranking restricted to the matching chunks, cut at k."""
    team = tmp_path / "team"
    team.mkdir()
    (team / "notes.txt").write_text("Our retrieval notes: BM25 and vector search with FAISS.", encoding="utf-8")
    index = tmp_path / "idx"
    fake_pipeline(index=index).ingest([corpus_dir])
    fake_pipeline(index=index).ingest([team], metadata={"team": "search"})
    snap = IndexDir(index).open_snapshot()
    try:
        allowed = set(snap.store.filtered_ids(filters))
        for q in ["retrieval with BM25 and vectors", "检索 向量 分词", "transformer attention"]:
            everything = snap.store.lexical_search(q, 10_000)
            expected = [(i, round(s, 4)) for i, s in everything if i in allowed][:4]
            got = [(i, round(s, 4)) for i, s in snap.store.lexical_search(q, 4, filters)]
            assert sorted(got, key=lambda x: (-x[1], x[0])) == sorted(expected, key=lambda x: (-x[1], x[0])), q
            assert all(i in allowed for i, _ in got)
    finally:
        snap.close()


def test_a_format_2_fts5_index_is_searched_then_converted_at_its_next_write(
    tmp_path: Path, copy_corpus: Path, fake_pipeline: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    index = tmp_path / "idx"
    fake_pipeline(index=index).ingest([copy_corpus])
    as_format_2(index)
    old = fake_pipeline(index=index, retrieval="lexical")
    assert old.verify() == []
    hits = old.retrieve("中文分词工具", k=3)
    assert Path(hits[0].chunk.source).name == "zhongwen-fenci.md"
    zh = old.retrieve("检索 向量", k=5, filters={"language": ["zh"]})
    assert zh and all(h.chunk.metadata["language"] == "zh" for h in zh)
    old.close()

    (copy_corpus / "new.txt").write_text("Fresh text about capybaras and their habits. " * 10, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rag.index.folder"):
        fake_pipeline(index=index).ingest([copy_corpus])
    assert any("older rag" in r.getMessage() and "tantivy" in r.getMessage() for r in caplog.records)
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION and manifest["lexical"]["engine"] == "tantivy"
    assert (index / manifest["files"]["lexical"] / "meta.json").is_file()
    new = fake_pipeline(index=index, retrieval="lexical")
    assert new.verify() == []
    assert Path(new.retrieve("中文分词工具", k=3)[0].chunk.source).name == "zhongwen-fenci.md"
    assert Path(new.retrieve("capybaras habits", k=1)[0].chunk.source).name == "new.txt"
    snap = IndexDir(index).open_snapshot()
    try:
        assert not snap.store.has_fts5()  # the FTS5 rows went with the conversion
    finally:
        snap.close()


def test_deleted_and_changed_documents_leave_the_lexical_index(
    tmp_path: Path, copy_corpus: Path, fake_pipeline: Factory
) -> None:
    index = tmp_path / "idx"
    p = fake_pipeline(index=index, retrieval="lexical")
    p.ingest([copy_corpus])
    assert any("bm25" in h.chunk.source for h in p.retrieve("Okapi BM25 saturation", k=3))
    (copy_corpus / "bm25-lexical-search.txt").unlink()
    (copy_corpus / "subword-tokenization.md").write_text("Capybaras are rodents. " * 5, encoding="utf-8")
    p.ingest([copy_corpus], sync=True)
    assert not any("bm25-lexical" in h.chunk.source for h in p.retrieve("Okapi BM25 saturation", k=10))
    assert all("subword" not in h.chunk.source for h in p.retrieve("byte pair encoding merges", k=10))
    assert Path(p.retrieve("capybaras rodents", k=1)[0].chunk.source).name == "subword-tokenization.md"
    assert p.verify() == []


IDENTIFIER_CHUNKS = {
    1: "Set response_model_exclude_unset=True in the decorator to leave out the defaults nobody set.",
    2: "The response model filters the response: a model for the response, and a model for the input. Fields "
    "you exclude stay out of the response model; unset fields of the model keep their defaults.",
    3: "Return a response with a model: the response model documents the response and validates the model.",
    4: "Raise an HTTPException with status_code=404 when the item is missing.",
    5: "An HTTP error is an exception. When an exception happens, HTTP clients read the HTTP status; the "
    "exception handler decides what the HTTP response of each exception is.",
    6: "Behind a proxy, start Uvicorn with --forwarded-allow-ips='*' so that it trusts the proxy headers.",
    7: "Headers forwarded by a proxy: allow only the IPs you trust. Forwarded headers from other IPs, which the "
    "proxy did not allow, are forwarded on untrusted.",
    8: "FastAPI 0.95.0 added support for Annotated in parameter declarations.",
    9: "Version 0 of the API had 95 endpoints; in release 0 there were 95 of them, 0 deprecated.",
}


def _identifier_index(tmp_path: Path) -> LexicalIndex:
    tmp_path.mkdir(parents=True, exist_ok=True)
    writer = LexicalIndex.open(tmp_path / "lex", writable=True)
    writer.add((cid, cid, "en", text) for cid, text in IDENTIFIER_CHUNKS.items())
    writer.commit()
    return LexicalIndex.open(tmp_path / "lex")


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("response_model_exclude_unset", 1),
        ("How do I use response_model_exclude_unset?", 1),
        ("--forwarded-allow-ips", 6),
        ("What changed in 0.95.0?", 8),
    ],
)
def test_a_named_identifier_outranks_chunks_that_only_use_its_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str, best: int
) -> None:
    """Each distractor uses the identifier's parts as words, more often than the chunk that names it: BM25 over
    words alone ranks the distractor first, the whole identifier's rare term puts the named chunk first."""
    index = _identifier_index(tmp_path)
    assert index.search(query, 3)[0][0] == best
    monkeypatch.setattr("rag.index.lexical.index_tokens", tokenize)  # words only, as tokenizer version 2 gave
    words_only = _identifier_index(tmp_path / "v2")
    assert words_only.search(query, 3)[0][0] != best


@pytest.mark.parametrize(
    ("query", "chunk"),
    [
        ("response model exclude unset", 1),
        ("annotated 0.95", 8),
        ("forwarded-allow-ips", 6),
    ],
)
def test_an_identifier_spelled_as_words_still_finds_it(tmp_path: Path, query: str, chunk: int) -> None:
    assert chunk in [i for i, _ in _identifier_index(tmp_path).search(query, 3)]


def test_camel_case_parts_find_the_identifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``HTTPException`` was one word to the word tokenizer: "HTTP exception" did not reach it."""
    assert [i for i, _ in _identifier_index(tmp_path).search("HTTPException", 3)][:1] == [4]
    assert 4 in [i for i, _ in _identifier_index(tmp_path / "a").search("HTTP exception", 3)]
    monkeypatch.setattr("rag.index.lexical.index_tokens", tokenize)
    assert 4 not in [i for i, _ in _identifier_index(tmp_path / "v2").search("HTTP exception", 3)]
