"""ChatGenerator.fit: a factoid question reads only the best-ranked passages (``factoid_passages``), an "explain"
question all that fit; the pipeline then numbers and cites only what the model read. A fake runtime stands in for
the model (these are unit tests of the request; tests/test_real_models.py runs the real one). Also the coverage
gate's bar for Chinese questions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag.answer.generators.base import GenerationRequest
from rag.answer.generators.chat import ChatGenerator
from rag.answer.generators.runtimes import ChatRuntime

PASSAGES = [
    "The Transformer architecture was introduced in 2017 by researchers at Google.",
    "Recurrent networks read a sequence one token at a time.",
    "Attention lets every token look at every other token in one step.",
]


class EchoRuntime(ChatRuntime):
    """Renders the messages as plain text, counts words, and answers with the prompt it was given."""

    def render(self, messages: list[dict[str, str]]) -> str:
        return "\n".join(m["content"] for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, prompt: str, max_new_tokens: int) -> Iterator[str]:
        yield prompt


def _generator(factoid_passages: int) -> ChatGenerator:
    return ChatGenerator("fake", EchoRuntime, factoid_passages=factoid_passages)


def test_a_factoid_question_reads_only_the_best_passage() -> None:
    request = _generator(1).prepare(GenerationRequest("When was the Transformer introduced?", PASSAGES, "en"))
    assert request.passages == [PASSAGES[0]]
    prompt = _generator(1).generate(request)
    assert "2017" in prompt and "Recurrent" not in prompt and "[2]" not in prompt


def test_two_factoid_passages_and_zero_for_all() -> None:
    question = "When was the Transformer introduced?"
    assert len(_generator(2).prepare(GenerationRequest(question, PASSAGES, "en")).passages) == 2
    assert len(_generator(0).prepare(GenerationRequest(question, PASSAGES, "en")).passages) == 3


def test_an_explain_question_reads_every_passage() -> None:
    request = _generator(1).prepare(GenerationRequest("How does attention work in a Transformer?", PASSAGES, "en"))
    assert len(request.passages) == 3


def test_the_pipeline_cites_only_the_passages_the_model_read() -> None:
    from rag.answer.turn import plan
    from rag.config import AnswerSettings
    from rag.types import Chunk, Hit

    hits = [
        Hit(
            chunk=Chunk(text=t, start=0, end=len(t), start_line=1, end_line=1, id=i, source=f"doc{i}.md"),
            score=1.0,
            similarity=0.9,
            rank=i,
        )
        for i, t in enumerate(PASSAGES)
    ]
    turn = plan(
        "When was the Transformer introduced?",
        "When was the Transformer introduced?",
        "en",
        hits,
        0.5,
        lambda: _generator(1),
        AnswerSettings(),
        started=0.0,
    )
    assert [h.chunk.source for h in turn.passages] == ["doc0.md"]
    assert turn.request is not None and turn.request.passages == [PASSAGES[0]]


def test_the_coverage_gate_asks_as_much_of_every_language(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.answer import turn
    from rag.types import Chunk, Hit

    chunk = Chunk(text=PASSAGES[0], start=0, end=10, start_line=1, end_line=1)
    hit = Hit(chunk=chunk, score=1.0, similarity=0.9, rank=0)
    monkeypatch.setattr(turn, "question_coverage", lambda question, passages: 0.17)
    assert turn.gated("When was the Transformer architecture introduced?", "en", [hit], 0.2)
    assert turn.gated("变换器架构是哪一年提出的？", "zh", [hit], 0.2)
    assert not turn.gated("变换器架构是哪一年提出的？", "zh", [hit], 0.15)
    assert not turn.gated("When was the Transformer architecture introduced?", "en", [hit], 0)  # off


def test_a_chinese_questions_asking_words_do_not_count_against_its_coverage() -> None:
    from rag.answer.grounding import question_coverage

    passage = "瑞王朱常浩是明神宗第五子。1627年到了封地汉中。"
    assert question_coverage("朱常浩的封地是哪里？", [passage]) == 1.0  # "哪里" is never in the answer's passage
    assert question_coverage("《唐文粹》是谁编的？", ["《唐文粹》，宋代姚铉编。"]) == 1.0
    assert question_coverage("How many nations contain Amazonas?", ["Four nations contain Amazonas."]) == 1.0
