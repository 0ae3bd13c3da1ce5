"""shorten: a long English factoid answer cut to the words of it that answer the question, by a second call to the
model, kept only when they are part of the answer and not just the question's words. A fake chat stands in for the
model here; the last test asks the real default one."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rag.answer.generators.base import GenerationRequest, Generator
from rag.answer.shorten import SHORTEN_RULES, needs_shortening, shorten
from rag.answer.turn import warm_up

QUESTION = "How many seconds were left in the game when the Broncos intercepted the pass?"


class FakeChat:
    def __init__(self, reply: str | None) -> None:
        self.reply = reply
        self.asked: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]], max_new_tokens: int) -> str | None:
        self.asked.append(messages)
        return self.reply


def test_a_long_answer_is_cut_to_the_part_the_model_picks_and_keeps_its_citation() -> None:
    chat = FakeChat("17")
    assert shorten("17 seconds left on the clock [1]", QUESTION, chat) == "17 [1]"
    (messages,) = chat.asked
    assert messages[0] == {"role": "system", "content": SHORTEN_RULES}
    assert messages[1]["content"] == f"Question: {QUESTION}\nAnswer: 17 seconds left on the clock"


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("24", "not a part of the answer: the model may not add anything"),
        ("seconds left in the game", "only the question's own words"),
        ("", "no reply"),
        (None, "a backend without a chat model"),
        ("17 seconds left in the game on the clock.", "not shorter"),
        ("...", "no word"),
    ],
)
def test_a_reply_that_is_not_a_shorter_part_of_the_answer_changes_nothing(reply: str | None, why: str) -> None:
    text = "17 seconds left in the game on the clock [1]"
    assert shorten(text, QUESTION, FakeChat(reply)) == text, why


def test_the_reply_is_found_whatever_its_case_spacing_quotes_or_full_stop() -> None:
    text = 'created by the network\'s "We Love TV" image campaign introduced that year. [2]'
    question = "What image campaign was the new four-note jingle for ABC based around?"
    assert shorten(text, question, FakeChat('"we  love TV".\nmore')) == "we love TV [2]"


def test_short_chinese_and_multi_line_answers_are_left_alone() -> None:
    chat = FakeChat("17")
    for text in (
        "17 seconds [1]",
        "第 50 届超级碗于 2016 年 2 月 7 日在圣克拉拉举行，丹佛野马队获胜。",
        "1. Open it\n2. Run it now please",
    ):
        assert not needs_shortening(text)
        assert shorten(text, QUESTION, chat) == text
    assert chat.asked == []


@pytest.mark.slow
def test_the_real_model_cuts_a_sentence_to_its_answer() -> None:
    pytest.importorskip("onnxruntime_genai")
    from rag.answer.generators.registry import create_generator
    from rag.config import AnswerSettings

    generator = create_generator(AnswerSettings())
    text = "32.9% of the eligible voting population did not, or had been unable to, vote. [1]"
    short = shorten(text, "What percentage of Scotland's voting population failed to actually vote?", generator.chat)
    assert short == "32.9% [1]"


class WarmedGenerator(Generator):
    def __init__(self, trims: bool) -> None:
        self.trims_echo = trims  # type: ignore[misc]
        self.primed: list[list[dict[str, str]]] | None = None

    @property
    def name(self) -> str:
        return "warmed"

    def generate(self, request: GenerationRequest) -> str:
        return ""

    def warm_up(self, prompts: Sequence[list[dict[str, str]]] = ()) -> None:
        self.primed = list(prompts)


def test_the_warm_up_reads_the_shortening_rules_only_for_a_generator_whose_answers_are_shortened() -> None:
    shortened, other = WarmedGenerator(True), WarmedGenerator(False)
    warm_up(shortened)
    warm_up(other)
    assert shortened.primed is not None and shortened.primed[0][0] == {"role": "system", "content": SHORTEN_RULES}
    assert other.primed == []
