"""Chunker: spans, line and page numbers, Chinese sentence splitting, overlap."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from rag.ingest.chunking import Chunker
from rag.ingest.loaders import load
from rag.text.lexical import tokenize
from rag.types import Chunk, Document


def token_count(text: str) -> int:
    return len(tokenize(text))


def assert_spans(doc: Document, chunks: list[Chunk]) -> None:
    assert chunks, "expected at least one chunk"
    for chunk in chunks:
        assert 0 <= chunk.start < chunk.end <= len(doc.text)
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert chunk.source == doc.path
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


ENGLISH = "\n\n".join(
    f"Paragraph {p} opens here. It talks about topic number {p} in some detail. It ends with a short remark."
    for p in range(1, 13)
)


def test_spans_match_document_text() -> None:
    doc = Document("notes.md", ENGLISH, "markdown")
    chunks = Chunker(60, 10).split(doc)
    assert len(chunks) > 5
    assert_spans(doc, chunks)
    assert all(len(c.text) <= 60 for c in chunks)
    # together the chunks cover every non-blank character of the document
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


def test_spans_on_every_sample_file(corpus_dir: Path) -> None:
    chunker = Chunker(80, 15, token_count)
    paths = sorted(corpus_dir.iterdir())
    assert len(paths) == 12  # the sample corpus: every file is checked below
    for path in paths:
        doc = load(path)
        chunks = chunker.split(doc)
        assert_spans(doc, chunks)
        assert all(token_count(c.text) <= 80 for c in chunks), path.name


def test_line_numbers_are_one_based_and_exact() -> None:
    text = "\n".join(f"line {i} alpha beta gamma delta" for i in range(1, 21))
    doc = Document("lines.txt", text, "text")
    chunks = Chunker(70, 0).split(doc)
    assert chunks[0].start_line == 1
    for c in chunks:
        assert c.start_line == doc.text.count("\n", 0, c.start) + 1
        assert c.end_line == doc.text.count("\n", 0, c.end - 1) + 1
        first = c.text.splitlines()[0]
        last = c.text.splitlines()[-1]
        assert first.startswith(f"line {c.start_line} ")
        assert last.startswith(f"line {c.end_line} ")
    assert chunks[-1].end_line == 20
    assert chunks[0].end_line == 2 and chunks[0].location() == "lines 1-2"  # 70 characters hold two lines


def test_single_line_chunk_location() -> None:
    doc = Document("one.txt", "just one short line here", "text")
    (chunk,) = Chunker(100, 10).split(doc)
    assert (chunk.start_line, chunk.end_line, chunk.page) == (1, 1, None)
    assert chunk.location() == "line 1"


def test_page_numbers_follow_page_offsets() -> None:
    pages = [
        "Apples grow in orchards. Orchards need pruning in winter.",
        "Bananas grow in the tropics. They are picked green.",
        "Cherries bloom in spring. Their season is short.",
    ]
    text = "\n\n".join(pages)
    offsets = (0, len(pages[0]) + 2, len(pages[0]) + len(pages[1]) + 4)
    doc = Document("fruit.pdf", text, "pdf", page_offsets=offsets)
    assert text[offsets[1] :].startswith("Bananas") and text[offsets[2] :].startswith("Cherries")
    chunks = Chunker(30, 0).split(doc)
    assert_spans(doc, chunks)
    for c in chunks:
        assert c.page == doc.page_at(c.start)
        assert c.location() == f"p. {c.page}"
    by_word = {word: next(c.page for c in chunks if word in c.text) for word in ("Apples", "Bananas", "Cherries")}
    assert by_word == {"Apples": 1, "Bananas": 2, "Cherries": 3}


def test_document_without_pages_has_no_page_numbers() -> None:
    doc = Document("plain.txt", ENGLISH, "text")
    chunks = Chunker(60, 10).split(doc)
    assert_spans(doc, chunks)
    assert all(c.page is None for c in chunks)
    assert all(c.location().startswith("line") for c in chunks)  # located by lines, never by page


def test_page_at() -> None:
    doc = Document("x.pdf", "a" * 30, "pdf", page_offsets=(0, 10, 20))
    assert [doc.page_at(i) for i in (0, 9, 10, 19, 20, 29)] == [1, 1, 2, 2, 3, 3]
    assert Document("x.txt", "abc", "text").page_at(1) is None


CHINESE_SENTENCES = [f"第{i}句话介绍中文分词工具的用法和原理{'！' if i % 3 == 0 else '。'}" for i in range(1, 31)]
CHINESE = "".join(CHINESE_SENTENCES) + "最后一句是问题吗？"


def test_chinese_without_spaces_splits_at_sentence_ends() -> None:
    assert " " not in CHINESE and "\n" not in CHINESE
    doc = Document("zh.txt", CHINESE, "text")
    chunks = Chunker(25, 5, token_count).split(doc)
    assert len(chunks) >= 3
    assert_spans(doc, chunks)
    for c in chunks:
        assert token_count(c.text) <= 25
        assert c.text[-1] in "。！？", c.text
        # every chunk starts at the beginning of a sentence
        assert c.start == 0 or doc.text[c.start - 1] in "。！？", c.text
    assert chunks[-1].text.endswith("最后一句是问题吗？")


def test_chinese_chunk_size_counts_the_length_function_not_characters() -> None:
    doc = Document("zh.txt", CHINESE, "text")
    by_tokens = Chunker(40, 0, token_count).split(doc)
    by_chars = Chunker(40, 0).split(doc)
    assert all(len(c.text) <= 40 for c in by_chars)
    assert any(len(c.text) > 40 for c in by_tokens)  # 40 tokens hold more than 40 characters
    assert len(by_chars) > len(by_tokens)


SHORT_SENTENCES = " ".join(f"Fact {i} is short." for i in range(1, 41))


def test_overlap_repeats_text_between_neighbours() -> None:
    doc = Document("facts.txt", SHORT_SENTENCES, "text")
    with_overlap = Chunker(60, 25).split(doc)
    overlapping = [(a, b) for a, b in itertools.pairwise(with_overlap) if b.start < a.end]
    assert overlapping, "expected some neighbouring chunks to overlap"
    for a, b in overlapping:
        shared = doc.text[b.start : a.end]
        assert a.text.endswith(shared) and b.text.startswith(shared)
    without = Chunker(60, 0).split(doc)
    assert len(without) > 1 and all(b.start >= a.end for a, b in itertools.pairwise(without))


def test_chinese_overlap() -> None:
    doc = Document("zh.txt", CHINESE, "text")
    chunks = Chunker(40, 15, token_count).split(doc)
    assert any(b.start < a.end for a, b in itertools.pairwise(chunks))


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
def test_empty_or_blank_text_gives_no_chunks(text: str) -> None:
    assert Chunker(50, 10).split(Document("empty.txt", text, "text")) == []


def test_repeated_text_gets_distinct_spans() -> None:
    text = "\n\n".join(["The same sentence repeats here."] * 6)
    doc = Document("dup.txt", text, "text")
    chunks = Chunker(40, 0).split(doc)
    assert len(chunks) == 6
    assert_spans(doc, chunks)
    assert [c.start_line for c in chunks] == [1, 3, 5, 7, 9, 11]


def test_a_heading_the_splitter_cut_off_joins_the_chunk_under_it() -> None:
    body = " ".join(f"The upgrade step {i} is described here in a few plain words." for i in range(1, 7))
    doc = Document("upgrade.md", f"# Upgrading\n\n{body}\n\n{body}", "markdown")
    chunks = Chunker(60, 0, length_function=token_count).split(doc)
    assert_spans(doc, chunks)
    assert all(token_count(c.text) >= 60 / 8 for c in chunks), [c.text for c in chunks]
    assert chunks[0].text.startswith("# Upgrading\n\nThe upgrade step 1") and chunks[0].start_line == 1
    assert all(token_count(c.text) <= 60 * 9 / 8 for c in chunks)
    capped = Chunker(60, 0, length_function=token_count, max_size=60).split(doc)  # the embedder's window
    assert all(token_count(c.text) <= 60 for c in capped) and len(capped) >= len(chunks)


def test_a_small_last_piece_joins_the_chunk_before_and_a_lone_small_text_stays() -> None:
    body = " ".join(f"Sentence {i} says one thing about the topic." for i in range(1, 9))
    doc = Document("notes.md", f"{body}\n\nThanks.", "markdown")
    chunks = Chunker(60, 0, length_function=token_count).split(doc)
    assert chunks[-1].text.endswith("Thanks.") and chunks[-1].text != "Thanks."
    assert [c.text for c in Chunker(60, 0).split(Document("a.md", "Hi.", "markdown"))] == ["Hi."]
