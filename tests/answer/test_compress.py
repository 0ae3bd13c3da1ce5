"""Prompt compression keeps the sentences that bear on the question (with neighbours), one passage per passage."""

from __future__ import annotations

from rag.answer.compress import GAP, compress

LONG = (
    "Paris is the capital of France. It has many museums. The Louvre opened in 1793. "
    "It holds the Mona Lisa. Trains leave from six stations. The metro has sixteen lines. "
    "Bakeries open early. Rents are high."
)


def test_the_relevant_sentence_and_its_neighbours_are_kept_in_order() -> None:
    (out,) = compress("When was the Louvre opened?", [LONG])
    assert "The Louvre opened in 1793." in out
    assert "It has many museums." in out and "It holds the Mona Lisa." in out  # the neighbours
    assert "Rents are high." not in out and "Bakeries" not in out
    assert out.index("museums") < out.index("Louvre") < out.index("Mona Lisa")
    assert out.startswith(GAP.strip()) and out.endswith(GAP.rstrip())  # omissions at both ends are marked


def test_short_passages_stay_whole_and_the_count_never_changes() -> None:
    short = "BM25 ranks documents. It uses term frequency."
    unrelated = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota. Kappa lambda mu. Nu xi omicron."
    out = compress("What does BM25 use?", [short, unrelated, LONG])
    assert len(out) == 3 and out[0] == short
    assert out[1].startswith("Alpha beta gamma.") and "Nu xi" not in out[1]  # no shared word: its start
    assert all(o.strip() for o in out)


def test_chinese_passages() -> None:
    text = "北京是中国的首都。北京有很多博物馆。故宫建于1420年。长城很长。上海是一个港口城市。杭州有西湖。"
    (out,) = compress("故宫是哪一年建成的？", [text])
    assert "故宫建于1420年。" in out and "杭州有西湖" not in out
