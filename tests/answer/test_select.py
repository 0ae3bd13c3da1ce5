"""rag.answer.select.read_first: the passage a factoid question reads first."""

from __future__ import annotations

from rag.answer.grounding import passage_coverage, question_coverage
from rag.answer.select import read_first
from rag.types import Chunk, Hit

TOPIC = (
    "Peyton Manning became the first quarterback ever to lead two different teams to multiple Super Bowls. "
    "He is also the oldest quarterback ever to play in a Super Bowl at age 39."
)
FACT = (
    "Six-time Grammy winner Lady Gaga sang the national anthem, while Academy Award winner Marlee Matlin "
    "provided American Sign Language (ASL) translation."
)
QUESTION = "What actor did sign language for the national anthem at the Super Bowl?"


def hit(text: str, similarity: float, rank: int, source: str) -> Hit:
    chunk = Chunk(text=text, start=0, end=len(text), start_line=1, end_line=1, source=source)
    return Hit(chunk=chunk, score=1.0 / (60 + rank), similarity=similarity, rank=rank)


def test_the_passage_that_covers_the_question_is_read_first() -> None:
    hits = [hit(TOPIC, 0.52, 0, "topic.txt"), hit(FACT, 0.50, 1, "fact.txt"), hit("Denver won.", 0.40, 2, "c.txt")]
    chosen = read_first(QUESTION, hits)
    assert [h.chunk.source for h in chosen] == ["fact.txt", "topic.txt", "c.txt"]  # the rest keep rank order


def test_the_first_rank_wins_a_near_tie_and_a_far_better_similarity_wins_too() -> None:
    first, second = hit(FACT, 0.50, 0, "a.txt"), hit(FACT + " Again.", 0.50, 1, "b.txt")
    assert read_first(QUESTION, [first, second])[0] is first  # same coverage: the rank decides
    weak = hit(FACT, 0.20, 1, "weak.txt")
    assert read_first(QUESTION, [hit(TOPIC, 0.60, 0, "t.txt"), weak])[0] is not weak  # 0.4 of cosine is too far


def test_one_hit_or_none_is_returned_as_is() -> None:
    only = [hit(TOPIC, 0.5, 0, "t.txt")]
    assert read_first(QUESTION, only) == only
    assert read_first(QUESTION, []) == []


def test_passage_coverage_compares_passages_and_its_best_is_question_coverage() -> None:
    per = passage_coverage(QUESTION, [TOPIC, FACT])
    assert per[1] > per[0] > 0
    assert max(per) == question_coverage(QUESTION, [TOPIC, FACT])
    assert passage_coverage("", [TOPIC]) == [1.0]  # no content word: nothing to judge by
