"""Follow-up questions rewritten into standalone ones: the deterministic rewrite and the generator's rewrite."""

from __future__ import annotations

import pytest

from rag.answer.conversation import content_terms, is_follow_up, rewrite_follow_up, standalone_question

FOLLOW_UPS = [
    ("When was it introduced?", ["What is the Transformer architecture?"], "(Transformer architecture)"),
    ("What about its hidden size?", ["How many attention heads does the base Transformer use?"],
     "(attention heads base Transformer)"),
    ("Why?", ["What is BM25?"], "(BM25)"),
    ("它是谁提出的？", ["检索增强生成是哪一年提出的？"], "(检索 增强 生成)"),
    ("那 BERT 呢？", ["Transformer 是哪一年提出的？"], "(Transformer 提出)"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "previous", "added"), FOLLOW_UPS)
def test_follow_ups_get_the_previous_topic(question: str, previous: list[str], added: str) -> None:
    assert is_follow_up(question)
    assert rewrite_follow_up(question, previous) == f"{question} {added}"


@pytest.mark.parametrize("question", ["What is BM25?", "How does FAISS index vectors?", "jieba 是什么？"])
def test_new_topics_are_left_alone(question: str) -> None:
    assert not is_follow_up(question)
    assert rewrite_follow_up(question, ["How many attention heads does the Transformer use?"]) == question


def test_a_chain_of_follow_ups_keeps_the_first_topic() -> None:
    rewritten = rewrite_follow_up("And who wrote it?", ["What is the Transformer?", "When was it introduced?"])
    assert rewritten == "And who wrote it? (introduced Transformer)"


def test_no_history_means_no_rewrite() -> None:
    assert standalone_question("When was it introduced?", None) == "When was it introduced?"
    assert standalone_question("When was it introduced?", []) == "When was it introduced?"


def test_content_terms_drop_function_words_and_keep_case() -> None:
    assert content_terms("How many attention heads does the base Transformer use?") == [
        "attention",
        "heads",
        "base",
        "Transformer",
    ]
    assert content_terms("检索增强生成是哪一年提出的？") == ["检索", "增强", "生成", "提出"]


class Rewriter:
    name = "fake-llm"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    def rewrite_question(self, question: str, history: list[tuple[str, str]]) -> str:
        self.calls.append((question, history))
        return self.reply


def test_a_generator_that_can_rewrite_is_asked_and_its_reply_cleaned() -> None:
    llm = Rewriter('Standalone question: "When was the Transformer introduced?"\nextra line')
    history = [("What is the Transformer?", "An architecture [1].")]
    assert standalone_question("When was it introduced?", history, llm) == "When was the Transformer introduced?"
    assert llm.calls == [("When was it introduced?", history)]


@pytest.mark.parametrize("reply", ["", "   \n  ", "x" * 5000])
def test_an_unusable_rewrite_falls_back_to_the_deterministic_one(reply: str) -> None:
    history = [("What is the Transformer architecture?", "An architecture [1].")]
    rewritten = standalone_question("When was it introduced?", history, Rewriter(reply))
    assert rewritten == "When was it introduced? (Transformer architecture)"
