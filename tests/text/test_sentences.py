"""The one sentence splitter, shared by grounding, citations and the fakes."""

from __future__ import annotations

from rag.text.sentences import sentences, split_sentences, strip_markers


def test_sentences_end_at_punctuation_followed_by_space_cjk_punctuation_or_a_line_break() -> None:
    text = "Version 3.5 shipped in 2017. It was fast! Was it?\n第一句。第二句！Last line"
    assert sentences(text) == [
        "Version 3.5 shipped in 2017.",
        "It was fast!",
        "Was it?",
        "第一句。",
        "第二句！",
        "Last line",
    ]


def test_citation_markers_stay_with_the_sentence_before_them() -> None:
    text = "The Transformer appeared in 2017. [1] BM25 ranks by term frequency. [2][3]\n\n[4]\nNext one."
    assert sentences(text) == [
        "The Transformer appeared in 2017. [1]",
        "BM25 ranks by term frequency. [2][3]\n\n[4]",
        "Next one.",
    ]
    assert sentences("Only one line\n[2]")[-1].endswith("[2]")
    assert strip_markers("Ranked by BM25 [2] .") == "Ranked by BM25."


def test_split_sentences_drops_list_and_heading_markup() -> None:
    text = "# Setup\n- Install the package.\n2) Run the command\n> quoted line"
    assert split_sentences(text) == ["Setup", "Install the package.", "Run the command", "quoted line"]


def test_nothing_to_split() -> None:
    assert sentences("") == [] and split_sentences("  \n\n ") == []
