"""A stored document's text rebuilt from its chunks (``RagPipeline.document_text``): the offsets and line numbers
of its passages hold in it, and where the chunker dropped only plain whitespace it is the loaded text itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.errors import DocumentNotFoundError
from rag.ingest.loaders import load
from rag.pipeline import RagPipeline


@pytest.mark.parametrize("chunk_size", [60, 400])
def test_rebuilt_text_is_the_loaded_text(
    fake_pipeline: Callable[..., RagPipeline], corpus_dir: Path, chunk_size: int
) -> None:
    pipeline = fake_pipeline(chunk_size=chunk_size, chunk_overlap=chunk_size // 4)
    pipeline.ingest([corpus_dir])
    docs = pipeline.documents()
    assert len(docs) == 12
    for doc in docs:
        assert pipeline.document_text(doc.path) == load(doc.path).text.rstrip(), doc.path  # html and zh included


def test_spans_and_lines_hold_where_whitespace_is_unusual(
    fake_pipeline: Callable[..., RagPipeline], tmp_path: Path
) -> None:
    part = (
        "Title {n}\t \n\n\n   Indented words go here.\r\n\n\tTabbed line {n} of text; more.\n \nLast   words {n}.\n\n"
    )
    source = "".join(part.format(n=n) for n in range(4))
    (tmp_path / "odd.txt").write_text(source, encoding="utf-8", newline="")
    pipeline = fake_pipeline(chunk_size=16, chunk_overlap=4)
    pipeline.ingest([tmp_path / "odd.txt"])
    [doc] = pipeline.documents()
    loaded = load(doc.path).text
    rebuilt = pipeline.document_text(doc.path)
    assert len(rebuilt) == len(loaded.rstrip())
    assert rebuilt.count("\n") == loaded.rstrip().count("\n")  # line numbers hold
    for a, b in zip(rebuilt, loaded, strict=False):  # every non-space character where it was
        assert a == b or (a.isspace() and b.isspace())
    hits = pipeline.retrieve("words text", k=50)
    assert len(hits) > 3
    for hit in hits:
        c = hit.chunk
        assert rebuilt[c.start : c.end] == c.text
        assert rebuilt[: c.start].count("\n") + 1 == c.start_line


def test_unknown_document(fake_pipeline: Callable[..., RagPipeline], corpus_dir: Path) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir / "bm25-lexical-search.txt"])
    with pytest.raises(DocumentNotFoundError, match=r"no document 'nope\.txt'"):
        pipeline.document_text("nope.txt")
